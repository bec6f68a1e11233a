"""Branch ViTs of PIIP: DeiT / DeiT III (T, S, B, L), MAE ViT-H and InternViT-6B.

One :class:`ViT` serves every branch; the block type decides the residual
block and with it the parameter names, which follow the official PIIP
checkpoints (``backbone.branch{j}.`` + the names below):

- ``block_type='deit'`` (DeiT, DeiT III): ``blocks.i.{norm1, attn.qkv,
  attn.proj, norm2, mlp.fc1, mlp.fc2, gamma_1, gamma_2}``;
- ``block_type='internvit'`` (InternViT-6B, and MAE ViT-H as the official code
  builds it): ``blocks.i.{norm1, attn.qkv, attn.q_norm, attn.k_norm,
  attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}``;
- both: ``patch_embed.proj`` and ``pos_embed``.

Shapes: images ``(B, 3, H, W)``; tokens ``(B, N, C)`` with ``N = h * w``,
``h = H // patch_size``, ``w = W // patch_size``, row-major over the grid.
There is no cls token (detection) and no final norm.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks.drop import DropPath


def resize_pos_embed(pos_embed, dst_hw, src_hw=None):
    """Bicubic resize of a grid position embedding (computed in fp32).

    Args:
        pos_embed (Tensor): ``(1, src_h * src_w, C)``, no cls slot.
        dst_hw (tuple[int, int]): target grid ``(h, w)``.
        src_hw (tuple[int, int] | None): source grid; square when None.

    Returns:
        Tensor: ``(1, h * w, C)`` in the dtype of ``pos_embed``.
    """
    if src_hw is None:
        side = math.isqrt(pos_embed.shape[1])
        src_hw = (side, side)
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    grid = pos_embed.reshape(1, src_hw[0], src_hw[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=tuple(dst_hw), mode='bicubic',
                         align_corners=False)
    return grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)


def resize_patch_kernel(weight, patch_size):
    """Bicubic resize of a patch-embedding kernel ``(C, 3, p0, p0)`` to ``(C, 3, p, p)``.

    Used when a checkpoint was pretrained with another patch size (e.g. InternViT 14 -> 16).
    """
    if weight.shape[-1] == patch_size and weight.shape[-2] == patch_size:
        return weight
    return F.interpolate(weight.float(), size=(patch_size, patch_size), mode='bicubic',
                         align_corners=False).to(weight.dtype)


class RMSNorm(nn.Module):
    """RMSNorm over the last dim, fp32 inside; parameter ``weight`` ``(C,)``."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def build_norm(norm_type, dim):
    """``'layernorm'`` -> LayerNorm(eps=1e-6); ``'rmsnorm'`` -> RMSNorm(eps=1e-6)."""
    if norm_type == 'layernorm':
        return nn.LayerNorm(dim, eps=1e-6)
    if norm_type == 'rmsnorm':
        return RMSNorm(dim, eps=1e-6)
    raise ValueError(f"norm_type={norm_type!r} is unknown; use 'layernorm' or 'rmsnorm'")


def window_partition(x, hw, window):
    """``(B, h*w, C)`` -> ``(B * nWin, window*window, C)``, zero-padding the grid
    bottom/right to multiples of ``window`` (no mask, as in the official code)."""
    (h, w), (b, _, c) = hw, x.shape
    hp, wp = math.ceil(h / window) * window, math.ceil(w / window) * window
    x = F.pad(x.reshape(b, h, w, c), (0, 0, 0, wp - w, 0, hp - h))
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c), (hp, wp)


def window_reverse(windows, hw, padded_hw, window):
    """Inverse of :func:`window_partition`: ``(B * nWin, window*window, C)`` -> ``(B, h*w, C)``."""
    (h, w), (hp, wp), c = hw, padded_hw, windows.shape[-1]
    x = windows.view(-1, hp // window, wp // window, window, window, c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, hp, wp, c)
    return x[:, :h, :w].reshape(-1, h * w, c)


class Attention(nn.Module):
    """Multi-head self-attention, global or windowed, through ``F.scaled_dot_product_attention``.

    Windowed attention pads the (normalised) input tokens with zeros before ``qkv``,
    as the official flash-attention path does, so padded keys carry the qkv bias.

    Args:
        dim (int): width C.
        num_heads (int): heads; C must be divisible by it.
        qkv_bias (bool): bias of ``qkv``.
        window_size (int): window side in tokens; 0 means global attention.
        qk_norm (str | None): norm type applied to q and k over all C channels
            (InternViT-6B: ``'rmsnorm'``); None for none.
    """

    def __init__(self, dim, num_heads, qkv_bias=True, window_size=0, qk_norm=None):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.qk_norm = qk_norm is not None
        if self.qk_norm:
            self.q_norm = build_norm(qk_norm, dim)
            self.k_norm = build_norm(qk_norm, dim)

    def forward(self, x, hw):
        """``x`` ``(B, N, C)`` on the grid ``hw = (h, w)`` -> ``(B, N, C)``."""
        if self.window_size > 0:
            x, padded_hw = window_partition(x, hw, self.window_size)
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, c).unbind(2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(b, n, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        x = F.scaled_dot_product_attention(q, k, v)          # (B, heads, N, C / heads)
        x = x.transpose(1, 2).reshape(b, n, c)
        if self.window_size > 0:
            x = window_reverse(x, hw, padded_hw, self.window_size)
        return self.proj(x)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2, ``(B, N, C)`` -> ``(B, N, C)``."""

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` ``(C,)`` (InternViT naming: ``ls1.gamma``)."""

    def __init__(self, dim, init_values):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class DeiTBlock(nn.Module):
    """DeiT / DeiT III block with layer scale ``gamma_1`` / ``gamma_2`` (1.0 for DeiT v1).

    ``x + dp(gamma_1 * attn(norm1(x)))``, then ``x + dp(gamma_2 * mlp(norm2(x)))``.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, window_size=0,
                 init_values=1.0, drop_path=0.0, norm_type='layernorm', qk_norm=None):
        super().__init__()
        self.norm1 = build_norm(norm_type, dim)
        self.attn = Attention(dim, num_heads, qkv_bias, window_size, qk_norm)
        self.norm2 = build_norm(norm_type, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.gamma_1 = nn.Parameter(init_values * torch.ones(dim))
        self.gamma_2 = nn.Parameter(init_values * torch.ones(dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x, hw):
        """``(B, N, C)`` -> ``(B, N, C)``."""
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class InternViTBlock(nn.Module):
    """InternViT-6B block: RMSNorm, QK-norm over all channels, layer scale ``ls1`` / ``ls2``.

    With ``norm_type='layernorm'``, ``qk_norm=None`` and ``init_values=1.0`` it is
    the MAE ViT-H block as the official PIIP code builds it. ``init_values`` of
    None or 0 drops the layer scales (Identity, no parameters).
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, window_size=0,
                 init_values=0.1, drop_path=0.0, norm_type='rmsnorm', qk_norm='rmsnorm'):
        super().__init__()
        self.norm1 = build_norm(norm_type, dim)
        self.attn = Attention(dim, num_heads, qkv_bias, window_size, qk_norm)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = build_norm(norm_type, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x, hw):
        """``(B, N, C)`` -> ``(B, N, C)``."""
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), hw)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


BLOCK_TYPES = {'deit': DeiTBlock, 'internvit': InternViTBlock}

# The paper's branch names as thin presets of ViT keyword arguments (``arch=`` in a branch config).
ARCHS = {
    'deit-t': dict(embed_dim=192, depth=12, num_heads=3),
    'deit-s': dict(embed_dim=384, depth=12, num_heads=6),
    'deit-b': dict(embed_dim=768, depth=12, num_heads=12),
    'deit-l': dict(embed_dim=1024, depth=24, num_heads=16),
    'vit-h': dict(embed_dim=1280, depth=32, num_heads=16, block_type='internvit',
                  norm_type='layernorm', qk_norm=None, qkv_bias=True, init_values=1.0),
    'internvit-6b': dict(embed_dim=3200, depth=48, num_heads=25, block_type='internvit',
                         norm_type='rmsnorm', qk_norm='rmsnorm', qkv_bias=False, init_values=0.1),
}


def _per_block(value, depth, name):
    """A scalar or a list of ``depth`` entries -> a list of ``depth`` entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ValueError(f'{name} has {len(value)} entries for depth={depth}; '
                             f'give one per block or a single value')
        return list(value)
    return [value] * depth


class PatchEmbed(nn.Module):
    """``Conv2d(in_chans, C, k=p, s=p)`` as ``proj``: ``(B, 3, H, W)`` -> ``(B, C, H//p, W//p)``."""

    def __init__(self, in_chans, embed_dim, patch_size):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x)


class ViT(nn.Module):
    """Plain ViT branch (no cls token, no final norm) with per-forward PE resizing.

    Args:
        embed_dim (int), depth (int), num_heads (int): the ViT size.
        patch_size (int): patch side; stride of the token grid. Default 16.
        pretrain_img_size (int): side of the pretraining image; the stored
            ``pos_embed`` grid is ``pretrain_img_size // patch_size`` (14 for 224/16).
        in_chans (int): image channels. Default 3.
        mlp_ratio (float), qkv_bias (bool): block options.
        block_type (str): ``'deit'`` or ``'internvit'`` (see :data:`BLOCK_TYPES`).
        norm_type (str | None): ``'layernorm'`` / ``'rmsnorm'``; None = the block's default.
        qk_norm (str | None | bool): QK-norm type; False / None = none, True = ``norm_type``.
        init_values (float | None): layer-scale init; None = the block's default.
        window_attn (bool | list[bool]): windowed attention per block.
        window_size (int | list[int]): window side per block (used where windowed).
        drop_path_rate (float): stochastic depth; with ``drop_path_schedule='constant'``
            (PIIP's DeiT branches) every block gets it, with ``'linear'`` it ramps
            from 0 to it over depth (the official InternViT6B class).
        pos_embed_cls_slot (bool | None): ``pos_embed`` keeps an unused first (cls)
            slot, as InternViT checkpoints do; None = True for ``'internvit'``.
        with_cp (bool): activation checkpointing per block while grads are enabled.
    """

    def __init__(self, embed_dim, depth, num_heads, patch_size=16, pretrain_img_size=224,
                 in_chans=3, mlp_ratio=4.0, qkv_bias=True, block_type='deit', norm_type=None,
                 qk_norm=False, init_values=None, window_attn=False, window_size=14,
                 drop_path_rate=0.0, drop_path_schedule='constant', pos_embed_cls_slot=None,
                 with_cp=False):
        super().__init__()
        if block_type not in BLOCK_TYPES:
            raise ValueError(f'block_type={block_type!r} is unknown; use one of {sorted(BLOCK_TYPES)}')
        if embed_dim % num_heads:
            raise ValueError(f'embed_dim={embed_dim} is not divisible by num_heads={num_heads}; '
                             f'pick num_heads dividing embed_dim')
        if drop_path_schedule not in ('constant', 'linear'):
            raise ValueError(f"drop_path_schedule={drop_path_schedule!r} is unknown; "
                             f"use 'constant' or 'linear'")
        internvit = block_type == 'internvit'
        norm_type = norm_type or ('rmsnorm' if internvit else 'layernorm')
        qk_norm = norm_type if qk_norm is True else (qk_norm or None)
        if init_values is None:
            init_values = 0.1 if internvit else 1.0
        self.cls_slot = internvit if pos_embed_cls_slot is None else bool(pos_embed_cls_slot)
        self.embed_dim, self.depth, self.patch_size = embed_dim, depth, patch_size
        self.pos_grid = pretrain_img_size // patch_size
        self.with_cp = with_cp

        windowed = _per_block(window_attn, depth, 'window_attn')
        sizes = _per_block(window_size, depth, 'window_size')
        self.window_sizes = [int(s) if on else 0 for on, s in zip(windowed, sizes)]
        if drop_path_schedule == 'constant':
            rates = [drop_path_rate] * depth
        else:
            rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]

        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.pos_grid ** 2 + int(self.cls_slot), embed_dim))
        block = BLOCK_TYPES[block_type]
        self.blocks = nn.ModuleList(
            block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  window_size=self.window_sizes[i], init_values=init_values, drop_path=rates[i],
                  norm_type=norm_type, qk_norm=qk_norm)
            for i in range(depth))
        self._reset_parameters()

    def _reset_parameters(self):
        """timm-style init (the official branches rely on pretrained weights instead)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def embed(self, img):
        """Patch + position embedding.

        Args:
            img (Tensor): ``(B, 3, H, W)``.

        Returns:
            tuple: tokens ``(B, h*w, C)`` and the grid ``(h, w)``.
        """
        x = self.patch_embed(img.to(self.patch_embed.proj.weight.dtype))
        hw = tuple(x.shape[-2:])
        pos = self.pos_embed[:, 1:] if self.cls_slot else self.pos_embed
        pos = resize_pos_embed(pos, hw, (self.pos_grid, self.pos_grid))
        return x.flatten(2).transpose(1, 2) + pos.to(x.dtype), hw

    def forward_blocks(self, x, hw, start=0, end=None):
        """Run blocks ``start..end`` (inclusive) on tokens ``(B, N, C)`` of grid ``hw``."""
        end = self.depth - 1 if end is None else end
        for blk in self.blocks[start:end + 1]:
            if self.with_cp and torch.is_grad_enabled():
                x = cp.checkpoint(blk, x, hw, use_reentrant=False)
            else:
                x = blk(x, hw)
        return x

    def forward(self, img):
        """The branch run alone: ``(B, 3, H, W)`` -> ``(B, C, H//p, W//p)``."""
        x, hw = self.embed(img)
        x = self.forward_blocks(x, hw)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Adapt a plain checkpoint while loading: bicubic-resize a patch kernel of
        another size, drop or add the cls slot of ``pos_embed`` and resize its grid."""
        kernel_key, pos_key = prefix + 'patch_embed.proj.weight', prefix + 'pos_embed'
        if kernel_key in state_dict:
            state_dict[kernel_key] = resize_patch_kernel(state_dict[kernel_key], self.patch_size)
        if pos_key in state_dict and state_dict[pos_key].shape != self.pos_embed.shape:
            pos = state_dict[pos_key]
            n = pos.shape[1]
            has_cls = math.isqrt(n) ** 2 != n
            grid = resize_pos_embed(pos[:, 1:] if has_cls else pos, (self.pos_grid,) * 2)
            if self.cls_slot:
                cls = pos[:, :1] if has_cls else grid.new_zeros(1, 1, grid.shape[-1])
                grid = torch.cat([cls, grid], dim=1)
            state_dict[pos_key] = grid
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
