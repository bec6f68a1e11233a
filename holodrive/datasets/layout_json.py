"""Scene layouts as JSON: the input of ``tools/generate.py --layout-json``.

A layout is what the generators are conditioned on, written without a dataset::

    {
      "boxes": [{"name": "car", "center": [x, y, z_bottom], "size": [l, w, h], "yaw": 0.0}],
      "caption": "a two-lane road by day, ...",                          (camera)
      "lidar2ego": 4x4,                                                  (camera)
      "cameras": {"CAM_FRONT": {"width": W, "height": H, "cam2img": 3x3,
                                "lidar2cam": 4x4}, ...},                 (camera)
      "location": "singapore-hollandvillage", "ego2global": 4x4          (optional: map patch)
    }

Boxes are in the LiDAR frame (metres, bottom centre, yaw in radians as mmdet3d's
``LiDARInstance3DBoxes``), names from :data:`DETECTION_CLASSES`. ``location`` +
``ego2global`` place the map patch: the config's ``RasterizeMapBEV`` reads the map of that
location from ``--data-root`` (without them the map channels stay empty). Calibration is the
raw one (the image size and intrinsics of the camera files; the config's image augmentation
is applied as for a dataset sample). :func:`camera_layout_record` writes this record for a
dataset keyframe (``tools/generate.py`` puts it under ``"layout"`` in every
``*_conditions.json``, and :func:`read_layout_json` accepts such a file, so the conditions of
a generated sample can be edited and sampled again).
"""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

from holodrive.engine.config_check import ConfigError
from .constants import DETECTION_CLASSES

_BOX_FORMAT = ('{"boxes": [{"name", "center": [x, y, z], "size": [l, w, h], "yaw"}]}')
_CAMERA_KEYS = ('width', 'height', 'cam2img', 'lidar2cam')


class LayoutJSONError(ConfigError, ValueError):
    """A layout JSON that cannot be used (the message names the file and the key)."""


def read_layout_json(path: str) -> dict:
    """The parsed JSON object of ``path`` (one-line errors for a missing or bad file)."""
    from holodrive.engine.cli import UserFileNotFoundError
    if not osp.isfile(path):
        raise UserFileNotFoundError(f'{path}: layout JSON not found')
    try:
        with open(path) as f:
            layout = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LayoutJSONError(f'{path}: not a layout JSON ({e}); expected {_BOX_FORMAT}') from None
    if isinstance(layout, dict) and isinstance(layout.get('layout'), dict):
        layout = layout['layout']                  # a *_conditions.json of tools/generate.py
    if not isinstance(layout, dict):
        raise LayoutJSONError(f'{path}: a layout JSON is an object, got {type(layout).__name__}')
    return layout


def layout_boxes(layout: dict, path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``boxes (K, 7)`` float32 (x, y, z_bottom, l, w, h, yaw) and ``labels (K,)`` int64."""
    if 'boxes' not in layout:
        raise LayoutJSONError(f'{path}: key "boxes" is missing; expected {_BOX_FORMAT}')
    rows, labels = [], []
    for k, b in enumerate(layout['boxes']):
        try:
            name = b['name']
            if name not in DETECTION_CLASSES:
                raise LayoutJSONError(f'{path}: boxes[{k}].name {name!r} is not one of '
                                      f'{list(DETECTION_CLASSES)}')
            row = [*map(float, b['center']), *map(float, b['size']), float(b['yaw'])]
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, LayoutJSONError):
                raise
            raise LayoutJSONError(f'{path}: boxes[{k}] is not a box ({type(e).__name__}: {e}); '
                                  f'expected {_BOX_FORMAT}') from None
        if len(row) != 7:
            raise LayoutJSONError(f'{path}: boxes[{k}] needs a 3-value center and a 3-value '
                                  f'size, got {len(row) - 1} numbers')
        rows.append(row)
        labels.append(DETECTION_CLASSES.index(name))
    return np.asarray(rows, np.float32).reshape(-1, 7), np.asarray(labels, np.int64)


def _matrix(value, shape: Sequence[int], where: str, path: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        m = None
    if m is None or m.shape not in [tuple(s) for s in shape] or not np.isfinite(m).all():
        got = 'not a matrix' if m is None else f'shape {m.shape}'
        raise LayoutJSONError(f'{path}: {where} must be a finite '
                              f'{" or ".join("x".join(map(str, s)) for s in shape)} matrix, '
                              f'got {got}')
    return m


def camera_layout_results(layout: dict, path: str, data_root: Optional[str]) -> dict:
    """A pipeline ``results`` dict for a camera layout (as a dataset keyframe without its
    files): ``images`` (calibration), black ``img`` views of the recorded sizes,
    ``lidar_points.lidar2ego``, ``gt_bboxes_3d`` / ``gt_labels_3d``, ``caption`` and, when
    the layout has them, ``location`` / ``ego2global`` / ``data_root`` for the map patch."""
    from mmdet3d.structures import LiDARInstance3DBoxes
    boxes, labels = layout_boxes(layout, path)
    for key in ('cameras', 'lidar2ego'):
        if key not in layout:
            raise LayoutJSONError(f'{path}: key {key!r} is missing (a camera layout needs '
                                  '"cameras", "lidar2ego", "boxes"; see the conditions.json '
                                  'that tools/generate.py writes for a dataset sample)')
    cameras = layout['cameras']
    if not isinstance(cameras, dict) or not cameras:
        raise LayoutJSONError(f'{path}: "cameras" must map camera names to their calibration')
    images, views = {}, []
    for name, cam in cameras.items():
        missing = [k for k in _CAMERA_KEYS if k not in (cam if isinstance(cam, dict) else {})]
        if missing:
            raise LayoutJSONError(f'{path}: cameras.{name} lacks {missing} (needs '
                                  f'{list(_CAMERA_KEYS)})')
        w, h = int(cam['width']), int(cam['height'])
        if w <= 0 or h <= 0:
            raise LayoutJSONError(f'{path}: cameras.{name} has size {w}x{h}')
        images[name] = dict(
            width=w, height=h,
            cam2img=_matrix(cam['cam2img'], [(3, 3), (4, 4)], f'cameras.{name}.cam2img', path),
            lidar2cam=_matrix(cam['lidar2cam'], [(4, 4)], f'cameras.{name}.lidar2cam', path))
        views.append(np.zeros((h, w, 3), np.uint8))
    results = dict(
        images=images, img=views, img_shape=views[0].shape[:2], ori_shape=views[0].shape[:2],
        lidar_points=dict(lidar2ego=_matrix(layout['lidar2ego'], [(4, 4)], 'lidar2ego', path)),
        gt_bboxes_3d=LiDARInstance3DBoxes(boxes), gt_labels_3d=labels,
        caption=str(layout.get('caption', '')), sample_idx=0, token=layout.get('sample_token', ''))
    if ('location' in layout) != ('ego2global' in layout):
        raise LayoutJSONError(f'{path}: the map patch needs both "location" and "ego2global"')
    if 'location' in layout:
        if not data_root:
            raise LayoutJSONError(f'{path}: a layout with a map patch ("location") needs '
                                  '--data-root (the maps/ of that location)')
        results.update(location=str(layout['location']), data_root=data_root,
                       ego2global=_matrix(layout['ego2global'], [(4, 4)], 'ego2global', path))
    return results


def camera_layout_record(info: dict, caption: str) -> dict:
    """The layout JSON record (module docstring) of a dataset keyframe's info dict (an
    mmdet3d data info with ``images``, ``lidar_points`` and, in test mode, ``eval_ann_info``)."""
    ann = info.get('eval_ann_info') or info.get('ann_info') or {}
    boxes: List[dict] = []
    if 'gt_bboxes_3d' in ann:
        t = ann['gt_bboxes_3d'].tensor.numpy()
        for row, label in zip(t, ann['gt_labels_3d']):
            if 0 <= int(label) < len(DETECTION_CLASSES):
                boxes.append(dict(name=DETECTION_CLASSES[int(label)],
                                  center=[float(v) for v in row[:3]],
                                  size=[float(v) for v in row[3:6]], yaw=float(row[6])))
    record = dict(
        sample_token=info.get('token', ''), caption=caption,
        lidar2ego=np.asarray(info['lidar_points']['lidar2ego'], np.float64).tolist(),
        cameras={name: dict(width=int(cam['width']), height=int(cam['height']),
                            cam2img=np.asarray(cam['cam2img'], np.float64).tolist(),
                            lidar2cam=np.asarray(cam['lidar2cam'], np.float64).tolist())
                 for name, cam in info['images'].items()},
        boxes=boxes)
    if 'location' in info and 'ego2global' in info:
        record.update(location=info['location'],
                      ego2global=np.asarray(info['ego2global'], np.float64).tolist())
    return record
