"""Small geometry helpers: rotations, quaternions, oriented boxes and tokens.

Conventions (nuScenes): quaternions are ``[w, x, y, z]``; a box's local frame has
x along its heading (length ``l``), y to its left (width ``w``) and z up (height
``h``); sizes are written as ``(w, l, h)``.
"""
import math

import numpy as np


def yaw_to_quat(yaw):
    """Quaternion ``[w, x, y, z]`` of a rotation by ``yaw`` radians about +z."""
    return [math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0)]


def rot_to_quat(rot):
    """Quaternion ``[w, x, y, z]`` (w >= 0) of a 3x3 rotation matrix."""
    m = np.asarray(rot, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return [float(v) for v in q]


def quat_to_rot(q):
    """3x3 rotation matrix of a quaternion ``[w, x, y, z]`` (same as pyquaternion)."""
    w, x, y, z = (float(v) for v in q)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rot_z(yaw):
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_xyz(roll, pitch, yaw):
    """R = Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    return rot_z(yaw) @ ry @ rx


def pose_matrix(rot, trans):
    """4x4 homogeneous matrix from a rotation (3x3 or quaternion) and a translation."""
    rot = np.asarray(rot, dtype=np.float64)
    if rot.shape == (4,):
        rot = quat_to_rot(rot)
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = np.asarray(trans, dtype=np.float64)
    return m


def wrap_angle(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def box_corners(center, size_wlh, yaw):
    """8 corners (8, 3) of a yaw-oriented box; size is nuScenes ``(w, l, h)``."""
    w, l, h = size_wlh
    xs = np.array([1, 1, 1, 1, -1, -1, -1, -1]) * l / 2
    ys = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * w / 2
    zs = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * h / 2
    c, s = math.cos(yaw), math.sin(yaw)
    x = c * xs - s * ys + center[0]
    y = s * xs + c * ys + center[1]
    return np.stack([x, y, zs + center[2]], axis=1)


def footprint(center, length, width, yaw):
    """4 footprint corners (4, 2), counter-clockwise."""
    c, s = math.cos(yaw), math.sin(yaw)
    lx = np.array([1, -1, -1, 1]) * length / 2
    ly = np.array([1, 1, -1, -1]) * width / 2
    return np.stack([c * lx - s * ly + center[0], s * lx + c * ly + center[1]], axis=1)


def obb_overlap(a, b, margin=0.0):
    """Separating-axis test of two 2D oriented rectangles (4, 2); True when they overlap."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            n = np.hypot(*axis)
            if n < 1e-9:
                continue
            axis /= n
            pa, pb = a @ axis, b @ axis
            if pa.max() + margin < pb.min() or pb.max() + margin < pa.min():
                return False
    return True


class TokenGen:
    """32-hex tokens from a seeded generator (deterministic)."""

    def __init__(self, *seed):
        self.rng = np.random.default_rng([int(s) for s in seed])

    def __call__(self):
        return self.rng.bytes(16).hex()
