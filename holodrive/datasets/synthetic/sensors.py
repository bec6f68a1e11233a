"""Sensor rig: six nuScenes-like cameras and an HDL-32E-like LIDAR_TOP."""
import math

import numpy as np

from .geometry import rot_to_quat, rot_xyz

# channel: (translation in the ego frame, yaw in degrees, fx at 1600x900)
CAMERA_RIG = {
    'CAM_FRONT': ((1.70, 0.016, 1.51), 0.0, 1266.4),
    'CAM_FRONT_RIGHT': ((1.55, -0.493, 1.50), -55.0, 1260.8),
    'CAM_FRONT_LEFT': ((1.52, 0.495, 1.51), 55.0, 1272.6),
    'CAM_BACK': ((0.03, 0.003, 1.58), 180.0, 809.2),
    'CAM_BACK_LEFT': ((1.04, 0.485, 1.59), 110.0, 1256.7),
    'CAM_BACK_RIGHT': ((1.01, -0.481, 1.56), -110.0, 1259.5),
}
LIDAR_TRANSLATION = (0.943713, 0.0, 1.84023)
LIDAR_YAW_DEG = -90.0
# HDL-32E: 32 beams from -30.67 to +10.67 degrees; 20 Hz -> ~1084 azimuth steps
LIDAR_ELEVATIONS = np.deg2rad(np.linspace(-30.67, 10.67, 32))
LIDAR_AZIMUTH_STEPS = 1084
LIDAR_RANGE = 70.0
#: one LiDAR turn (20 Hz); the sweep ends at the LiDAR timestamp
LIDAR_PERIOD = 0.05


def camera_rotation(yaw, pitch=0.0, roll=0.0):
    """Camera -> ego rotation for a camera looking along ``yaw`` (z forward, x right, y down)."""
    base = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # columns: cam x, y, z in ego
    return rot_xyz(0.0, pitch, yaw) @ rot_xyz(roll, 0.0, 0.0) @ base


def make_rig(rng, image_size):
    """Per-scene calibration with small jitter. Returns {channel: dict(translation, rotation (quat),
    rot (3x3), K (3x3 or None), width, height)}."""
    w, h = image_size
    rig = {}
    for ch, (t, yaw, fx) in CAMERA_RIG.items():
        jt = rng.normal(0, 0.005, 3)
        ja = rng.normal(0, math.radians(0.15), 3)
        rot = camera_rotation(math.radians(yaw) + ja[0], ja[1], ja[2])
        k = np.array([[fx * w / 1600.0, 0.0, w / 2.0 + rng.normal(0, w * 0.004)],
                      [0.0, fx * h / 900.0, h / 2.0 + rng.normal(0, h * 0.004)],
                      [0.0, 0.0, 1.0]])
        q = rot_to_quat(rot)
        rig[ch] = dict(translation=[float(v) for v in np.add(t, jt)], rotation=q, K=k, width=w, height=h)
    ja = rng.normal(0, math.radians(0.2), 2)
    rot = rot_xyz(ja[0], ja[1], math.radians(LIDAR_YAW_DEG))
    rig['LIDAR_TOP'] = dict(translation=list(LIDAR_TRANSLATION), rotation=rot_to_quat(rot), K=None,
                            width=0, height=0)
    return rig
