"""Names shared by the synthetic world, the info converter, datasets and metrics."""

#: The ten nuScenes detection classes, in the order mmdet3d's NuScenesDataset uses.
DETECTION_CLASSES = (
    'car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle',
    'motorcycle', 'pedestrian', 'traffic_cone', 'barrier')

#: The six surround cameras, in nuScenes' usual order.
CAMERA_NAMES = (
    'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT',
    'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')

LIDAR_NAME = 'LIDAR_TOP'

#: Map layers rasterised around the ego (see holodrive.datasets.transforms).
MAP_LAYERS = ('drivable_area', 'lane', 'ped_crossing', 'walkway',
              'lane_divider', 'road_divider')
