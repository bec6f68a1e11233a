"""Camera <-> BEV view transforms, written once for every model family.

- :class:`DepthNet` (``depth_net.py``): BEVDepth-style depth-bin logits + context features;
- :class:`LSSViewTransform` / :class:`BEVToCamera` (``lss.py``): lift-splat camera -> BEV and
  its inverse, on the frustum geometry of ``frustum.py`` and the pooling of ``bev_pool.py``;
- :class:`DepthLoss`, :func:`depth_metrics` (``depth_loss.py``).

Frames, shapes and conventions: ``docs/view_transforms.md``.
"""
from .bev_pool import PoolRanks, bev_pool, compute_ranks
from .depth_loss import DepthLoss, depth_metrics, expected_depth
from .depth_net import CAMERA_PARAM_DIM, DepthNet, camera_params
from .frustum import (bev_cells, bev_sample_grid, depth_bin_centres, feature_size,
                      frustum_to_lidar, ground_depth, img_to_lidar_matrix, make_frustum,
                      soft_depth_bins)
from .lss import BEVToCamera, LSSViewTransform, ViewTransformInputError

__all__ = ['PoolRanks', 'bev_pool', 'compute_ranks', 'DepthLoss', 'depth_metrics',
           'expected_depth', 'CAMERA_PARAM_DIM', 'DepthNet', 'camera_params', 'bev_cells',
           'bev_sample_grid', 'depth_bin_centres', 'feature_size', 'frustum_to_lidar',
           'ground_depth', 'img_to_lidar_matrix', 'make_frustum', 'soft_depth_bins',
           'BEVToCamera', 'LSSViewTransform',
           'ViewTransformInputError']
