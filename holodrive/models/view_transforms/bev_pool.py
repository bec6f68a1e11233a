"""Pure-PyTorch BEV pooling (BEVPoolv2 style): ranks precomputed, ``index_add_``, chunked.

Lift-splat sums ``depth_prob[b, v, d, i, j] * feat[b, v, :, i, j]`` of every frustum point
into the BEV cell the point falls in. Like BEVPoolv2 the geometry is reduced once to three
integer index vectors over the frustum points that land inside the grid (:class:`PoolRanks`):

- ``ranks_depth``: flat index into the depth probabilities ``(B*V*D*h*w,)``;
- ``ranks_feat``: flat index into the features ``(B*V*h*w, C)``;
- ``ranks_bev``: flat index into the output cells ``(B*H*W,)``.

They depend only on the calibration, so they can be reused for several feature maps of the
same cameras. The pooling itself is an autograd function whose forward and backward walk the
points in chunks of ``max_elements // C``, so neither direction holds a ``(points, C)``
tensor larger than ``max_elements`` (the gradient is recomputed, not stored). Runs on any
device ``index_add_`` runs on (CPU, CUDA).
"""
from typing import NamedTuple, Sequence

import torch

from holodrive.datasets.transforms.bev import BEVGrid
from .frustum import bev_cells

DEFAULT_MAX_ELEMENTS = 1 << 24     # 64 MiB of float32 per chunk


class PoolRanks(NamedTuple):
    """Index vectors of the frustum points inside the grid (module docstring)."""
    ranks_depth: torch.Tensor
    ranks_feat: torch.Tensor
    ranks_bev: torch.Tensor
    batch_size: int
    bev_shape: tuple          # (H, W)


def compute_ranks(points_lidar: torch.Tensor, grid: BEVGrid,
                  z_range: Sequence[float]) -> PoolRanks:
    """Ranks of ``points_lidar`` ``(B, V, D, h, w, 3)`` (LiDAR frame) in ``grid``; points
    outside the grid or ``z_range`` are dropped."""
    b, v, d, h, w, _ = points_lidar.shape
    row, col, inside = bev_cells(points_lidar, grid, z_range)
    dev = points_lidar.device
    ranks_depth = torch.arange(b * v * d * h * w, device=dev).view(b, v, d, h, w)
    pix = torch.arange(h * w, device=dev).view(1, 1, 1, h, w)
    cam = torch.arange(b * v, device=dev).view(b, v, 1, 1, 1)
    ranks_feat = (cam * (h * w) + pix).expand(b, v, d, h, w)
    batch = torch.arange(b, device=dev).view(b, 1, 1, 1, 1)
    ranks_bev = (batch * grid.height + row) * grid.width + col
    return PoolRanks(ranks_depth[inside], ranks_feat[inside], ranks_bev[inside], b,
                     (grid.height, grid.width))


class _BEVPool(torch.autograd.Function):

    @staticmethod
    def forward(ctx, depth, feat, ranks_depth, ranks_feat, ranks_bev, num_cells, chunk):
        out = feat.new_zeros(num_cells, feat.shape[1])
        for s in range(0, len(ranks_bev), chunk):
            sl = slice(s, s + chunk)
            out.index_add_(0, ranks_bev[sl], depth[ranks_depth[sl], None] * feat[ranks_feat[sl]])
        ctx.save_for_backward(depth, feat, ranks_depth, ranks_feat, ranks_bev)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):
        depth, feat, ranks_depth, ranks_feat, ranks_bev = ctx.saved_tensors
        need_d, need_f = ctx.needs_input_grad[:2]
        grad_depth = torch.zeros_like(depth) if need_d else None
        grad_feat = torch.zeros_like(feat) if need_f else None
        for s in range(0, len(ranks_bev), ctx.chunk):
            sl = slice(s, s + ctx.chunk)
            g = grad_out[ranks_bev[sl]]                                   # (n, C)
            if need_d:
                grad_depth.index_add_(0, ranks_depth[sl], (g * feat[ranks_feat[sl]]).sum(-1))
            if need_f:
                grad_feat.index_add_(0, ranks_feat[sl], g * depth[ranks_depth[sl], None])
        return grad_depth, grad_feat, None, None, None, None, None


def bev_pool(depth_probs: torch.Tensor, feats: torch.Tensor, ranks: PoolRanks,
             max_elements: int = DEFAULT_MAX_ELEMENTS) -> torch.Tensor:
    """Sum depth-weighted camera features into the BEV grid.

    Args:
        depth_probs: ``(B, V, D, h, w)`` depth distribution (softmax over ``D``).
        feats: ``(B, V, C, h, w)`` context features.
        ranks: from :func:`compute_ranks` for the same ``B, V, D, h, w``.
        max_elements: bound on the ``(points, C)`` temporaries of one chunk.

    Returns:
        ``(B, C, H, W)`` BEV features (``bev[:, :, i, j]``: the :class:`BEVGrid` cell ``i, j``).
    """
    b, v, c, h, w = feats.shape
    if depth_probs.shape[:2] != (b, v) or depth_probs.shape[-2:] != (h, w):
        raise ValueError(f'bev_pool: depth_probs {tuple(depth_probs.shape)} and feats '
                         f'{tuple(feats.shape)} disagree in (B, V, h, w)')
    depth_flat = depth_probs.reshape(-1).to(feats.dtype)
    feat_flat = feats.permute(0, 1, 3, 4, 2).reshape(-1, c)
    height, width = ranks.bev_shape
    num_cells = ranks.batch_size * height * width
    chunk = max(1, int(max_elements) // max(c, 1))
    out = _BEVPool.apply(depth_flat, feat_flat, ranks.ranks_depth, ranks.ranks_feat,
                         ranks.ranks_bev, num_cells, chunk)
    return out.view(ranks.batch_size, height, width, c).permute(0, 3, 1, 2).contiguous()
