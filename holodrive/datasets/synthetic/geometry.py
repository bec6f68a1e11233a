"""Geometry helpers unique to the generator (Euler rotations, 2D box overlap, tokens);
quaternions come from :mod:`holodrive.utils.geometry`.

Conventions (nuScenes): quaternions are ``[w, x, y, z]``; a box's local frame has
x along its heading (length ``l``), y to its left (width ``w``) and z up (height
``h``); sizes are written as ``(w, l, h)``.
"""
import math

import numpy as np

from ...utils.geometry import quat_to_rot, rot_to_quat, yaw_to_quat  # noqa: F401 (shared helpers)


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


def wrap_angle(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


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
