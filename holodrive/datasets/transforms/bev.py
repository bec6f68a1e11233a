"""Bird's-eye-view rasters around the ego: HD-map layers and 3D-box layouts.

Grid convention (shared by :class:`RasterizeMapBEV` and :class:`RasterizeBoxBEV`):
a raster ``bev`` of shape ``(C, H, W)`` covers ``x_range`` x ``y_range`` metres of the
chosen frame (``'lidar'``: the key-frame LiDAR frame, the frame of mmdet3d's points
and boxes; ``'ego'``: the ego-vehicle frame). ``bev[c, i, j]`` is the cell centred at
``x = x_range[0] + (j + 0.5) * resolution``, ``y = y_range[0] + (i + 0.5) * resolution``
(rows along +y, columns along +x; ``W = (x_max - x_min) / resolution``).
Values are ``uint8`` 0/1.
"""
import json
import os.path as osp
import threading
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from holodrive.registry import TRANSFORMS
from ..constants import DETECTION_CLASSES, MAP_LAYERS
from holodrive.utils.geometry import box_footprints
from ..errors import MissingSampleError, NuScenesTableError

FRAMES = ('lidar', 'ego')

#: Default box-layout channels: vehicles, two-wheelers, pedestrians, static obstacles.
DEFAULT_CLASS_GROUPS = (
    ('car', 'truck', 'trailer', 'bus', 'construction_vehicle'),
    ('bicycle', 'motorcycle'),
    ('pedestrian',),
    ('traffic_cone', 'barrier'),
)


class BEVGrid:
    """A metric BEV grid (see the module docstring for the convention).

    Args:
        x_range, y_range: ``(min, max)`` in metres.
        resolution: cell size in metres.
    """

    def __init__(self, x_range=(-50.0, 50.0), y_range=(-50.0, 50.0),
                 resolution: float = 0.5):
        self.x_range = tuple(float(v) for v in x_range)
        self.y_range = tuple(float(v) for v in y_range)
        self.resolution = float(resolution)
        nx = (self.x_range[1] - self.x_range[0]) / self.resolution
        ny = (self.y_range[1] - self.y_range[0]) / self.resolution
        if nx <= 0 or ny <= 0 or abs(nx - round(nx)) > 1e-6 or abs(ny - round(ny)) > 1e-6:
            raise ValueError(f'BEV ranges {x_range} x {y_range} must be positive whole '
                             f'multiples of resolution {resolution}')
        self.width, self.height = int(round(nx)), int(round(ny))

    @property
    def shape(self) -> Tuple[int, int]:
        """(H, W)."""
        return self.height, self.width

    def to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """Metric ``(..., 2)`` x/y -> continuous (col, row); integers are cell centres."""
        xy = np.asarray(xy, dtype=np.float64)
        col = (xy[..., 0] - self.x_range[0]) / self.resolution - 0.5
        row = (xy[..., 1] - self.y_range[0]) / self.resolution - 0.5
        return np.stack([col, row], axis=-1)

    def cell_centres(self) -> Tuple[np.ndarray, np.ndarray]:
        """(x (W,), y (H,)) metric centres of the columns / rows."""
        r = self.resolution
        return (self.x_range[0] + (np.arange(self.width) + 0.5) * r,
                self.y_range[0] + (np.arange(self.height) + 0.5) * r)

    def __repr__(self):
        return (f'BEVGrid(x_range={self.x_range}, y_range={self.y_range}, '
                f'resolution={self.resolution})')


def frame2global(results: dict, frame: str) -> np.ndarray:
    """4x4 map of the chosen grid frame into the global frame, after augmentation.

    ``'lidar'``: ``lidar2global @ inv(lidar_aug_matrix)`` (the augmented LiDAR frame of the
    points and boxes); ``'ego'``: the same with the ego axes (``@ inv(lidar2ego)``). Without
    augmentation these are ``ego2global @ lidar2ego`` and ``ego2global``. With a scale or a
    flip in the augmentation the matrix is not rigid.
    """
    ego2global = np.asarray(results['ego2global'], dtype=np.float64)
    lidar2ego = np.asarray(results['lidar_points']['lidar2ego'], dtype=np.float64)
    aug = np.asarray(results.get('lidar_aug_matrix', np.eye(4)), dtype=np.float64)
    mat = ego2global @ lidar2ego @ np.linalg.inv(aug)
    return mat @ np.linalg.inv(lidar2ego) if frame == 'ego' else mat


# ----------------------------------------------------------------------------- maps
def _patched_explorer_cls():
    """NuScenesMapExplorer whose line rasteriser handles shapely 2 multi-part lines, and
    which builds each polygon / line of the map once.

    devkit 1.2.0's ``mask_for_lines`` iterates a ``MultiLineString`` directly, which
    shapely 2 forbids (``TypeError: 'MultiLineString' object is not iterable``) as
    soon as a divider leaves and re-enters the patch. Its ``get_map_mask`` rebuilds every
    polygon of a layer from its node records on every call (about 80 % of a map raster's
    time); shapely geometries are immutable, so the explorer keeps them (same rasters).
    """
    from nuscenes.map_expansion.map_api import NuScenesMapExplorer

    class _Explorer(NuScenesMapExplorer):
        def __init__(self, map_api, *args, **kwargs):
            super().__init__(map_api, *args, **kwargs)
            self._geometries = {}

        def _memo(self, kind: str, token: str, build):
            geom = self._geometries.get((kind, token))
            if geom is None:
                geom = self._geometries[(kind, token)] = build(token)
            return geom

        def extract_polygon(self, polygon_token: str):
            return self._memo('polygon', polygon_token, super().extract_polygon)

        def extract_line(self, line_token: str):
            return self._memo('line', line_token, super().extract_line)

        @staticmethod
        def mask_for_lines(lines, mask: np.ndarray) -> np.ndarray:
            for line in getattr(lines, 'geoms', [lines]):
                if line.geom_type != 'LineString' or line.is_empty:
                    continue  # points from touching the patch border carry no length
                coords = np.asarray(line.coords, np.int32).reshape(-1, 2)
                cv2.polylines(mask, [coords], False, 1, 2)
            return mask

    return _Explorer


_MAP_CACHE: Dict[Tuple[str, str], object] = {}
_MAP_LOCK = threading.Lock()


def get_nusc_map(data_root: str, location: str):
    """The ``NuScenesMap`` of ``location``, loaded once per process (per worker)."""
    key = (osp.abspath(str(data_root)), location)
    with _MAP_LOCK:
        if key not in _MAP_CACHE:
            from nuscenes.map_expansion.map_api import NuScenesMap
            path = osp.join(key[0], 'maps', 'expansion', f'{location}.json')
            fix = ('download the nuScenes map expansion (v1.3) into maps/expansion/, or '
                   'regenerate the synthetic world')
            if not osp.isfile(path):
                raise MissingSampleError(f'map expansion for {location!r} not found',
                                         path, fix)
            try:
                nusc_map = NuScenesMap(dataroot=key[0], map_name=location)
            except AssertionError:
                raise NuScenesTableError(
                    f'unknown map location {location!r} (the devkit knows only the four '
                    'nuScenes maps)', path, 'fix log.location in log.json') from None
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise NuScenesTableError(f'malformed map expansion JSON ({type(e).__name__}'
                                         f': {e})', path, fix) from None
            nusc_map.explorer = _patched_explorer_cls()(nusc_map)
            _MAP_CACHE[key] = nusc_map
        return _MAP_CACHE[key]


def rasterize_map(nusc_map, frame2global_mat: np.ndarray, grid: BEVGrid,
                  layers: Sequence[str] = MAP_LAYERS) -> np.ndarray:
    """Map layers on ``grid`` for a frame with pose ``frame2global_mat``.

    Uses ``NuScenesMap.get_map_mask`` with a patch aligned to the frame's yaw (roll and
    pitch are ignored). The frame may be scaled and/or mirrored (an augmented frame): a
    scale shrinks or grows the patch, a mirror is undone on the raster rows.
    Returns uint8 ``(len(layers), H, W)``.
    """
    mat = np.asarray(frame2global_mat, dtype=np.float64).copy()
    mirrored = np.linalg.det(mat[:2, :2]) < 0
    y_range = grid.y_range
    if mirrored:          # M (x, y) = M' (x, -y): raster the mirrored y range, flip rows
        mat[:, 1] *= -1
        y_range = (-grid.y_range[1], -grid.y_range[0])
    scale = float(np.sqrt(abs(np.linalg.det(mat[:2, :2]))))      # global metres per unit
    r = grid.resolution
    # get_map_mask puts pixel j at patch_min + j * res; shift by half a cell so that
    # pixel j is the cell centred at x_min + (j + 0.5) * res.
    centre = np.array([(grid.x_range[0] + grid.x_range[1]) / 2 + r / 2,
                       (y_range[0] + y_range[1]) / 2 + r / 2, 0.0, 1.0])
    centre_global = mat @ centre
    yaw = np.arctan2(mat[1, 0], mat[0, 0])
    patch_box = (centre_global[0], centre_global[1],
                 (y_range[1] - y_range[0]) * scale, (grid.x_range[1] - grid.x_range[0]) * scale)
    mask = nusc_map.get_map_mask(patch_box, np.degrees(yaw), list(layers),
                                 canvas_size=grid.shape)
    mask = np.asarray(mask, dtype=np.uint8)
    if mask.shape != (len(layers),) + grid.shape:
        raise ValueError(f'map mask has shape {mask.shape}, expected '
                         f'{(len(layers),) + grid.shape}; unknown layer in {layers}?')
    return np.ascontiguousarray(mask[:, ::-1]) if mirrored else mask


@TRANSFORMS.register_module()
class RasterizeMapBEV(BaseTransform):
    """Rasterise HD-map layers around the ego into ``results['map_bev']``.

    Required keys: ``location``, ``ego2global``, ``lidar_points.lidar2ego`` (frame
    'lidar'), ``data_root`` (set by ``NuScenesSceneDataset``) unless ``data_root``
    is given here. Added keys: ``map_bev`` (uint8 ``(C, H, W)``, channels =
    ``layers``), ``map_bev_layers``, ``map_bev_grid`` (the :class:`BEVGrid`; also
    ``bev_grid``).

    Place it after the 3D augmentations: it rasterises in the augmented frame
    (``lidar_aug_matrix``), so map and box rasters agree.

    Args:
        layers: nuScenes map layers (polygon or line); default ``MAP_LAYERS``.
        x_range, y_range, resolution: the BEV grid.
        frame: ``'lidar'`` (default) or ``'ego'``.
        data_root: nuScenes root holding ``maps/expansion``.
    """

    def __init__(self, layers: Sequence[str] = MAP_LAYERS, x_range=(-50.0, 50.0),
                 y_range=(-50.0, 50.0), resolution: float = 0.5, frame: str = 'lidar',
                 data_root: Optional[str] = None):
        if frame not in FRAMES:
            raise ValueError(f'frame must be one of {FRAMES}, got {frame!r}')
        self.layers = tuple(layers)
        self.grid = BEVGrid(x_range, y_range, resolution)
        self.frame = frame
        self.data_root = data_root

    def transform(self, results: dict) -> dict:
        data_root = self.data_root or results.get('data_root')
        if data_root is None:
            raise KeyError("RasterizeMapBEV needs data_root= or results['data_root'] "
                           '(set by NuScenesSceneDataset)')
        nusc_map = get_nusc_map(data_root, results['location'])
        results['map_bev'] = rasterize_map(nusc_map, frame2global(results, self.frame),
                                           self.grid, self.layers)
        results['map_bev_layers'] = self.layers
        results['map_bev_frame'] = self.frame
        results['map_bev_grid'] = results['bev_grid'] = self.grid
        return results

    def __repr__(self):
        return f'{type(self).__name__}(layers={self.layers}, grid={self.grid}, ' \
               f'frame={self.frame!r})'


# ----------------------------------------------------------------------------- boxes
def rasterize_boxes(footprints: np.ndarray, channels: np.ndarray, num_channels: int,
                    grid: BEVGrid) -> np.ndarray:
    """Fill ``(N, 4, 2)`` metric footprints into ``(num_channels, H, W)`` uint8."""
    out = np.zeros((num_channels,) + grid.shape, dtype=np.uint8)
    shift = 4  # sub-pixel precision for cv2 (coordinates * 16)
    for poly, ch in zip(footprints, channels):
        if ch < 0:
            continue
        pix = np.round(grid.to_pixel(poly) * (1 << shift)).astype(np.int32)
        layer = np.ascontiguousarray(out[ch])
        cv2.fillPoly(layer, [pix], 1, lineType=cv2.LINE_8, shift=shift)
        out[ch] = layer
    return out


def label_to_channel(class_groups, classes) -> np.ndarray:
    """``(len(classes),)`` int64: the channel (group index) of each label, -1 = none."""
    unknown = {c for g in class_groups for c in g} - set(classes)
    if unknown:
        raise ValueError(f'class_groups name unknown classes {sorted(unknown)}')
    out = np.full(len(classes), -1, dtype=np.int64)
    for ch, group in enumerate(class_groups):
        for name in group:
            out[list(classes).index(name)] = ch
    return out


def boxes_and_labels(results: dict):
    """``(N, >=7)`` float64 boxes as ``gt_bboxes_3d.tensor`` (mmdet3d: bottom centre) and
    ``(N,)`` int64 labels, from ``gt_bboxes_3d`` / ``gt_labels_3d`` or, without them, from
    ``ann_info`` / ``eval_ann_info``."""
    if 'gt_bboxes_3d' in results:
        boxes, labels = results['gt_bboxes_3d'], results['gt_labels_3d']
    else:
        ann = results.get('ann_info') or results.get('eval_ann_info') or {}
        boxes = ann.get('gt_bboxes_3d')
        labels = ann.get('gt_labels_3d', np.zeros(0, np.int64))
    if boxes is None:
        return np.zeros((0, 7)), np.zeros(0, np.int64)
    tensor = getattr(boxes, 'tensor', boxes)
    tensor = tensor.numpy() if hasattr(tensor, 'numpy') else np.asarray(tensor)
    if len(tensor) == 0:
        return np.zeros((0, 7)), np.zeros(0, np.int64)
    return tensor.reshape(len(tensor), -1).astype(np.float64), \
        np.asarray(labels).reshape(-1).astype(np.int64)


@TRANSFORMS.register_module()
class RasterizeBoxBEV(BaseTransform):
    """Rasterise 3D-box footprints into a BEV layout ``results['box_bev']``.

    One channel per class group. Boxes come from ``gt_bboxes_3d`` / ``gt_labels_3d``
    (after ``LoadSceneAnnotations3D``; augmented boxes are drawn as augmented) or,
    without them, from ``ann_info`` / ``eval_ann_info``. Added keys: ``box_bev``
    (uint8 ``(G, H, W)``), ``box_bev_groups``, ``box_bev_grid`` (also ``bev_grid``).

    Args:
        class_groups: tuple of tuples of class names; default vehicles /
            two-wheelers / pedestrians / cones+barriers.
        classes: the dataset's class names, index = label (default: the ten
            nuScenes detection classes).
        x_range, y_range, resolution, frame: the BEV grid (see module docstring).
    """

    def __init__(self, class_groups=DEFAULT_CLASS_GROUPS,
                 classes: Sequence[str] = DETECTION_CLASSES, x_range=(-50.0, 50.0),
                 y_range=(-50.0, 50.0), resolution: float = 0.5, frame: str = 'lidar'):
        if frame not in FRAMES:
            raise ValueError(f'frame must be one of {FRAMES}, got {frame!r}')
        self.class_groups = tuple(tuple(g) for g in class_groups)
        self.classes = tuple(classes)
        self.label_to_channel = label_to_channel(self.class_groups, self.classes)
        self.grid = BEVGrid(x_range, y_range, resolution)
        self.frame = frame

    def transform(self, results: dict) -> dict:
        boxes, labels = boxes_and_labels(results)
        footprints = box_footprints(boxes)
        if self.frame == 'ego' and len(boxes):
            lidar2ego = np.asarray(results['lidar_points']['lidar2ego'], dtype=np.float64)
            footprints = footprints @ lidar2ego[:2, :2].T + lidar2ego[:2, 3]
        valid = (labels >= 0) & (labels < len(self.classes))
        channels = np.full(len(labels), -1, dtype=np.int64)
        channels[valid] = self.label_to_channel[labels[valid]]
        results['box_bev'] = rasterize_boxes(footprints, channels, len(self.class_groups),
                                             self.grid)
        results['box_bev_groups'] = self.class_groups
        results['box_bev_grid'] = results['bev_grid'] = self.grid
        return results

    def __repr__(self):
        return f'{type(self).__name__}(class_groups={self.class_groups}, ' \
               f'grid={self.grid}, frame={self.frame!r})'
