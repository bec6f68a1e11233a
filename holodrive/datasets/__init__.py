"""nuScenes data path shared by every HoloDrive model family.

- :func:`create_nuscenes_infos` / :func:`load_nuscenes`: release -> mmdet3d v2 infos.
- :class:`NuScenesSceneDataset`: streaming, temporal, multi-modal scene dataset.
- :mod:`holodrive.datasets.transforms`: checked loaders, BEV map / box rasters,
  LiDAR depth maps, adjacent-frame loading, packing.

``holodrive.datasets.synthetic`` (the synthetic world generator) is imported lazily
by the tools that need it, not here.
"""
from . import transforms  # noqa: F401  (registers the transforms)
from .constants import CAMERA_NAMES, DETECTION_CLASSES, LIDAR_NAME, MAP_LAYERS
from .errors import (CorruptSampleError, HoloDriveDataError, InfoFileError,
                     MissingSampleError, NuScenesTableError)
from .nuscenes_converter import create_nuscenes_infos, load_nuscenes
from .scene_dataset import NUSCENES_DATA_PREFIX, NuScenesSceneDataset
from .streaming import InfoStream, build_info_stream, open_info_stream

__all__ = [
    'CAMERA_NAMES', 'DETECTION_CLASSES', 'LIDAR_NAME', 'MAP_LAYERS',
    'CorruptSampleError', 'HoloDriveDataError', 'InfoFileError', 'MissingSampleError',
    'NuScenesTableError', 'create_nuscenes_infos', 'load_nuscenes',
    'NUSCENES_DATA_PREFIX', 'NuScenesSceneDataset', 'InfoStream', 'build_info_stream',
    'open_info_stream',
]
