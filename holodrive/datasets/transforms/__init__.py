"""HoloDrive data transforms (registered in ``holodrive.registry.TRANSFORMS``).

mmdet3d's own transforms stay available in configs (the registry is a child of
mmdet3d's); these add what mmdet3d lacks.
"""
from .bev import (BEVGrid, RasterizeBoxBEV, RasterizeMapBEV, get_nusc_map,
                  rasterize_boxes, rasterize_map)
from .depth import ProjectLidarDepth, project_depth
from .formatting import FilterSceneInstances, PackSceneInputs
from .loading import (LoadMultiViewImagesChecked, LoadPointsChecked,
                      LoadSceneAnnotations3D, LoadSweepsChecked,
                      read_points_checked)
from .temporal import LoadAdjacentFrames

__all__ = [
    'BEVGrid', 'RasterizeMapBEV', 'RasterizeBoxBEV', 'get_nusc_map', 'rasterize_map',
    'rasterize_boxes', 'ProjectLidarDepth', 'project_depth', 'FilterSceneInstances',
    'PackSceneInputs', 'LoadPointsChecked', 'LoadSweepsChecked',
    'LoadMultiViewImagesChecked', 'LoadSceneAnnotations3D', 'read_points_checked',
    'LoadAdjacentFrames',
]
