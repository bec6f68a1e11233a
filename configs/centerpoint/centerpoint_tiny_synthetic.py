# A small CenterPoint (spconv SparseEncoder + SECOND/FPN + CenterHead) that trains on CPU
# in minutes on the synthetic world. Full size: centerpoint_voxel01_second_secfpn_nus.py.
_base_ = ['../_base_/datasets/synthetic_nus_lidar.py', '../_base_/default_runtime.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.2, 0.2, 0.2]          # metres; grid 512 x 512 x 40
out_size_factor = 8                   # BEV feature map 64 x 64 (1.6 m cells)
sweeps_num = 2

center_head = config_utils.center_head_nus(
    128, point_cloud_range, voxel_size, out_size_factor, share_conv_channel=32,
    max_num=300)   # (bbox_head, train_cfg, test_cfg)
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(
        type='Det3DDataPreprocessor', voxel=True,
        voxel_layer=dict(max_num_points=10, voxel_size=voxel_size,
                         point_cloud_range=point_cloud_range, max_voxels=(60000, 80000))),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(
        type='SparseEncoder', in_channels=5, sparse_shape=[41, 512, 512], base_channels=8,
        output_channels=64,
        order=('conv', 'norm', 'act'),
        encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 64), (64, 64)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)),
        block_type='basicblock'),
    pts_backbone=dict(
        type='SECOND', in_channels=128, out_channels=[64, 128], layer_nums=[3, 3],
        layer_strides=[1, 2], norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        conv_cfg=dict(type='Conv2d', bias=False)),
    pts_neck=dict(
        type='SECONDFPN', in_channels=[64, 128], out_channels=[64, 64], upsample_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        upsample_cfg=dict(type='deconv', bias=False), use_conv_for_no_stride=True),
    pts_bbox_head=center_head[0],
    train_cfg=dict(pts=center_head[1]),
    test_cfg=dict(pts=center_head[2]))

class_names = {{_base_.class_names}}
data_root = 'data/synthetic/'
# GT-paste (CenterPoint's nuScenes recipe): per frame, boxes of other training frames are
# pasted up to these counts per class, with their points (written once by
# `tools/create_data.py gt-database --config THIS_CONFIG`).
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
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

# Schedule: AdamW, linear warm-up then cosine decay; epoch-based (checkpoint every epoch).
max_epochs = 8  # about 25 min on 2 CPU cores for a 20-scene world (README)
lr = 2e-3
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 0.01, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=2)
