"""Sparse LiDAR depth per camera: full-resolution maps and per-cell targets for models.

``ProjectLidarDepth`` projects the (augmented) points with the final ``lidar2img`` into the
(augmented) images, so the maps follow every augmentation. For a feature map of stride
``s`` (16 for a ViT, 8 for a VAE latent) it also gives the minimum depth per ``s x s`` cell,
a validity mask and depth-bin one-hot targets (LSS / BEVDepth style).
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from holodrive.registry import TRANSFORMS
from .augment import ensure_geometry


def project_depth(points_lidar: np.ndarray, lidar2img: np.ndarray, height: int,
                  width: int, min_depth: float = 0.1,
                  max_depth: Optional[float] = None) -> np.ndarray:
    """Z-buffer LiDAR points into one image.

    Args:
        points_lidar: ``(N, 3)`` xyz in the LiDAR frame.
        lidar2img: ``(4, 4)`` (or 3x4) ``cam2img @ lidar2cam`` (times ``img_aug_matrix``).
        height, width: image size in pixels.
        min_depth, max_depth: keep points with depth in this range (metres).

    Returns:
        ``(height, width)`` float32 depth in metres along the camera z axis; 0 where
        no point falls. A point at continuous pixel ``(u, v)`` goes to the pixel
        ``(round(v), round(u))`` (integer coordinates are pixel centres); the nearest
        point wins.
    """
    lidar2img = np.asarray(lidar2img, dtype=np.float64)
    xyz1 = np.concatenate([points_lidar[:, :3].astype(np.float64),
                           np.ones((len(points_lidar), 1))], axis=1)
    cam = xyz1 @ lidar2img[:3].T                              # (N, 3): u*d, v*d, d
    depth = cam[:, 2]
    keep = depth > min_depth
    if max_depth is not None:
        keep &= depth < max_depth
    cam, depth = cam[keep], depth[keep]
    u = np.round(cam[:, 0] / depth).astype(np.int64)
    v = np.round(cam[:, 1] / depth).astype(np.int64)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    flat = np.full(height * width, np.inf)
    np.minimum.at(flat, v[inside] * width + u[inside], depth[inside])
    flat[np.isinf(flat)] = 0.0
    return flat.reshape(height, width).astype(np.float32)


def min_pool_depth(depth: np.ndarray, stride: int) -> np.ndarray:
    """``(..., H, W)`` depth (0 = none) -> ``(..., ceil(H/s), ceil(W/s))`` min depth per
    ``s x s`` cell (0 where the cell has no point). Border cells cover what is left."""
    *lead, h, w = depth.shape
    hs, ws = -(-h // stride), -(-w // stride)
    pad = np.full(tuple(lead) + (hs * stride, ws * stride), np.inf, np.float32)
    pad[..., :h, :w] = np.where(depth > 0, depth, np.inf)
    cells = pad.reshape(tuple(lead) + (hs, stride, ws, stride)).min(axis=(-3, -1))
    cells[np.isinf(cells)] = 0.0
    return cells.astype(np.float32)


def depth_bin_targets(depth: np.ndarray, start: float, stop: float, step: float):
    """One-hot depth bins of ``(..., h, w)`` depths.

    Bin ``k`` holds ``start + k * step <= d < start + (k + 1) * step``;
    ``D = round((stop - start) / step)`` bins. Returns ``(onehot uint8 (..., D, h, w),
    valid bool (..., h, w))``; ``valid`` is False where there is no depth or it is outside
    ``[start, stop)`` (those cells are all-zero in ``onehot``).
    """
    num = int(round((stop - start) / step))
    if num <= 0:
        raise ValueError(f'depth_bins ({start}, {stop}, {step}) give no bins')
    idx = np.floor((depth - start) / step).astype(np.int64)
    valid = (depth > 0) & (depth >= start) & (idx >= 0) & (idx < num)
    onehot = (np.arange(num).reshape((num, 1, 1)) == idx[..., None, :, :]) & \
        valid[..., None, :, :]
    return onehot.astype(np.uint8), valid


@TRANSFORMS.register_module()
class ProjectLidarDepth(BaseTransform):
    """Project ``results['points']`` into every loaded camera image.

    Required keys: ``points`` (LiDAR frame; mmdet3d points or an ``(N, >=3)`` array),
    ``img`` (list of per-view ``(H, W, C)`` arrays) and the camera calibration. Uses the
    final ``lidar2img`` (see :mod:`.augment`): place it after every augmentation. With
    multi-sweep points moving objects smear; use it on key-frame points for a clean target.

    Added keys:
        ``depth_maps``: float32 ``(V, H, W)``, metres along camera z, 0 = no point
            (``full_res=False`` skips it);
        for each ``s`` in ``strides``: ``depth_s{s}`` float32 ``(V, ceil(H/s), ceil(W/s))``
        min depth per cell; ``depth_valid_s{s}`` bool (a point in the cell and inside
        ``depth_bins``' range, when given); with ``depth_bins=(start, stop, step)``:
        ``depth_bins_s{s}`` uint8 one-hot ``(V, D, h, w)``; and ``depth_bin_edges`` (D + 1,).

    Args:
        min_depth, max_depth: depth range kept (metres).
        strides: feature-map strides to make targets for, e.g. ``(16,)`` or ``(8, 16)``.
        depth_bins: ``(start, stop, step)`` in metres, e.g. ``(1.0, 60.0, 1.0)``.
        full_res: also keep the full-resolution maps.
        key: the full-resolution output key.
    """

    def __init__(self, min_depth: float = 0.1, max_depth: Optional[float] = None,
                 strides: Sequence[int] = (), depth_bins: Optional[Sequence[float]] = None,
                 full_res: bool = True, key: str = 'depth_maps'):
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.strides = tuple(int(s) for s in strides)
        if any(s < 1 for s in self.strides):
            raise ValueError(f'strides must be >= 1, got {self.strides}')
        self.depth_bins = None if depth_bins is None else tuple(float(v) for v in depth_bins)
        if self.depth_bins is not None and len(self.depth_bins) != 3:
            raise ValueError(f'depth_bins must be (start, stop, step), got {depth_bins}')
        self.full_res = full_res
        self.key = key

    def transform(self, results: dict) -> dict:
        ensure_geometry(results)
        points = results['points']
        xyz = getattr(points, 'tensor', points)
        xyz = xyz.numpy() if hasattr(xyz, 'numpy') else np.asarray(xyz)
        maps = [project_depth(xyz[:, :3], lidar2img, img.shape[0], img.shape[1],
                              self.min_depth, self.max_depth)
                for img, lidar2img in zip(results['img'], results['lidar2img'])]
        maps = np.stack(maps) if maps else np.zeros((0, 0, 0), np.float32)
        if self.full_res:
            results[self.key] = maps
        for s in self.strides:
            cells = min_pool_depth(maps, s)
            results[f'depth_s{s}'] = cells
            if self.depth_bins is None:
                results[f'depth_valid_s{s}'] = cells > 0
            else:
                onehot, valid = depth_bin_targets(cells, *self.depth_bins)
                results[f'depth_bins_s{s}'] = onehot
                results[f'depth_valid_s{s}'] = valid
        if self.depth_bins is not None:
            start, stop, step = self.depth_bins
            num = int(round((stop - start) / step))
            results['depth_bin_edges'] = (start + step * np.arange(num + 1)).astype(np.float32)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(min_depth={self.min_depth}, ' \
               f'max_depth={self.max_depth}, strides={self.strides}, ' \
               f'depth_bins={self.depth_bins}, key={self.key!r})'
