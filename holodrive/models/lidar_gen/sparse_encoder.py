"""Encoder of the LiDAR tokenizer: sparse 3D convolutions over the occupied voxels, then dense
2D stages on the BEV (height folded into channels) down to the token grid.

    occupied voxels (M, 4) (batch, k, i, j), feature 1
      -> sparse stages (spconv SubMConv3d / SparseConv3d + BN + ReLU, the CPU/GPU-safe classes
         of holodrive.compat registered under mmdet3d's names)
      -> dense (B, C, Z', H', W') -> (B, C * Z', H', W')
      -> 2D stages (Conv2d + BN + ReLU, strides from the config) -> (B, D, h, w) token features

A nuScenes sweep fills well under 1% of the fine grid, so the sparse stages cost a small
fraction of dense ``Conv3d`` layers. :meth:`SparseBEVEncoder.sparse_stages_dense` runs the same
layers with the same weights as dense ``conv3d`` on the full volume (inactive sites masked as
spconv leaves them empty): the reference for the equivalence test and the dense side of
``tools/analysis_tools/sparse_encoder_benchmark.py``.
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet3d.models.layers import make_sparse_convmodule
from torch import nn

from holodrive.registry import MODELS
from .voxel_grid import VoxelGrid


def _triple(v) -> tuple:
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v, v)


@MODELS.register_module()
class SparseBEVEncoder(nn.Module):
    """Sparse 3D then dense 2D encoder (module docstring).

    Args:
        point_cloud_range, voxel_size: the :class:`VoxelGrid`.
        sparse_stages: list of ``dict(channels, stride, num_blocks)``; a stage with a stride
            other than 1 starts with a ``SparseConv3d`` (kernel 3, padding 1) of that stride
            (int or ``(z, y, x)``), every other layer is a ``SubMConv3d`` (kernel 3).
        bev_stages: list of ``dict(channels, stride, num_blocks)`` for the dense 2D part.
        out_channels: width ``D`` of the token features (a 1x1 projection).
    """

    def __init__(self, point_cloud_range: Sequence[float], voxel_size: Sequence[float],
                 sparse_stages: Sequence[dict] = (dict(channels=16, stride=1, num_blocks=1),
                                                  dict(channels=32, stride=2, num_blocks=1)),
                 bev_stages: Sequence[dict] = (dict(channels=128, stride=2, num_blocks=1),),
                 out_channels: int = 64):
        super().__init__()
        self.grid = VoxelGrid(point_cloud_range, voxel_size)
        norm1d = dict(type='BN1d', eps=1e-3, momentum=0.01)
        layers, in_ch, shape = [], 1, list(self.grid.shape)
        for s, stage in enumerate(sparse_stages):
            stride = _triple(stage.get('stride', 1))
            for n in range(stage.get('num_blocks', 1) + (stride != (1, 1, 1))):
                down = n == 0 and stride != (1, 1, 1)
                layers.append(make_sparse_convmodule(
                    in_ch, stage['channels'], 3, indice_key=f'subm{s}' if not down else f'down{s}',
                    stride=stride if down else 1, padding=1 if down else 0, norm_cfg=norm1d,
                    conv_type='SparseConv3d' if down else 'SubMConv3d'))
                in_ch = stage['channels']
            shape = [(d + 2 - 3) // st + 1 for d, st in zip(shape, stride)]
        self.sparse_layers = nn.ModuleList(layers)
        self.sparse_out_shape = tuple(shape)                          # (Z', H', W')
        bev, ch = [], in_ch * shape[0]
        for stage in bev_stages:
            for n in range(stage.get('num_blocks', 1)):
                bev.append(ConvModule(ch, stage['channels'], 3,
                                      stride=stage.get('stride', 1) if n == 0 else 1, padding=1,
                                      norm_cfg=dict(type='BN2d'), act_cfg=dict(type='ReLU')))
                ch = stage['channels']
        self.bev_layers = nn.Sequential(*bev)
        self.out_proj = nn.Conv2d(ch, out_channels, 1)
        self.out_channels = out_channels
        total = shape[1]
        for stage in bev_stages:
            total = (total + 2 - 3) // stage.get('stride', 1) + 1
        self.token_shape = (total, total * shape[2] // shape[1])      # (h, w)

    # ------------------------------------------------------------------ sparse stages
    def sparse_stages(self, indices: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Sparse stages on occupied voxels ``indices`` ``(M, 4)`` int32 (b, k, i, j).

        Returns the dense ``(B, C, Z', H', W')`` output (zeros where spconv has no site).
        """
        from spconv.pytorch import SparseConvTensor
        if len(indices) == 0:   # no active site anywhere: spconv's output is all zeros
            channels = self.sparse_layers[-1][0].out_channels
            return torch.zeros(batch_size, channels, *self.sparse_out_shape,
                               device=indices.device)
        x = SparseConvTensor(torch.ones(len(indices), 1, device=indices.device),
                             indices.int(), list(self.grid.shape), batch_size)
        for layer in self.sparse_layers:
            x = layer(x)
        return x.dense()

    def sparse_stages_dense(self, occupancy: torch.Tensor) -> torch.Tensor:
        """The same layers as dense ``conv3d`` over ``occupancy`` ``(B, Z, H, W)`` 0/1.

        Every conv runs on the whole volume; its output is masked to spconv's active sites
        (unchanged for ``SubMConv3d``; any active input in the receptive field for a strided
        ``SparseConv3d``). Equal to :meth:`sparse_stages` for BN in eval mode.
        """
        x = occupancy.unsqueeze(1)
        mask = occupancy.unsqueeze(1) > 0
        for layer in self.sparse_layers:
            conv, norm = layer[0], layer[1]
            weight = conv.weight.permute(0, 4, 1, 2, 3)              # spconv (O, kz, ky, kx, I)
            stride, padding = _triple(conv.stride), _triple(conv.padding)
            if getattr(conv, 'subm', False):
                padding = tuple(k // 2 for k in _triple(conv.kernel_size))
            else:
                mask = F.max_pool3d(mask.float(), _triple(conv.kernel_size), stride,
                                    padding) > 0
            x = F.conv3d(x, weight, conv.bias, stride, padding, _triple(conv.dilation))
            if self.training:
                raise RuntimeError('sparse_stages_dense reproduces the eval-mode network; '
                                   'call .eval() first (BN statistics differ in training)')
            x = F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                             False, 0.0, norm.eps)
            x = F.relu(x) * mask
        return x

    # ------------------------------------------------------------------ full encoder
    def bev_stages(self, volume: torch.Tensor) -> torch.Tensor:
        """``(B, C, Z', H', W')`` sparse-stage output -> ``(B, D, h, w)`` token features."""
        b, c, z, h, w = volume.shape
        return self.out_proj(self.bev_layers(volume.reshape(b, c * z, h, w)))

    def forward(self, points_list: List[torch.Tensor]) -> torch.Tensor:
        """Sweeps ``[(N_b, >=3)]`` (LiDAR frame) -> token features ``(B, D, h, w)``."""
        indices = self.grid.sparse_indices(points_list)
        return self.bev_stages(self.sparse_stages(indices, len(points_list)))
