"""One geometry helper for boxes, poses and point transforms (numpy, float64).

Conventions:
- quaternions are nuScenes / pyquaternion ``[w, x, y, z]``;
- a matrix ``a2b`` is 4x4 and maps frame ``a`` into frame ``b``: ``p_b = a2b @ p_a``;
- a box is ``[x, y, z, l, w, h, yaw, ...]`` with ``(x, y, z)`` its **gravity centre**,
  ``l`` along its heading (local x), ``w`` to its left (local y), ``h`` up (local z), and
  ``yaw`` the heading about +z (the layout of the info files' ``bbox_3d``; mmdet3d's
  ``LiDARInstance3DBoxes`` use the bottom centre instead: pass ``origin=(0.5, 0.5, 0)``).
"""
from typing import Sequence

import numpy as np
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

#: Local corner signs (x, y, z) in the order of mmdet3d's ``LiDARInstance3DBoxes.corners``:
#: 0-3 the back face (-x), 4-7 the front face (+x, the heading).
_CORNER_SIGNS = np.array([[-1, -1, -1], [-1, -1, 1], [-1, 1, 1], [-1, 1, -1],
                          [1, -1, -1], [1, -1, 1], [1, 1, 1], [1, 1, -1]], np.float64) / 2
#: Footprint corner signs (x, y), counter-clockwise starting front-left.
_FOOTPRINT_SIGNS = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float64) / 2


def yaw_to_quat(yaw: float) -> list:
    """``[w, x, y, z]`` of a rotation by ``yaw`` radians about +z."""
    return [float(v) for v in Quaternion(axis=[0.0, 0.0, 1.0], angle=float(yaw)).elements]


def rot_to_quat(rot) -> list:
    """``[w, x, y, z]`` (``w >= 0``) of a 3x3 rotation matrix."""
    q = Quaternion(matrix=np.asarray(rot, dtype=np.float64), atol=1e-6, rtol=1e-6).normalised
    q = -q if q.w < 0 else q
    return [float(v) for v in q.elements]


def quat_to_rot(q) -> np.ndarray:
    """3x3 rotation of a ``[w, x, y, z]`` quaternion (normalised first)."""
    return Quaternion(np.asarray(q, dtype=np.float64)).normalised.rotation_matrix


def pose_matrix(rotation, translation, inverse: bool = False) -> np.ndarray:
    """4x4 ``src2dst`` from a rotation (quaternion ``[w, x, y, z]`` or 3x3) and translation.

    ``inverse=True`` returns ``dst2src`` (the devkit's ``transform_matrix`` convention).
    """
    rot = np.asarray(rotation, dtype=np.float64)
    quat = Quaternion(matrix=rot, atol=1e-6, rtol=1e-6) if rot.shape == (3, 3) else Quaternion(rot)
    return transform_matrix(np.asarray(translation, dtype=np.float64), quat.normalised,
                            inverse=inverse)


def transform_points(mat: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 (or 3x4) ``mat`` to ``(..., 3)`` points; returns float64 ``(..., 3)``."""
    mat = np.asarray(mat, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    return pts @ mat[:3, :3].T + mat[:3, 3]


def _as_boxes(boxes) -> np.ndarray:
    tensor = getattr(boxes, 'tensor', boxes)
    tensor = tensor.detach().cpu().numpy() if hasattr(tensor, 'detach') else tensor
    arr = np.asarray(tensor, dtype=np.float64)
    return arr.reshape(-1, arr.shape[-1]) if arr.size else np.zeros((0, 7))


def box_corners(boxes, origin: Sequence[float] = (0.5, 0.5, 0.5)) -> np.ndarray:
    """``(N, >=7)`` boxes ``[x, y, z, l, w, h, yaw]`` -> ``(N, 8, 3)`` corners.

    Args:
        boxes: array (or mmdet3d boxes / tensor) in any frame; ``(x, y, z)`` is the point
            at relative position ``origin`` of the box (``(0.5, 0.5, 0.5)``: the gravity
            centre of the info files; ``(0.5, 0.5, 0)``: mmdet3d's bottom centre).
        origin: see above.

    Returns:
        ``(N, 8, 3)`` corners in the boxes' frame, in mmdet3d's order (0-3 the back
        face, 4-7 the front face; 1, 2, 5, 6 at the top).
    """
    b = _as_boxes(boxes)
    if len(b) == 0:
        return np.zeros((0, 8, 3))
    dims = b[:, 3:6]
    shift = np.asarray(origin, dtype=np.float64) - 0.5            # centre -> origin
    local = (_CORNER_SIGNS[None] - shift) * dims[:, None]           # (N, 8, 3)
    c, s = np.cos(b[:, 6])[:, None], np.sin(b[:, 6])[:, None]
    x = local[..., 0] * c - local[..., 1] * s + b[:, 0:1]
    y = local[..., 0] * s + local[..., 1] * c + b[:, 1:2]
    return np.stack([x, y, local[..., 2] + b[:, 2:3]], axis=-1)


def box_footprints(boxes) -> np.ndarray:
    """``(N, >=7)`` boxes -> ``(N, 4, 2)`` BEV corners, counter-clockwise from front-left."""
    b = _as_boxes(boxes)
    if len(b) == 0:
        return np.zeros((0, 4, 2))
    local = _FOOTPRINT_SIGNS[None] * b[:, None, 3:5]
    c, s = np.cos(b[:, 6])[:, None], np.sin(b[:, 6])[:, None]
    x = local[..., 0] * c - local[..., 1] * s + b[:, 0:1]
    y = local[..., 0] * s + local[..., 1] * c + b[:, 1:2]
    return np.stack([x, y], axis=-1)
