"""PIIP's bidirectional interaction between adjacent branches.

For a pair (a, b) -- a the larger model on the smaller grid, b the smaller model
on the bigger grid -- with tokens ``F_a (B, N_a, d_a)`` and ``F_b (B, N_b, d_b)``:

    P_b2a = Linear(d_b -> d_a)(F_b);  P_a2b = Linear(d_a -> d_b)(F_a)   (pre-update)
    F_a  <- F_a + ca_gamma   * MSDA(query_norm(F_a), ref(h_a, w_a), feat_norm(P_b2a))
    F_a  <- F_a + cffn_gamma * DropPath(ConvFFN(ffn_norm(F_a)))
    and symmetrically into b (query F_b, value P_a2b).

The gammas are per-channel and start at zero, so a fresh unit is the identity.
Reference points are the cell centres of the query grid in normalised
coordinates; the value grid is indexed by the same normalised coordinates.
Parameter names follow the official checkpoints
(``interactions.s.interaction_units_{12,23,34}.branch{2to1,1to2}_{proj,injector}...``).
"""
import math

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks.drop import DropPath

from .deform_attn import multi_scale_deformable_attn


def reference_points(hw, device):
    """Normalised cell centres ``((j + 0.5) / w, (i + 0.5) / h)`` as ``(1, h*w, 1, 2)`` (x, y)."""
    h, w = hw
    ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
    ref_y, ref_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([ref_x.reshape(-1), ref_y.reshape(-1)], -1)[None, :, None]


class MSDeformAttn(nn.Module):
    """Deformable cross-attention (Deformable DETR's module with PIIP's ``ratio`` and ``d_feat``).

    Args:
        d_model (int): query width d_q.
        n_heads (int): heads; ``int(d_model * ratio)`` must be divisible by it.
        n_levels (int): value levels (1 in PIIP).
        n_points (int): sampling points per head and level.
        ratio (float): value width ``int(d_model * ratio)``.
        d_feat (int | None): width of the value input; None = d_model.
    """

    def __init__(self, d_model, n_heads=16, n_levels=1, n_points=4, ratio=0.5, d_feat=None):
        super().__init__()
        self.n_heads, self.n_levels, self.n_points = n_heads, n_levels, n_points
        self.value_dim = int(d_model * ratio)
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_feat or d_model, self.value_dim)
        self.output_proj = nn.Linear(self.value_dim, d_model)
        self.reset_parameters()

    def reset_parameters(self):
        """Deformable DETR init: offsets fan out on a circle, uniform attention."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query, ref, feat, spatial_shapes, level_start_index):
        """
        Args:
            query (Tensor): ``(B, N_q, d_q)``.
            ref (Tensor): ``(1 or B, N_q, L, 2)`` normalised reference points (x, y).
            feat (Tensor): ``(B, N_kv, d_feat)``.
            spatial_shapes (Tensor): ``(L, 2)`` long; level_start_index ``(L,)`` long.

        Returns:
            Tensor: ``(B, N_q, d_q)``.
        """
        b, n_q, _ = query.shape
        value = self.value_proj(feat).view(b, feat.shape[1], self.n_heads, -1)
        offsets = self.sampling_offsets(query).view(
            b, n_q, self.n_heads, self.n_levels, self.n_points, 2)
        weights = self.attention_weights(query).view(
            b, n_q, self.n_heads, self.n_levels * self.n_points).softmax(-1)
        weights = weights.view(b, n_q, self.n_heads, self.n_levels, self.n_points)
        normalizer = torch.stack([spatial_shapes[:, 1], spatial_shapes[:, 0]], -1).to(offsets)
        locations = ref[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        out = multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights)
        return self.output_proj(out)


class DWConv(nn.Module):
    """Depth-wise 3x3 conv on tokens: ``(B, h*w, C)`` -> ``(B, h*w, C)``."""

    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x, hw):
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, *hw))
        return x.flatten(2).transpose(1, 2)


class ConvFFN(nn.Module):
    """``fc2(GELU(DWConv3x3(fc1(x))))``: ``(B, h*w, C)`` -> ``(B, h*w, C)``."""

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DWConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x, hw):
        return self.fc2(self.act(self.dwconv(self.fc1(x), hw)))


def _norm(norm, dim):
    """``'layernorm'`` -> LayerNorm(eps=1e-6); ``'none'`` -> Identity (speed-up configs)."""
    return nn.LayerNorm(dim, eps=1e-6) if norm == 'layernorm' else nn.Identity()


class Injector(nn.Module):
    """Deformable cross-attention from ``feat`` into ``query`` plus a gated ConvFFN.

    The attention runs in fp32 (autocast off, inputs cast to float) and its
    output is cast back to the query dtype. DropPath wraps the FFN branch only.
    """

    def __init__(self, dim, dim_feat, num_heads=16, n_points=4, deform_ratio=0.5, norm='layernorm',
                 with_cffn=True, cffn_ratio=0.25, drop_path=0.0, with_cp=False):
        super().__init__()
        self.with_cp = with_cp
        self.query_norm = _norm(norm, dim)
        self.feat_norm = _norm(norm, dim_feat)
        self.attn = MSDeformAttn(dim, num_heads, 1, n_points, deform_ratio, dim_feat)
        self.ca_gamma = nn.Parameter(torch.zeros(dim))
        self.with_cffn = with_cffn
        if with_cffn:
            self.cffn_gamma = nn.Parameter(torch.zeros(dim))
            self.ffn = ConvFFN(dim, int(dim * cffn_ratio))
            self.ffn_norm = _norm(norm, dim)
            self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _forward(self, query, feat, q_hw, kv_hw):
        ref = reference_points(q_hw, query.device)
        shapes = torch.as_tensor([kv_hw], dtype=torch.long, device=query.device)
        start = shapes.new_zeros(1)
        with torch.autocast(device_type=query.device.type, enabled=False):
            attn = self.attn(self.query_norm(query).float(), ref, self.feat_norm(feat).float(),
                             shapes, start)
        query = query + self.ca_gamma * attn.to(query.dtype)
        if self.with_cffn:
            query = query + self.cffn_gamma * self.drop_path(self.ffn(self.ffn_norm(query), q_hw))
        return query

    def forward(self, query, feat, q_hw, kv_hw):
        """query ``(B, N_q, d)`` on grid ``q_hw``, feat ``(B, N_kv, d_feat)`` on ``kv_hw``
        -> updated query ``(B, N_q, d)``."""
        if self.with_cp and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, query, feat, q_hw, kv_hw, use_reentrant=False)
        return self._forward(query, feat, q_hw, kv_hw)


class BidirectionalInteractionUnit(nn.Module):
    """Two injectors between branch a (larger model, index j) and b (index j+1).

    With ``proj=True`` both directions read linear projections of the
    *pre-update* features; with ``proj=False`` the value projection reads the
    other branch's width directly.
    """

    def __init__(self, dim_a, dim_b, proj=True, **injector_kwargs):
        super().__init__()
        self.proj = proj
        if proj:
            self.branch2to1_proj = nn.Linear(dim_b, dim_a)
            self.branch1to2_proj = nn.Linear(dim_a, dim_b)
        self.branch2to1_injector = Injector(dim_a, dim_a if proj else dim_b, **injector_kwargs)
        self.branch1to2_injector = Injector(dim_b, dim_b if proj else dim_a, **injector_kwargs)

    def forward(self, x_a, x_b, hw_a, hw_b):
        """``x_a (B, N_a, d_a)``, ``x_b (B, N_b, d_b)`` -> both updated."""
        feat_b2a = self.branch2to1_proj(x_b) if self.proj else x_b
        feat_a2b = self.branch1to2_proj(x_a) if self.proj else x_a
        x_a = self.branch2to1_injector(x_a, feat_b2a, hw_a, hw_b)
        x_b = self.branch1to2_injector(x_b, feat_a2b, hw_b, hw_a)
        return x_a, x_b


class InteractionBlock(nn.Module):
    """All units of one stage: ``interaction_units_{j}{j+1}`` for adjacent branches.

    The units run from the last pair to the first ((3,4), (2,3), (1,2)), so a
    unit sees the branch that the unit after it already updated.
    """

    def __init__(self, dims, **unit_kwargs):
        super().__init__()
        self.num_branches = len(dims)
        for j in range(self.num_branches - 1):
            self.add_module(self._name(j), BidirectionalInteractionUnit(dims[j], dims[j + 1],
                                                                        **unit_kwargs))
        self.reset_parameters()

    @staticmethod
    def _name(j):
        return f'interaction_units_{j + 1}{j + 2}'

    def reset_parameters(self):
        """Official init: Linear trunc-normal(0.02), LayerNorm (1, 0), conv normal(0,
        sqrt(2 / fan_out)); then MSDA's own init on top; gammas stay zero."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m.reset_parameters()

    def forward(self, feats, hws):
        """``feats[j]`` ``(B, N_j, d_j)`` on grid ``hws[j]`` -> list of updated tokens."""
        feats = list(feats)
        for j in reversed(range(self.num_branches - 1)):
            unit = getattr(self, self._name(j))
            feats[j], feats[j + 1] = unit(feats[j], feats[j + 1], hws[j], hws[j + 1])
        return feats
