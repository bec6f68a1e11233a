"""Surround-camera ring order and neighbour adjacency, derived from the calibration.

nuScenes lists its cameras as FRONT, FRONT_RIGHT, FRONT_LEFT, BACK, BACK_LEFT, BACK_RIGHT
(:data:`~holodrive.datasets.constants.CAMERA_NAMES`), which is not the order around the
car. Cross-view attention needs the ring: going clockwise seen from above (decreasing yaw
of the optical axis in the ego frame, x forward, y left), starting at the first camera
left of straight ahead:

    CAM_FRONT_LEFT -> CAM_FRONT -> CAM_FRONT_RIGHT -> CAM_BACK_RIGHT -> CAM_BACK -> CAM_BACK_LEFT

and each camera's neighbours are the previous (its left) and the next (its right) one in the
ring. :func:`camera_ring_order` derives this from any rig's ``cam2ego`` (so a rig with other
names or mounting yaws gets its own ring), :func:`ring_adjacency` the neighbour table.
"""
from typing import Dict, Sequence, Tuple

import numpy as np

#: The nuScenes ring order (what :func:`camera_ring_order` gives for the nuScenes rig).
CAMERA_RING = ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT',
               'CAM_BACK_RIGHT', 'CAM_BACK', 'CAM_BACK_LEFT')


def camera_yaw(cam2ego) -> float:
    """Yaw (radians, about ego +z, 0 = forward, positive = left) of a camera's optical axis."""
    axis = np.asarray(cam2ego, dtype=np.float64)[:3, 2]      # camera z in the ego frame
    return float(np.arctan2(axis[1], axis[0]))


def camera_ring_order(cam2ego: Dict[str, np.ndarray]) -> Tuple[str, ...]:
    """Camera names in clockwise ring order, starting left of straight ahead.

    Args:
        cam2ego: ``{name: 4x4 cam2ego}`` (the info records' ``images[name]['cam2ego']``).

    Returns:
        The names sorted by decreasing yaw, rotated so that the first is the camera
        with the smallest positive yaw (for nuScenes: :data:`CAMERA_RING`). A rig with no
        camera at positive yaw starts at the one with the largest yaw.
    """
    names = list(cam2ego)
    yaws = np.array([camera_yaw(cam2ego[n]) for n in names])
    order = list(np.argsort(-yaws, kind='stable'))
    positive = [i for i in order if yaws[i] > 1e-6]
    start = order.index(positive[-1]) if positive else 0
    order = order[start:] + order[:start]
    return tuple(names[i] for i in order)


def ring_adjacency(num_views: int) -> np.ndarray:
    """``(V, 2)`` int64: ``[left neighbour, right neighbour]`` of each view in ring order."""
    idx = np.arange(num_views)
    return np.stack([(idx - 1) % num_views, (idx + 1) % num_views], axis=1)


def ring_permutation(names: Sequence[str], ring: Sequence[str]) -> np.ndarray:
    """Indices that reorder views listed as ``names`` into ``ring`` order."""
    missing = [n for n in ring if n not in names]
    if missing:
        raise KeyError(f'cameras {missing} of the ring are not among the views {list(names)}')
    return np.array([list(names).index(n) for n in ring], dtype=np.int64)
