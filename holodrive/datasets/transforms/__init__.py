"""HoloDrive data transforms (registered in ``holodrive.registry.TRANSFORMS``).

mmdet3d's own transforms stay available in configs (the registry is a child of
mmdet3d's); these add what mmdet3d lacks. In the ``holodrive`` scope ``GlobalRotScaleTrans``
and ``RandomFlip3D`` are the geometry-recording subclasses of :mod:`.augment`.
"""
from .augment import (GlobalRotScaleTrans, MultiViewImageAug, RandomFlip3D, apply_lidar_aug,
                      ensure_geometry, image_aug_matrix)
from .bev import (BEVGrid, RasterizeBoxBEV, RasterizeMapBEV, get_nusc_map,
                  rasterize_boxes, rasterize_map)
from .captions import GenerateCaption, parse_description
from .db_sampler import GTDatabaseError, SceneDataBaseSampler, read_db_infos
from .depth import ProjectLidarDepth, depth_bin_targets, min_pool_depth, project_depth
from .formatting import FilterSceneInstances, PackSceneInputs
from .layout import ProjectLayoutToCameras
from .scene_objects import RasterizeSceneObjectsBEV, SceneObjectTokens
from .loading import (LoadMultiViewImagesChecked, LoadPointsChecked,
                      LoadSceneAnnotations3D, LoadSweepsChecked,
                      read_points_checked)
from .temporal import LoadAdjacentFrames

__all__ = [
    'GlobalRotScaleTrans', 'RandomFlip3D', 'MultiViewImageAug', 'apply_lidar_aug',
    'ensure_geometry', 'image_aug_matrix', 'BEVGrid', 'RasterizeMapBEV', 'RasterizeBoxBEV',
    'get_nusc_map', 'rasterize_map', 'rasterize_boxes', 'GenerateCaption',
    'GTDatabaseError', 'SceneDataBaseSampler', 'read_db_infos',
    'parse_description', 'ProjectLidarDepth', 'project_depth', 'min_pool_depth',
    'depth_bin_targets', 'FilterSceneInstances', 'PackSceneInputs', 'ProjectLayoutToCameras',
    'RasterizeSceneObjectsBEV', 'SceneObjectTokens',
    'LoadPointsChecked', 'LoadSweepsChecked', 'LoadMultiViewImagesChecked',
    'LoadSceneAnnotations3D', 'read_points_checked', 'LoadAdjacentFrames',
]
