"""nuScenes data path shared by every HoloDrive model family.

- :func:`create_nuscenes_infos` / :func:`load_nuscenes`: release -> mmdet3d v2 infos.
- :class:`NuScenesSceneDataset`: streaming, temporal, multi-modal scene dataset.
- :mod:`holodrive.datasets.transforms`: checked loaders, BEV map / box rasters,
  LiDAR depth maps, adjacent-frame loading, packing.

Names are imported on first use (PEP 562), so the light parts (the world generator
``holodrive.datasets.synthetic``, the info converter, the errors) do not pull in mmdet3d and
torch; ``holodrive.engine.cli.import_project`` imports the registering modules
(``transforms``, ``scene_dataset``) explicitly.
"""
import importlib

_EXPORTS = {
    'constants': ('CAMERA_NAMES', 'DETECTION_CLASSES', 'LIDAR_NAME', 'MAP_LAYERS'),
    'errors': ('CorruptSampleError', 'HoloDriveDataError', 'InfoFileError',
               'MissingSampleError', 'NuScenesTableError'),
    'nuscenes_converter': ('create_nuscenes_infos', 'load_nuscenes'),
    'scene_dataset': ('NUSCENES_DATA_PREFIX', 'NuScenesSceneDataset'),
    'streaming': ('InfoStream', 'build_info_stream', 'open_info_stream'),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f'.{_MODULE_OF[name]}', __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(__all__))
