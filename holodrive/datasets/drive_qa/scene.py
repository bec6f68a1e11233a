"""The facts of one keyframe that the driving-QA generators ask about.

:func:`scene_objects` turns an info record (raw from the ``.pkl`` or parsed by
``NuScenesSceneDataset``) into :class:`SceneObject` s, keeping only the objects a viewer of
the six camera images can answer questions about:

- a detection class (``bbox_label_3d`` in ``0 .. len(classes)-1``);
- within :data:`RADIUS` metres (BEV distance from the ego origin, in the ego frame);
- ``visibility`` level at least :data:`MIN_VISIBILITY` (nuScenes levels ``'1'`` = 0-40 %,
  ``'2'`` = 40-60 %, ... of the box visible in the cameras; records without it pass);
- its 3D (gravity) centre projects into at least one camera image
  (depth >= :data:`MIN_DEPTH`, ``0 <= u < width``, ``0 <= v < height``).

Each object is described in the **ego frame** (x forward, y left; ``lidar2ego`` of the
record), so "in front of" / "to the left of" mean what they say whatever the LiDAR mounting
(nuScenes' LiDAR has x to the right). Its camera is the one it is *most visible in*: among the
cameras its centre projects into, the one with the largest projected 3D box (clipped to the
image); its pixel is the projected centre there, which is what a c-tag
``<cN,CAM_NAME,x,y>`` carries (:func:`c_tag`, one decimal).
"""
import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from holodrive.utils.geometry import box_corners, transform_points
from ..constants import DETECTION_CLASSES

#: Objects farther than this (metres, ego BEV) are never asked about.
RADIUS = 40.0
#: Lowest nuScenes visibility level ('1'..'4') of an object asked about.
MIN_VISIBILITY = 2
#: A centre closer to the camera plane than this (metres) does not count as projected.
MIN_DEPTH = 0.5
#: Speed (m/s) above which an object counts as moving in the DriveLM prediction QA.
MOVING_SPEED = 0.5

#: mmdet3d's nuScenes attribute order (``attr_label`` index) -> closed-set status answer.
ATTRIBUTE_STATUS = ('with rider', 'without rider', 'moving', 'standing', 'sitting',
                    'moving', 'parked', 'stopped')
VEHICLES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle')
CYCLES = ('bicycle', 'motorcycle')
#: statuses a class can have (the status / exist filters only use these).
CLASS_STATUSES = {**{c: ('moving', 'parked', 'stopped') for c in VEHICLES},
                  **{c: ('with rider', 'without rider') for c in CYCLES},
                  'pedestrian': ('moving', 'standing', 'sitting')}
#: ego-relative sectors by bearing (degrees, 0 = straight ahead, positive = left).
SECTORS = ('front', 'left', 'back', 'right')
#: where a camera looks, as DriveLM words it ("to the front left of the ego vehicle").
CAMERA_DIRECTIONS = {'CAM_FRONT': 'front', 'CAM_FRONT_LEFT': 'front left',
                     'CAM_FRONT_RIGHT': 'front right', 'CAM_BACK': 'back',
                     'CAM_BACK_LEFT': 'back left', 'CAM_BACK_RIGHT': 'back right'}

#: ``<cN,CAM_NAME,x,y>``
C_TAG_RE = re.compile(r'<c(\d+),(CAM_[A-Z_]+),(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)>')


@dataclass
class SceneObject:
    """One annotated object a camera viewer can see (module docstring)."""
    index: int                       # row in the record's ``instances``
    name: str                        # class name (``DETECTION_CLASSES`` spelling)
    status: Optional[str]            # closed-set status or None (cones, barriers, unknown)
    xy: Tuple[float, float]          # BEV centre, ego frame (x forward, y left), metres
    velocity: Tuple[float, float]    # ego-frame velocity (m/s, ground-relative)
    size: Tuple[float, float, float]  # l, w, h (metres)
    camera: str                      # the camera it is most visible in
    pixel: Tuple[float, float]       # projected 3D centre in that camera (px)
    bbox2d: List[float]              # projected 3D box in that camera, clipped [x1, y1, x2, y2]
    cameras: Tuple[str, ...] = ()    # every camera its centre projects into
    instance_token: str = ''
    extra: Dict = field(default_factory=dict)

    @property
    def distance(self) -> float:
        return math.hypot(*self.xy)

    @property
    def bearing(self) -> float:
        """Degrees, 0 = straight ahead, positive = to the left."""
        return math.degrees(math.atan2(self.xy[1], self.xy[0]))

    @property
    def sector(self) -> str:
        return sector_of(self.xy[0], self.xy[1])

    @property
    def speed(self) -> float:
        return math.hypot(*self.velocity)


def sector_of(x: float, y: float) -> str:
    """'front' (|bearing| <= 45 deg), 'left' (45..135), 'back' (>= 135) or 'right'."""
    bearing = math.degrees(math.atan2(y, x))
    if abs(bearing) <= 45.0:
        return 'front'
    if abs(bearing) >= 135.0:
        return 'back'
    return 'left' if bearing > 0 else 'right'


def c_tag(n: int, obj: SceneObject) -> str:
    """``<cN,CAM_NAME,x,y>`` of ``obj`` (pixel rounded to one decimal)."""
    return f'<c{n},{obj.camera},{obj.pixel[0]:.1f},{obj.pixel[1]:.1f}>'


def parse_c_tags(text: str) -> List[str]:
    """The c-tags in ``text``, in order of appearance, each once."""
    out = []
    for m in C_TAG_RE.finditer(text or ''):
        if m.group(0) not in out:
            out.append(m.group(0))
    return out


def _pad4(mat) -> np.ndarray:
    mat = np.asarray(mat, dtype=np.float64)
    out = np.eye(4)
    out[:mat.shape[0], :mat.shape[1]] = mat
    return out


def project_points(points_lidar: np.ndarray, cam: dict):
    """Pixels ``(N, 2)`` and depths ``(N,)`` of LiDAR-frame points in one camera of a record
    (``cam2img`` / ``lidar2cam`` of ``record['images'][cam_name]``)."""
    pts_cam = transform_points(_pad4(cam['lidar2cam']), np.asarray(points_lidar).reshape(-1, 3))
    depth = pts_cam[:, 2]
    uvw = pts_cam @ _pad4(cam['cam2img'])[:3, :3].T
    with np.errstate(divide='ignore', invalid='ignore'):
        uv = uvw[:, :2] / np.where(np.abs(depth) < 1e-9, 1e-9, depth)[:, None]
    return uv, depth


def _visibility(inst: dict) -> Optional[int]:
    try:
        return int(inst['visibility'])
    except (KeyError, TypeError, ValueError):
        return None


def scene_objects(record: dict, classes: Sequence[str] = DETECTION_CLASSES,
                  radius: float = RADIUS, min_visibility: int = MIN_VISIBILITY,
                  cameras: Optional[Sequence[str]] = None) -> List[SceneObject]:
    """The visible objects of an info record (module docstring), in ``instances`` order."""
    images = record.get('images') or {}
    cams = [c for c in (cameras or images) if c in images and images[c].get('cam2img')
            is not None and images[c].get('lidar2cam') is not None]
    lidar2ego = _pad4(record.get('lidar_points', {}).get('lidar2ego', np.eye(4)))
    out = []
    for i, inst in enumerate(record.get('instances') or ()):
        label = int(inst.get('bbox_label_3d', inst.get('bbox_label', -1)))
        if not 0 <= label < len(classes):
            continue
        vis = _visibility(inst)
        if vis is not None and vis < min_visibility:
            continue
        box = np.asarray(inst['bbox_3d'], dtype=np.float64)
        centre = box[:3]
        ego = transform_points(lidar2ego, centre[None])[0]
        if math.hypot(ego[0], ego[1]) > radius:
            continue
        seen, best = [], None
        corners = box_corners(box[None, :7])[0]
        for name in cams:
            cam = images[name]
            w, h = float(cam.get('width', 1600)), float(cam.get('height', 900))
            uv, depth = project_points(np.vstack([centre[None], corners]), cam)
            u, v = uv[0]
            if depth[0] < MIN_DEPTH or not (0 <= u < w and 0 <= v < h):
                continue
            seen.append(name)
            front = uv[1:][depth[1:] >= MIN_DEPTH]
            x1, y1 = np.clip(front.min(0), 0, [w, h])
            x2, y2 = np.clip(front.max(0), 0, [w, h])
            area = (x2 - x1) * (y2 - y1)
            if best is None or area > best[0] + 1e-9:
                best = (area, name, (float(u), float(v)),
                        [round(float(x1), 1), round(float(y1), 1),
                         round(float(x2), 1), round(float(y2), 1)])
        if best is None:
            continue
        vel = np.zeros(3)
        vel[:2] = np.nan_to_num(np.asarray(inst.get('velocity', (0.0, 0.0)),
                                           dtype=np.float64)[:2])
        vel_ego = lidar2ego[:3, :3] @ vel
        attr = int(inst.get('attr_label', -1))
        status = ATTRIBUTE_STATUS[attr] if 0 <= attr < len(ATTRIBUTE_STATUS) else None
        name = classes[label]
        if status not in CLASS_STATUSES.get(name, ()):
            status = None
        out.append(SceneObject(
            index=i, name=name, status=status, xy=(float(ego[0]), float(ego[1])),
            velocity=(float(vel_ego[0]), float(vel_ego[1])),
            size=(float(box[3]), float(box[4]), float(box[5])), camera=best[1],
            pixel=best[2], bbox2d=best[3], cameras=tuple(seen),
            instance_token=str(inst.get('instance_token', ''))))
    return out
