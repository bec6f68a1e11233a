"""DriveLM-style QA of one keyframe: perception, prediction, planning, behaviour.

A frame entry (the value of ``key_frames[sample_token]`` in ``drivelm_{split}.json``)::

    {"key_object_infos": {"<c1,CAM_FRONT,160.2,95.3>": {"Category": "Vehicle",
                           "Status": "Moving", "Visual_description": "Car, 4.5 m long, 12 m
                           to the front of the ego vehicle.", "2d_bbox": [x1, y1, x2, y2]}, ...},
     "QA": {"perception": [QA, ...], "prediction": [...], "planning": [...],
            "behavior": [...]},
     "image_paths": {"CAM_FRONT": "samples/CAM_FRONT/....jpg", ...}}   # relative to DATA_ROOT

with ``QA = {"Q", "A", "C": None, "con_up": None, "con_down": None, "cluster": None,
"layer": None, "tag": [int]}`` (DriveLM-nuScenes keeps C / con_* / cluster / layer as None
placeholders; ``tag`` as in the DriveLM challenge: 0 = exact answer (accuracy), 2 = free
text (language scores), 3 = the answer lists c-tags (c-tag match)).

**Key objects** (at most :data:`MAX_KEY_OBJECTS`, c1 first): the visible objects
(:func:`~holodrive.datasets.drive_qa.scene.scene_objects`) within :data:`KEY_RADIUS` m,
ordered by: in the ego path now or within :data:`PREDICTION_HORIZON` s (nearer first), then
the nearest object of each other class (nearer first), then the rest (nearer first).

**Ego path**: the valid prefix of the future ego waypoints ``ego_fut_traj`` (ego frame, one
per 0.5 s keyframe); a frame without any (the last of a scene) extrapolates the current
``ego_velocity`` / ``ego_yaw_rate`` over :data:`PLAN_STEPS` steps. The path is extended
:data:`LOOKAHEAD` m along its final heading; an object is *in the path* when its BEV centre
(or, for the prediction, its constant-velocity position at some t <= 3 s) is within
``EGO_HALF_WIDTH + object half width`` of that polyline and ahead of the ego origin.

**Planning** ("What should the ego car do next?"): ``Stop`` (the path is shorter than 1 m),
``Turn left`` / ``Turn right`` (final heading beyond 0.25 rad or a lateral offset beyond 2 m),
``Yield to <c>`` (slowing by more than 1 m/s with an object in the path), else ``Keep lane``;
a stop names its reason (``Stop because of <c>.``) when an object is in the path.
"""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from .scene import CAMERA_DIRECTIONS, MOVING_SPEED, SceneObject, c_tag
from .templates import class_answer

MAX_KEY_OBJECTS = 4
KEY_RADIUS = 30.0
PREDICTION_HORIZON = 3.0
DT = 0.5
PLAN_STEPS = 6
LOOKAHEAD = 10.0
EGO_HALF_WIDTH = 1.2
STOP_DISTANCE = 1.0
TURN_YAW = 0.25
TURN_OFFSET = 2.0
QA_TYPES = ('perception', 'prediction', 'planning', 'behavior')
IMPORTANT_OBJECTS_Q = ('What are the important objects in the current scene? Those objects '
                       'will be identified by their c-tags.')
CATEGORIES = {'pedestrian': 'Pedestrian', 'traffic_cone': 'Obstacle', 'barrier': 'Obstacle'}


def qa(question: str, answer: str, tag: Sequence[int]) -> dict:
    """One DriveLM QA dict (module docstring)."""
    return {'Q': question, 'A': answer, 'C': None, 'con_up': None, 'con_down': None,
            'cluster': None, 'layer': None, 'tag': list(tag)}


# ----------------------------------------------------------------------------- ego motion
def _ego_velocity(record: dict) -> np.ndarray:
    vel = record.get('ego_velocity')
    return np.zeros(2) if vel is None else np.asarray(vel, dtype=np.float64).reshape(-1)[:2]


def ego_path(record: dict, dt: float = DT) -> np.ndarray:
    """``(K, 2)`` future ego waypoints (ego frame; module docstring), K >= 1."""
    traj = record.get('ego_fut_traj')
    valid = record.get('ego_fut_valid')
    if traj is not None and len(traj):
        traj = np.asarray(traj, dtype=np.float64).reshape(-1, 2)
        valid = np.ones(len(traj), bool) if valid is None else \
            np.asarray(valid, bool).reshape(-1)
        k = len(valid) if valid.all() else int(np.argmin(valid))
        if k:
            return traj[:k]
    vel = _ego_velocity(record)
    speed, yaw_rate = float(np.hypot(*vel)), float(record.get('ego_yaw_rate') or 0.0)
    heading, pos, pts = math.atan2(vel[1], vel[0]) if speed > 1e-6 else 0.0, np.zeros(2), []
    for _ in range(PLAN_STEPS):
        heading += yaw_rate * dt
        pos = pos + speed * dt * np.array([math.cos(heading), math.sin(heading)])
        pts.append(pos)
    return np.array(pts)


def ego_motion(record: dict, dt: float = DT) -> dict:
    """Path, speeds and heading change of the ego's next seconds (module docstring)."""
    path = ego_path(record, dt)
    pts = np.vstack([np.zeros((1, 2)), path])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    v0 = float(np.hypot(*_ego_velocity(record))) if record.get('ego_velocity') is not None \
        else seg[0] / dt
    yaws = record.get('ego_fut_yaw')
    k = len(path)
    if yaws is not None and len(yaws) >= k and k > 0 and record.get('ego_fut_valid') is not None \
            and np.asarray(record['ego_fut_valid'], bool).reshape(-1)[:k].all():
        turn = float(np.asarray(yaws, dtype=np.float64).reshape(-1)[k - 1])
    else:
        d = pts[-1] - pts[-2]
        turn = math.atan2(d[1], d[0]) if np.hypot(*d) > 1e-3 else 0.0
    heading = turn if seg.sum() >= STOP_DISTANCE else 0.0
    ext = pts[-1] + LOOKAHEAD * np.array([math.cos(heading), math.sin(heading)])
    return dict(path=path, corridor=np.vstack([pts, ext[None]]), length=float(seg.sum()),
                v0=v0, v_end=float(seg[-1] / dt), mean_speed=float(seg.mean() / dt),
                turn=turn, offset=float(path[-1, 1]))


def _dist_to_polyline(p: np.ndarray, line: np.ndarray) -> float:
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-9), 0.0, 1.0)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - p, axis=1)))


def in_path(obj: SceneObject, motion: dict, t: float = 0.0) -> bool:
    """Whether ``obj`` (its constant-velocity position at ``t`` s) is in the ego path."""
    p = np.asarray(obj.xy) + t * np.asarray(obj.velocity)
    width = EGO_HALF_WIDTH + 0.5 * min(obj.size[0], obj.size[1])
    return p[0] > 0 and _dist_to_polyline(p, motion['corridor']) <= width


def will_be_in_path(obj: SceneObject, motion: dict, horizon: float = PREDICTION_HORIZON) -> bool:
    return any(in_path(obj, motion, t) for t in np.arange(0.0, horizon + 1e-6, DT))


def plan(motion: dict, blocker: Optional[str]) -> str:
    """The planning answer: a manoeuvre (module docstring), with the reason c-tag."""
    if motion['length'] < STOP_DISTANCE:
        return f'Stop because of {blocker}.' if blocker else 'Stop.'
    if motion['turn'] > TURN_YAW or motion['offset'] > TURN_OFFSET:
        return 'Turn left.'
    if motion['turn'] < -TURN_YAW or motion['offset'] < -TURN_OFFSET:
        return 'Turn right.'
    if blocker and motion['v_end'] < motion['v0'] - 1.0:
        return f'Yield to {blocker}.'
    return 'Keep lane.'


def behavior(motion: dict) -> str:
    """DriveLM's ego behaviour sentence(s)."""
    speed = motion['mean_speed']
    if motion['length'] < STOP_DISTANCE:
        return 'The ego vehicle is not moving.'
    turn = motion['turn']
    steer = ('turning left' if turn > TURN_YAW else 'turning right' if turn < -TURN_YAW else
             'slightly steering to the left' if turn > 0.08 else
             'slightly steering to the right' if turn < -0.08 else 'going straight')
    pace = ('driving slowly' if speed < 4 else 'driving with normal speed' if speed < 8 else
            'driving fast' if speed < 12 else 'driving very fast')
    return f'The ego vehicle is {steer}. The ego vehicle is {pace}.'


# ----------------------------------------------------------------------------- frame
def key_objects(objects: Sequence[SceneObject], motion: dict,
                max_objects: int = MAX_KEY_OBJECTS) -> List[SceneObject]:
    """The key objects of a frame, c1 first (module docstring)."""
    near = sorted((o for o in objects if o.distance <= KEY_RADIUS),
                  key=lambda o: (round(o.distance, 3), o.index))
    in_path = [o for o in near if will_be_in_path(o, motion)]
    rest = [o for o in near if o not in in_path]
    firsts, seen = [], set()
    for o in rest:                       # the nearest object of each class, nearest first
        if o.name not in seen:
            seen.add(o.name)
            firsts.append(o)
    ordered = in_path + firsts + [o for o in rest if o not in firsts]
    return ordered[:max_objects]


def _describe(obj: SceneObject) -> str:
    where = CAMERA_DIRECTIONS.get(obj.camera, obj.camera)
    status = f'{obj.status} ' if obj.status and 'rider' not in obj.status else ''
    rider = f' {obj.status.replace("rider", "a rider")}' if obj.status and 'rider' in \
        obj.status else ''
    noun = class_answer(obj.name)
    return f"{'an' if (status or noun)[0] in 'aeiou' else 'a'} {status}{noun}{rider} to the " \
           f'{where} of the ego vehicle'


def _join(items: List[str]) -> str:
    return items[0] if len(items) == 1 else ', '.join(items[:-1]) + ' and ' + items[-1]


def drivelm_frame(objects: Sequence[SceneObject], record: dict,
                  image_paths: Dict[str, str]) -> dict:
    """The DriveLM entry of one keyframe (module docstring)."""
    motion = ego_motion(record)
    keys = key_objects(objects, motion)
    tags = [c_tag(i + 1, o) for i, o in enumerate(keys)]
    infos = {}
    for tag, o in zip(tags, keys):
        infos[tag] = {
            'Category': CATEGORIES.get(o.name, 'Vehicle'),
            'Status': o.status.capitalize() if o.status else 'None',
            'Visual_description': f'{class_answer(o.name).capitalize()}, {o.size[0]:.1f} m long, '
                                  f'{o.distance:.0f} m to the '
                                  f'{CAMERA_DIRECTIONS.get(o.camera, o.camera)} of the ego '
                                  'vehicle.',
            '2d_bbox': list(o.bbox2d)}
    perception, prediction = [], []
    if keys:
        ids = 'The ID of this object is' if len(keys) == 1 else 'The IDs of these objects are'
        perception.append(qa(IMPORTANT_OBJECTS_Q, f'There is {_join([_describe(o) for o in keys])}'
                             f'. {ids} {_join(tags)}.', [3]))
    else:
        perception.append(qa(IMPORTANT_OBJECTS_Q, 'There are no important objects in the '
                             'current scene.', [2]))
    for tag, o in zip(tags, keys):
        perception.append(qa(f'What is the category of {tag}?',
                             f'{class_answer(o.name).capitalize()}.', [0]))
        if o.status:
            perception.append(qa(f'What is the status of {tag}?', f'{o.status.capitalize()}.',
                                 [0]))
        prediction.append(qa(f'Is {tag} moving?', 'Yes.' if o.speed > MOVING_SPEED else 'No.',
                             [0]))
        prediction.append(qa(f'Will {tag} be in the path of the ego car in the next '
                             f'{PREDICTION_HORIZON:g} seconds?',
                             'Yes.' if will_be_in_path(o, motion) else 'No.', [0]))
    blockers = [(o.distance, t) for t, o in zip(tags, keys) if will_be_in_path(o, motion)]
    blocker = min(blockers)[1] if blockers else None
    action = plan(motion, blocker)
    planning = [qa('What should the ego car do next?', action,
                   [2, 3] if '<c' in action else [2])]
    if keys:
        planning.append(qa('Which object should the ego car pay the most attention to?',
                           f'{blocker or tags[0]}.', [3]))
    return {'key_object_infos': infos,
            'QA': {'perception': perception, 'prediction': prediction, 'planning': planning,
                   'behavior': [qa('Predict the behavior of the ego vehicle.',
                                   behavior(motion), [2])]},
            'image_paths': dict(image_paths)}
