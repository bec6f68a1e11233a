"""Per-sample captions from the annotations, the scene description and the ego motion.

``GenerateCaption`` writes ``results['caption']``, e.g.
``"a wet two-lane road at dusk in the rain, three parked cars on the right, a bus ahead,
two pedestrians on the left, ego turning left"``. It reads

- the scene ``description`` tags (``scene_description``): time of day (day, dawn, dusk,
  night), weather (clear, cloudy, rain), ``wet road``, and the road layout ("two-lane road",
  "intersection", ...), as the synthetic world writes them and as real nuScenes descriptions
  mostly read ("Night, rain, intersection, peds");
- the boxes (``gt_bboxes_3d`` / ``gt_labels_3d``, optional ``attr_labels`` for parked /
  moving / stopped), positions bucketed into ahead / behind / on the left / on the right of
  the ego car (box centres of the augmented LiDAR frame rotated by ``lidar2ego``: the nuScenes
  LiDAR's x axis points right, not forward);
- the future ego trajectory ``ego_fut_traj`` / ``ego_fut_valid`` / ``ego_fut_yaw`` for the
  manoeuvre (turning left / right, going straight, accelerating, slowing down, stopped).

Placed after the augmentations it describes the augmented scene (a BEV flip swaps left and
right in the caption too).
"""
import re
from collections import Counter
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from holodrive.registry import TRANSFORMS
from ..constants import DETECTION_CLASSES
from .bev import boxes_and_labels

TIMES = ('day', 'dawn', 'dusk', 'night')
WEATHERS = ('clear', 'cloudy', 'rain')
#: mmdet3d's nuScenes attribute order (attr_label index).
ATTRIBUTES = ('cycle.with_rider', 'cycle.without_rider', 'pedestrian.moving',
              'pedestrian.standing', 'pedestrian.sitting_lying_down', 'vehicle.moving',
              'vehicle.parked', 'vehicle.stopped')
_NOUNS = {'car': ('car', 'cars'), 'truck': ('truck', 'trucks'),
          'trailer': ('trailer', 'trailers'), 'bus': ('bus', 'buses'),
          'construction_vehicle': ('construction vehicle', 'construction vehicles'),
          'bicycle': ('bicycle', 'bicycles'), 'motorcycle': ('motorcycle', 'motorcycles'),
          'pedestrian': ('pedestrian', 'pedestrians'),
          'traffic_cone': ('traffic cone', 'traffic cones'), 'barrier': ('barrier', 'barriers')}
_NUMBERS = ('no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten')
_ADJ = {'vehicle.parked': 'parked', 'vehicle.moving': 'moving', 'vehicle.stopped': 'stopped',
        'pedestrian.standing': 'standing', 'pedestrian.moving': 'walking',
        'pedestrian.sitting_lying_down': 'sitting'}


def parse_description(description: str) -> dict:
    """Time of day, weather, wetness and road layout from a scene description."""
    tags = [t.strip().lower() for t in re.split(r'[,;]', description or '') if t.strip()]
    text = ' '.join(tags)
    time = next((t for t in TIMES if re.search(rf'\b{t}\b', text)), None)
    weather = 'rain' if 'rain' in text else next(
        (w for w in WEATHERS if re.search(rf'\b{w}\b', text)), None)
    wet = 'wet' in text or weather == 'rain'
    road = next((t for t in tags if ('road' in t or 'intersection' in t) and 'wet' not in t),
                None)
    return dict(time=time, weather=weather, wet=wet, road=road)


def count_phrase(n: int, noun: tuple) -> str:
    if n == 1:
        return f'a {noun[0]}' if noun[0][0] not in 'aeiou' else f'an {noun[0]}'
    return f'{_NUMBERS[n] if n < len(_NUMBERS) else "many"} {noun[1]}'


def position(x: float, y: float) -> str:
    """Bucket of a point in the ego-aligned frame (x forward, y left)."""
    if abs(y) <= max(2.0, 0.35 * abs(x)):
        return 'ahead' if x >= 0 else 'behind'
    return 'on the left' if y > 0 else 'on the right'


def manoeuvre(traj: Optional[np.ndarray], valid: Optional[np.ndarray],
              yaw: Optional[np.ndarray] = None, dt: float = 0.5) -> Optional[str]:
    """Ego manoeuvre from future waypoints ``(K, 2)`` (ego frame) or None if unknown."""
    if traj is None:
        return None
    traj = np.asarray(traj, dtype=np.float64).reshape(-1, 2)
    valid = np.ones(len(traj), bool) if valid is None else np.asarray(valid, bool).reshape(-1)
    k = int(np.nonzero(valid)[0].max()) + 1 if valid.any() else 0
    if k < 2:
        return None
    pts = np.concatenate([np.zeros((1, 2)), traj[:k]])
    dist = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    if dist.sum() < 1.0:
        return 'ego stopped'
    if yaw is not None:
        turn = float(np.asarray(yaw, dtype=np.float64).reshape(-1)[k - 1])
    else:
        d = pts[-1] - pts[-2]
        turn = float(np.arctan2(d[1], d[0]))
    if turn > 0.25:
        return 'ego turning left'
    if turn < -0.25:
        return 'ego turning right'
    v0, v1 = dist[0] / dt, dist[k - 1] / dt
    if v1 > v0 + 1.0:
        return 'ego accelerating'
    if v1 < v0 - 1.0:
        return 'ego slowing down'
    return 'ego going straight'


@TRANSFORMS.register_module()
class GenerateCaption(BaseTransform):
    """Write ``results['caption']`` (module docstring).

    Args:
        classes: the dataset's class names (index = label).
        radius: only boxes within this BEV distance (metres) are described.
        max_groups: at most this many object phrases (largest groups first).
    """

    def __init__(self, classes: Sequence[str] = DETECTION_CLASSES, radius: float = 30.0,
                 max_groups: int = 4):
        self.classes = tuple(classes)
        self.radius = float(radius)
        self.max_groups = int(max_groups)

    def _scene_phrase(self, desc: dict) -> str:
        road = desc['road'] or 'road'
        noun = f"{'wet ' if desc['wet'] else ''}{road}"
        phrase = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
        if desc['time'] in ('dawn', 'dusk', 'night'):
            phrase += f" at {desc['time']}"
        elif desc['time'] == 'day':
            phrase += ' by day'
        if desc['weather'] == 'rain':
            phrase += ' in the rain'
        elif desc['weather'] == 'cloudy':
            phrase += ' under a cloudy sky'
        return phrase

    def _object_phrases(self, results: dict) -> list:
        boxes, labels = boxes_and_labels(results)
        attrs = results.get('attr_labels')
        attrs = None if attrs is None or len(attrs) != len(labels) else np.asarray(attrs)
        groups = Counter()
        lidar2ego = results.get('lidar2ego')
        if lidar2ego is None:
            lidar2ego = (results.get('lidar_points') or {}).get('lidar2ego')
        # box centres are in the LiDAR frame (nuScenes: x right, y forward): rotate them into
        # the ego frame (x forward, y left) the position buckets are defined in
        rot = np.eye(2) if lidar2ego is None else np.asarray(lidar2ego, np.float64)[:2, :2]
        for i, (box, label) in enumerate(zip(boxes, labels)):
            x, y = rot @ np.asarray(box[:2], np.float64)
            if not 0 <= label < len(self.classes) or np.hypot(x, y) > self.radius:
                continue
            attr = ATTRIBUTES[attrs[i]] if attrs is not None and 0 <= attrs[i] < len(
                ATTRIBUTES) else None
            groups[(self.classes[label], _ADJ.get(attr), position(x, y))] += 1
        order = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][2]))
        phrases = []
        for (name, adj, where), n in order[:self.max_groups]:
            noun = _NOUNS.get(name, (name.replace('_', ' '), name.replace('_', ' ') + 's'))
            if adj:
                noun = (f'{adj} {noun[0]}', f'{adj} {noun[1]}')
            phrases.append(f'{count_phrase(n, noun)} {where}')
        return phrases

    def transform(self, results: dict) -> dict:
        parts = [self._scene_phrase(parse_description(results.get('scene_description', '')))]
        parts += self._object_phrases(results)
        move = manoeuvre(results.get('ego_fut_traj'), results.get('ego_fut_valid'),
                         results.get('ego_fut_yaw'))
        if move:
            parts.append(move)
        results['caption'] = ', '.join(parts)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(radius={self.radius}, max_groups={self.max_groups})'
