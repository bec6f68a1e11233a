# CenterPoint at the paper's size (Yin et al., CVPR 2021; mmdet3d's
# centerpoint_voxel01_second_secfpn_8xb4-cyclic-20e_nus-3d, GT-paste, without CBGS):
# 0.1 m voxels, 1024 x 1024 x 40 grid, SparseEncoder 16-128 ch, SECOND [128, 256], 10 sweeps.
# Meant for a GPU and real nuScenes: data_root=data/nuscenes/. Same data path as the tiny config.
_base_ = ['./centerpoint_tiny_synthetic.py']

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.1, 0.1, 0.2]
grid_size = [1024, 1024, 40]
sweeps_num = 9

model = dict(
    data_preprocessor=dict(voxel_layer=dict(voxel_size=voxel_size, max_voxels=(90000, 120000))),
    pts_middle_encoder=dict(
        sparse_shape=[41, 1024, 1024], base_channels=16, output_channels=128,
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128))),
    pts_backbone=dict(in_channels=256, out_channels=[128, 256], layer_nums=[5, 5]),
    pts_neck=dict(in_channels=[128, 256], out_channels=[256, 256]),
    pts_bbox_head=dict(in_channels=512, share_conv_channel=64,
                       bbox_coder=dict(voxel_size=voxel_size[:2], max_num=500)),
    train_cfg=dict(pts=dict(grid_size=grid_size, voxel_size=voxel_size, max_objs=500)),
    test_cfg=dict(pts=dict(voxel_size=voxel_size[:2], max_per_img=500)))

class_names = {{_base_.class_names}}
data_root = 'data/nuscenes/'
db_sampler = dict(
    type='SceneDataBaseSampler', data_root=data_root,
    info_path=data_root + 'nuscenes_dbinfos_train.json', rate=1.0,
    prepare=dict(filter_by_difficulty=[-1],
                 filter_by_min_points=dict(
                     car=5, truck=5, bus=5, trailer=5, construction_vehicle=5, traffic_cone=5,
                     barrier=5, motorcycle=5, bicycle=5, pedestrian=5)),
    classes=class_names,
    sample_groups=dict(car=2, truck=3, construction_vehicle=7, bus=4, trailer=6, barrier=2,
                       motorcycle=6, bicycle=6, pedestrian=2, traffic_cone=2),
    points_loader=dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5))
train_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSweepsChecked', sweeps_num=sweeps_num, use_dim=[0, 1, 2, 3, 4],
         pad_empty_sweeps=True, remove_close=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='ObjectSample', db_sampler=db_sampler),
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
train_dataloader = dict(batch_size=4, num_workers=4, persistent_workers=True,
                        dataset=dict(data_root='data/nuscenes/', pipeline=train_pipeline))
val_dataloader = dict(num_workers=4, dataset=dict(data_root='data/nuscenes/', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(data_root='data/nuscenes/', ann_file='data/nuscenes/nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

# cyclic-20e schedule of mmdet3d: AdamW 1e-4 peak (per 8 GPUs x 4), 20 epochs
lr = 1e-4
max_epochs = 20
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=8, eta_min=lr * 10, begin=0, end=8, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=12, eta_min=lr * 1e-4, begin=8, end=20, by_epoch=True,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(enable=True, base_batch_size=32)
