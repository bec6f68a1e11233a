"""``TemporalBEVFusion``: fuse the previous keyframe's BEV, aligned with the ego motion.

    warped = grid_sample(bev_prev, cells of the current grid moved into the previous frame)
    out    = ReLU(BN(conv3x3(cat(bev_cur, warped))))          (B, C_out, H, W)

Both maps are on the same ``BEVGrid`` (``docs/view_transforms.md``: ``bev[:, :, i, j]`` is
the cell centred at ``x = x_min + (j + 0.5) res``, ``y = y_min + (i + 0.5) res``). The motion
is ``prev2cur`` ``(B, 4, 4)``: previous LiDAR frame -> current (augmented) LiDAR frame, e.g.
``lidar_aug_matrix @ adjacent_adj2cur_lidar`` of the data path. Cells whose previous position
falls outside the grid read zeros.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from holodrive.datasets.transforms.bev import BEVGrid
from holodrive.registry import MODELS

from ..view_transforms import bev_sample_grid


def warp_bev(bev_prev: torch.Tensor, prev2cur: torch.Tensor, grid: BEVGrid) -> torch.Tensor:
    """``bev_prev`` ``(B, C, H, W)`` on ``grid`` in the previous frame -> the same map seen
    from the current frame: ``out[:, :, i, j] = bev_prev`` at the previous-frame position of
    current cell ``(i, j)`` (bilinear, zeros outside). ``prev2cur`` ``(B, 4, 4)``."""
    b, _, h, w = bev_prev.shape
    res = grid.resolution
    xs = grid.x_range[0] + (torch.arange(w, dtype=torch.float64) + 0.5) * res
    ys = grid.y_range[0] + (torch.arange(h, dtype=torch.float64) + 0.5) * res
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    cells = torch.stack([xx, yy, torch.zeros_like(xx), torch.ones_like(xx)], -1)   # (H, W, 4)
    cur2prev = torch.linalg.inv(prev2cur.double().cpu())                          # (B, 4, 4)
    pts_prev = torch.einsum('bij,hwj->bhwi', cur2prev, cells)[..., :3]
    coords = bev_sample_grid(pts_prev, grid).to(bev_prev)                          # (B, H, W, 2)
    return F.grid_sample(bev_prev, coords, mode='bilinear', padding_mode='zeros',
                         align_corners=False)


@MODELS.register_module()
class TemporalBEVFusion(BaseModule):
    """Concat the current BEV with the motion-warped previous one, then a conv.

    Args:
        in_channels: width of each BEV map.
        out_channels: output width (default ``in_channels``, so the BEV encoder is unchanged).
        bev_grid: ``dict(x_range, y_range, resolution)`` of the maps (the view transform's).
        adjacent_index: which packed neighbour is the previous keyframe (``inputs['adjacent']``).
        detach_previous: compute the previous BEV without gradients (cheaper training).
    """

    def __init__(self, in_channels: int, bev_grid: dict, out_channels: Optional[int] = None,
                 adjacent_index: int = 0, detach_previous: bool = True, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        out_channels = out_channels or in_channels
        self.grid = BEVGrid(**bev_grid)
        self.adjacent_index = int(adjacent_index)
        self.detach_previous = bool(detach_previous)
        self.fuse = nn.Sequential(nn.Conv2d(2 * in_channels, out_channels, 3, padding=1,
                                            bias=False),
                                  nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, bev_cur: torch.Tensor, bev_prev: torch.Tensor,
                prev2cur: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` x2 + ``(B, 4, 4)`` -> ``(B, C_out, H, W)``."""
        if bev_prev.shape != bev_cur.shape:
            raise ValueError(f'TemporalBEVFusion: previous BEV {tuple(bev_prev.shape)} and '
                             f'current {tuple(bev_cur.shape)} differ')
        warped = warp_bev(bev_prev, prev2cur, self.grid)
        return self.fuse(torch.cat([bev_cur, warped], dim=1))
