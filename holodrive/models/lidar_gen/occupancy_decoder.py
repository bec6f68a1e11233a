"""Decoder of the LiDAR tokenizer: BEV code vectors -> per-voxel occupancy logits.

    codes (B, D, h, w) -> Conv2d 3x3 + BN + ReLU blocks -> 1x1 to Z * r^2 channels
      -> PixelShuffle(r) -> occupancy logits (B, Z, H, W)      (r = H / h, the token stride)
    [optional intensity head with the same shape: per-voxel intensity in [0, 1] (sigmoid)]

The occupancy bias starts at ``occupancy_bias_init`` (the reference uses -5, i.e. an
occupied prior of 0.7%), so training starts from "empty" and the BCE is not swamped by the
empty voxels (OpenDWM ``VQPointCloud``: pixel-shuffle decoder, BCE, bias init -5).
"""
from typing import Sequence

import torch
from mmcv.cnn import ConvModule
from torch import nn

from holodrive.registry import MODELS
from .voxel_grid import VoxelGrid


@MODELS.register_module()
class OccupancyDecoder(nn.Module):
    """Pixel-shuffle occupancy decoder (module docstring).

    Args:
        in_channels: code width ``D``.
        point_cloud_range, voxel_size: the :class:`VoxelGrid` (gives ``Z, H, W``).
        token_stride: ``r``, BEV cells per token side.
        channels: width of the 2D blocks.
        num_blocks: number of 3x3 blocks before the pixel shuffle.
        with_intensity: add the intensity head.
        occupancy_bias_init: initial bias of the occupancy logits.
    """

    def __init__(self, in_channels: int, point_cloud_range: Sequence[float],
                 voxel_size: Sequence[float], token_stride: int, channels: int = 128,
                 num_blocks: int = 2, with_intensity: bool = False,
                 occupancy_bias_init: float = -5.0):
        super().__init__()
        self.grid = VoxelGrid(point_cloud_range, voxel_size)
        nz, ny, nx = self.grid.shape
        self.token_stride = int(token_stride)
        if ny % self.token_stride or nx % self.token_stride:
            raise ValueError(f'the grid {self.grid.shape} is not a whole number of tokens of '
                             f'stride {token_stride}: choose voxel_size / point_cloud_range so '
                             'that H and W divide by the token stride')
        blocks, ch = [], in_channels
        for _ in range(num_blocks):
            blocks.append(ConvModule(ch, channels, 3, padding=1, norm_cfg=dict(type='BN2d'),
                                     act_cfg=dict(type='ReLU')))
            ch = channels
        self.blocks = nn.Sequential(*blocks)
        r2 = self.token_stride ** 2
        self.occupancy_head = nn.Sequential(nn.Conv2d(ch, nz * r2, 1),
                                            nn.PixelShuffle(self.token_stride))
        nn.init.constant_(self.occupancy_head[0].bias, occupancy_bias_init)
        self.intensity_head = (nn.Sequential(nn.Conv2d(ch, nz * r2, 1),
                                             nn.PixelShuffle(self.token_stride))
                               if with_intensity else None)

    def forward(self, codes: torch.Tensor) -> dict:
        """``codes`` ``(B, D, h, w)`` -> dict ``occupancy_logits`` ``(B, Z, H, W)`` [and
        ``intensity`` ``(B, Z, H, W)`` in [0, 1]]."""
        nz, ny, nx = self.grid.shape
        h, w = codes.shape[-2:]
        if (h * self.token_stride, w * self.token_stride) != (ny, nx):
            raise ValueError(f'token grid {h}x{w} x stride {self.token_stride} does not cover '
                             f'the voxel grid {ny}x{nx}: encoder and decoder configs disagree')
        x = self.blocks(codes)
        out = dict(occupancy_logits=self.occupancy_head(x))
        if self.intensity_head is not None:
            out['intensity'] = torch.sigmoid(self.intensity_head(x))
        return out
