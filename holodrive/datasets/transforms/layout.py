"""Per-camera layout images: the 3D boxes and the HD map as each camera sees them.

These are the layout conditions of the camera generators: for each view, a stack of binary
channels at a chosen resolution,

- the map layers of ``map_bev`` (drivable area, lanes, crossings, walkways, dividers ...)
  projected onto the ground plane (each pixel's ray meets the ego ground plane ``z_ego = 0``
  and reads the BEV raster cell there, so camera and BEV layouts agree by construction);
- one channel per box class group (the groups of ``RasterizeBoxBEV``), the boxes drawn as
  filled solids with correct depth order: each pixel belongs to the nearest box its ray hits
  (open3d's Embree ray caster on the box meshes), and boxes hide the map behind them.

Everything is computed from the final ``lidar2img`` and ``lidar_aug_matrix`` (see
:mod:`.augment`), so the layout follows every augmentation.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from holodrive.registry import TRANSFORMS
from holodrive.utils.geometry import box_corners
from ..constants import DETECTION_CLASSES
from .augment import ensure_geometry, pad4
from .bev import DEFAULT_CLASS_GROUPS, boxes_and_labels, label_to_channel

#: Box faces as corner quads (mmdet3d corner order, see holodrive.utils.geometry).
_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (3, 2, 6, 7), (0, 3, 7, 4), (1, 2, 6, 5))
_TRIANGLES = np.array([(a, b, c) for a, b, c, d in _FACES] + [(a, c, d) for a, b, c, d in _FACES],
                      dtype=np.uint32)


def box_meshes(corners: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(N, 8, 3)`` corners -> vertices ``(8N, 3)`` float32, triangles ``(12N, 3)`` uint32
    and the box index of each triangle ``(12N,)``."""
    n = len(corners)
    verts = corners.reshape(-1, 3).astype(np.float32)
    tris = (_TRIANGLES[None] + 8 * np.arange(n, dtype=np.uint32)[:, None, None]).reshape(-1, 3)
    return verts, tris, np.repeat(np.arange(n), len(_TRIANGLES))


def pixel_rays(lidar2pix: np.ndarray, width: int, height: int):
    """Rays through the pixel centres of a ``width x height`` image.

    Returns ``origin (3,)`` (the camera centre in the LiDAR frame) and ``dirs (h, w, 3)``
    scaled so that ``t`` along them is the depth along the camera axis.
    """
    p = np.asarray(lidar2pix, dtype=np.float64)[:3]
    m_inv = np.linalg.inv(p[:, :3])
    origin = -m_inv @ p[:, 3]
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    return origin, pix @ m_inv.T


def nearest_box_hits(corners: np.ndarray, origins: np.ndarray, dirs: np.ndarray):
    """Cast rays ``origins + t dirs`` (``(R, 3)`` each) at the boxes ``(N, 8, 3)``.

    Returns ``t (R,)`` (inf: no hit) and the nearest box index ``(R,)`` (-1: none).
    """
    if len(corners) == 0 or len(origins) == 0:
        return np.full(len(origins), np.inf), np.full(len(origins), -1, np.int64)
    import open3d as o3d
    verts, tris, owner = box_meshes(corners)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(verts), o3d.core.Tensor(tris))
    rays = np.concatenate([origins, dirs], axis=1).astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor(rays))
    t = hit['t_hit'].numpy().astype(np.float64)
    prim = hit['primitive_ids'].numpy().astype(np.int64)
    ok = np.isfinite(t) & (t > 0)
    box = np.where(ok, owner[np.clip(prim, 0, len(owner) - 1)], -1)
    return np.where(ok, t, np.inf), box


@TRANSFORMS.register_module()
class ProjectLayoutToCameras(BaseTransform):
    """Draw the map and box layout into every camera view (module docstring).

    Required keys: camera calibration (``images`` or the loaded matrices), ``img`` (for the
    image size; or ``img_shape``, or the info's ``height`` / ``width``), ``lidar_points.lidar2ego``; for the map channels
    ``map_bev`` + ``map_bev_grid`` from ``RasterizeMapBEV`` (placed before this transform,
    after the augmentations; use a fine resolution such as 0.25 m for sharp lines); boxes
    from ``gt_bboxes_3d`` / ``gt_labels_3d`` (or ``ann_info``).

    Added keys: ``layout_images`` uint8 ``(V, C_map + G, h, w)`` 0/1 and
    ``layout_channels`` (the names: map layers, then class groups joined by ``'+'``).

    Args:
        scale: output size relative to the (augmented) image, e.g. 0.25; ignored when
            ``size`` is given.
        size: ``(w, h)`` of the layout images.
        class_groups, classes: box channels, as ``RasterizeBoxBEV``.
        with_map: draw the ``map_bev`` channels (requires them).
        max_distance: ignore hits farther than this (metres along the camera axis).
    """

    def __init__(self, scale: float = 0.25, size: Optional[Sequence[int]] = None,
                 class_groups=DEFAULT_CLASS_GROUPS, classes: Sequence[str] = DETECTION_CLASSES,
                 with_map: bool = True, max_distance: float = 100.0):
        self.scale = float(scale)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.class_groups = tuple(tuple(g) for g in class_groups)
        self.label_to_channel = label_to_channel(self.class_groups, tuple(classes))
        self.with_map = with_map
        self.max_distance = float(max_distance)

    def _image_size(self, results: dict, i: int) -> Tuple[int, int]:
        if 'img' in results:
            h, w = results['img'][i].shape[:2]
        elif 'img_shape' in results:
            h, w = results['img_shape'][:2]
        else:                               # images not loaded: the recorded size
            view = list(results['images'].values())[i]
            h, w = view['height'], view['width']
        return int(w), int(h)

    def transform(self, results: dict) -> dict:
        ensure_geometry(results)
        if self.with_map and 'map_bev' not in results:
            raise KeyError('ProjectLayoutToCameras(with_map=True) needs map_bev: put '
                           'RasterizeMapBEV before it in the pipeline (after augmentations)')
        boxes, labels = boxes_and_labels(results)
        valid = (labels >= 0) & (labels < len(self.label_to_channel))
        channel = np.full(len(labels), -1, np.int64)
        channel[valid] = self.label_to_channel[labels[valid]]
        corners = box_corners(boxes[channel >= 0], origin=(0.5, 0.5, 0.0))
        box_channel = channel[channel >= 0]
        n_map = len(results['map_bev']) if self.with_map else 0
        n_ch = n_map + len(self.class_groups)
        # ground plane z_ego = 0 in the augmented LiDAR frame: q . [p, 1] = 0
        lidar2ego = pad4(results['lidar_points']['lidar2ego'])
        aug_inv = np.linalg.inv(np.asarray(results['lidar_aug_matrix'], dtype=np.float64))
        q = (lidar2ego @ aug_inv)[2]
        out = []
        for i, lidar2img in enumerate(results['lidar2img']):
            w, h = self._image_size(results, i)
            lw, lh = self.size or (max(1, int(round(w * self.scale))),
                                   max(1, int(round(h * self.scale))))
            sx, sy = lw / w, lh / h       # pixel centres: u' = (u + 0.5) sx - 0.5
            img2layout = np.array([[sx, 0, 0, 0.5 * sx - 0.5], [0, sy, 0, 0.5 * sy - 0.5],
                                   [0, 0, 1, 0], [0, 0, 0, 1]])
            origin, dirs = pixel_rays(img2layout @ np.asarray(lidar2img), lw, lh)
            dirs = dirs.reshape(-1, 3)
            t_box, box = nearest_box_hits(corners, np.broadcast_to(origin, dirs.shape), dirs)
            box[t_box > self.max_distance] = -1
            layout = np.zeros((n_ch, lh * lw), np.uint8)
            hit = box >= 0
            layout[n_map + box_channel[box[hit]], np.nonzero(hit)[0]] = 1
            if n_map:
                denom = dirs @ q[:3]
                with np.errstate(divide='ignore', invalid='ignore'):
                    t_ground = -(q[:3] @ origin + q[3]) / denom
                ground = np.isfinite(t_ground) & (t_ground > 0) & (t_ground < t_box) & \
                    (t_ground <= self.max_distance)
                idx = np.nonzero(ground)[0]
                pts = origin + t_ground[idx, None] * dirs[idx]
                layout[:n_map, idx] = self._sample_map(results, pts)
            out.append(layout.reshape(n_ch, lh, lw))
        results['layout_images'] = np.stack(out) if out else np.zeros((0, n_ch, 0, 0), np.uint8)
        names = list(results.get('map_bev_layers', ()))[:n_map]
        results['layout_channels'] = tuple(names) + tuple('+'.join(g) for g in self.class_groups)
        return results

    @staticmethod
    def _sample_map(results: dict, pts_lidar: np.ndarray) -> np.ndarray:
        """``(C, R)`` map raster values at ground points (augmented LiDAR frame)."""
        grid = results['map_bev_grid']
        frame = getattr(grid, 'frame', None) or results.get('map_bev_frame', 'lidar')
        if frame == 'ego':
            e = pad4(results['lidar_points']['lidar2ego'])
            pts_lidar = pts_lidar @ e[:3, :3].T + e[:3, 3]
        pix = np.round(grid.to_pixel(pts_lidar[:, :2])).astype(np.int64)
        inside = (pix[:, 0] >= 0) & (pix[:, 0] < grid.width) & \
            (pix[:, 1] >= 0) & (pix[:, 1] < grid.height)
        raster = np.asarray(results['map_bev'])
        vals = np.zeros((len(raster), len(pts_lidar)), np.uint8)
        vals[:, inside] = raster[:, pix[inside, 1], pix[inside, 0]]
        return vals

    def __repr__(self):
        return (f'{type(self).__name__}(scale={self.scale}, size={self.size}, '
                f'class_groups={self.class_groups}, with_map={self.with_map})')
