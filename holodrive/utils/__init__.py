"""Small helpers shared by every part of HoloDrive: geometry and atomic file writes."""
from .geometry import (box_corners, box_footprints, pose_matrix, quat_to_rot, rot_to_quat,
                       transform_points, yaw_to_quat)
from .io import atomic_open, atomic_write_bytes, write_json_lines

__all__ = ['box_corners', 'box_footprints', 'pose_matrix', 'quat_to_rot', 'rot_to_quat',
           'transform_points', 'yaw_to_quat', 'atomic_open', 'atomic_write_bytes',
           'write_json_lines']
