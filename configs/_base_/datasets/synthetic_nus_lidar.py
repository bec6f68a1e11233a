# LiDAR-only 3D detection on a nuScenes-format world (synthetic by default; for real nuScenes
# point data_root at it and run tools/create_data.py nuscenes). The *Checked loaders raise one
# clear error naming a corrupt or missing file and apply the exact sweep-to-keyframe transform.
dataset_type = 'NuScenesSceneDataset'
data_root = 'data/synthetic/'
class_names = ['car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle',
               'motorcycle', 'pedestrian', 'traffic_cone', 'barrier']
metainfo = dict(classes=class_names)
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
input_modality = dict(use_lidar=True, use_camera=False)
data_prefix = dict(pts='samples/LIDAR_TOP', img='', sweeps='sweeps/LIDAR_TOP')
sweeps_num = 9
backend_args = None

train_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSweepsChecked', sweeps_num=sweeps_num, use_dim=[0, 1, 2, 3, 4],
         pad_empty_sweeps=True, remove_close=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='GlobalRotScaleTrans', rot_range=[-0.3925, 0.3925],
         scale_ratio_range=[0.95, 1.05], translation_std=[0, 0, 0]),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5,
         flip_ratio_bev_vertical=0.5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs', keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'])
]
test_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSweepsChecked', sweeps_num=sweeps_num, use_dim=[0, 1, 2, 3, 4],
         pad_empty_sweeps=True, remove_close=True, test_mode=True),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['points'])
]

train_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='nuscenes_infos_train.pkl',
                 pipeline=train_pipeline, metainfo=metainfo, modality=input_modality,
                 test_mode=False, data_prefix=data_prefix, box_type_3d='LiDAR'))
val_dataloader = dict(
    batch_size=1, num_workers=1, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='nuscenes_infos_val.pkl',
                 pipeline=test_pipeline, metainfo=metainfo, modality=input_modality,
                 test_mode=True, data_prefix=data_prefix, box_type_3d='LiDAR'))
test_dataloader = val_dataloader

# The official nuscenes-devkit DetectionEval (mAP / NDS) through mmdet3d.
val_evaluator = dict(type='NuScenesMetric', data_root=data_root,
                     ann_file=data_root + 'nuscenes_infos_val.pkl', metric='bbox')
test_evaluator = val_evaluator
