"""Sparse LiDAR depth per camera (the depth target of camera world models / LSS)."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from holodrive.registry import TRANSFORMS


def project_depth(points_lidar: np.ndarray, lidar2img: np.ndarray, height: int,
                  width: int, min_depth: float = 0.1,
                  max_depth: Optional[float] = None) -> np.ndarray:
    """Z-buffer LiDAR points into one image.

    Args:
        points_lidar: ``(N, 3)`` xyz in the LiDAR frame.
        lidar2img: ``(4, 4)`` (or 3x4) ``cam2img @ lidar2cam``.
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


@TRANSFORMS.register_module()
class ProjectLidarDepth(BaseTransform):
    """Project ``results['points']`` into every loaded camera image.

    Required keys: ``points`` (LiDAR frame; mmdet3d points or an ``(N, >=3)`` array),
    ``img`` (list of per-view ``(H, W, C)`` arrays), ``cam2img`` and ``lidar2cam``
    (per-view lists, as set by ``LoadMultiViewImagesChecked``). Place it after the
    image/point loading and before 3D augmentations (it assumes the recorded
    calibration). With multi-sweep points, sweeps are already motion-compensated
    into the key-frame LiDAR frame, but moving objects smear; use it on key-frame
    points for a clean target.

    Added key: ``depth_maps`` -- float32 ``(num_views, H, W)``, metres, 0 = no point.

    Args:
        min_depth, max_depth: depth range kept (metres).
        key: the output key.
    """

    def __init__(self, min_depth: float = 0.1, max_depth: Optional[float] = None,
                 key: str = 'depth_maps'):
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.key = key

    def transform(self, results: dict) -> dict:
        points = results['points']
        xyz = getattr(points, 'tensor', points)
        xyz = xyz.numpy() if hasattr(xyz, 'numpy') else np.asarray(xyz)
        maps = []
        for img, cam2img, lidar2cam in zip(results['img'], results['cam2img'],
                                           results['lidar2cam']):
            pad = np.eye(4)
            cam2img = np.asarray(cam2img, dtype=np.float64)
            pad[:cam2img.shape[0], :cam2img.shape[1]] = cam2img
            lidar2img = pad @ np.asarray(lidar2cam, dtype=np.float64)
            maps.append(project_depth(xyz[:, :3], lidar2img, img.shape[0], img.shape[1],
                                      self.min_depth, self.max_depth))
        results[self.key] = np.stack(maps) if maps else np.zeros((0, 0, 0), np.float32)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(min_depth={self.min_depth}, ' \
               f'max_depth={self.max_depth}, key={self.key!r})'
