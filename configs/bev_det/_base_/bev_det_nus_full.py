# Full-size camera-only BEV detection on real nuScenes (6 cameras, 1600 x 900 recordings):
# everything but the image backbone and neck, which each config sets (img_backbone, img_neck,
# img_in_indices, image_size / final_size / resize ranges, optimizer constructor).
# Recipe adapted from BEVDet / BEVDepth (not copied): image aug (resize, bottom crop, flip,
# +-5.4 deg), BEV aug (+-22.5 deg, scale 0.95-1.05, flips), CBGS class-balanced resampling,
# AdamW, 24 epochs with warm-up + cosine, depth bins 1-60 m at 0.5 m (BEVFusion's dbound), a
# 128 x 128 BEV of 0.8 m over +-51.2 m, CenterHead with the CenterPoint nuScenes tasks.
# Data: tools/create_data.py nuscenes --root-path data/nuscenes (docs/data_pipeline.md).
_base_ = ['../../_base_/datasets/synthetic_nus_lidar.py', '../../_base_/default_runtime.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

data_root = 'data/nuscenes/'
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.1, 0.1, 0.2]          # the head's target grid: 1024 x 1024, /8 -> 128 x 128
out_size_factor = 8
downsample = 16
depth_bins = (1.0, 60.0, 0.5)         # metres (start, stop, step): 118 bins
bev_grid = dict(x_range=(-51.2, 51.2), y_range=(-51.2, 51.2), resolution=0.8)
img_channels, bev_channels = 256, 80
# set by each config:
image_size = (640, 1600)              # (H, W) network input
final_size = (1600, 640)              # (W, H) for MultiViewImageAug
resize_train = (0.94, 1.11)
resize_test = 1.0

center_head = config_utils.center_head_nus(
    384, point_cloud_range, voxel_size, out_size_factor, share_conv_channel=64,
    max_num=500)   # (bbox_head, train_cfg, test_cfg)
model = dict(
    type='BEVDet',
    data_preprocessor=dict(type='SceneDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    img_out_index=0,
    view_transform=dict(
        type='LSSViewTransform', in_channels=img_channels, out_channels=bev_channels,
        image_size=image_size, downsample=downsample, depth_bins=depth_bins,
        bev_grid=bev_grid, z_range=point_cloud_range[2::3], num_views=6,
        depth_net=dict(mid_channels=img_channels, num_res_blocks=3)),
    depth_loss=dict(type='DepthLoss', loss_weight=3.0, stride=downsample),
    temporal_fusion=None,
    bev_backbone=dict(
        type='SECOND', in_channels=bev_channels, out_channels=[160, 320, 640],
        layer_nums=[2, 2, 2], layer_strides=[1, 2, 2],
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        conv_cfg=dict(type='Conv2d', bias=False)),
    bev_neck=dict(
        type='SECONDFPN', in_channels=[160, 320, 640], out_channels=[128, 128, 128],
        upsample_strides=[1, 2, 4], norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        upsample_cfg=dict(type='deconv', bias=False), use_conv_for_no_stride=True),
    bbox_head=center_head[0],
    train_cfg=center_head[1],
    test_cfg=center_head[2])

class_names = {{_base_.class_names}}
metainfo = dict(classes=class_names)
input_modality = dict(use_lidar=True, use_camera=True)   # LiDAR only for the depth targets
depth_keys = [f'depth_bins_s{downsample}', f'depth_valid_s{downsample}']
train_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='GlobalRotScaleTrans', rot_range=[-0.3925, 0.3925],
         scale_ratio_range=[0.95, 1.05], translation_std=[0, 0, 0]),
    dict(type='RandomFlip3D', flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
    dict(type='MultiViewImageAug', final_size=final_size, resize_range=resize_train,
         flip_prob=0.5, rot_range=(-5.4, 5.4)),
    dict(type='FilterSceneInstances', point_cloud_range=point_cloud_range),
    dict(type='ProjectLidarDepth', strides=(downsample,), depth_bins=depth_bins),
    dict(type='PackSceneInputs', keys=['img', 'gt_bboxes_3d', 'gt_labels_3d'] + depth_keys)
]
test_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='MultiViewImageAug', final_size=final_size,
         resize_range=(resize_test, resize_test), test_mode=True),
    dict(type='PackSceneInputs', keys=['img'])
]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    dataset=dict(_delete_=True, type='CBGSDataset', dataset=dict(
        type={{_base_.dataset_type}}, data_root=data_root, ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline, metainfo=metainfo, modality=input_modality, test_mode=False,
        data_prefix={{_base_.data_prefix}}, box_type_3d='LiDAR')))
val_dataloader = dict(num_workers=4, dataset=dict(
    data_root=data_root, pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

# AdamW, bf16 autocast, warm-up + cosine over 24 epochs (batch 4 x 8 GPUs = 32).
max_epochs = 24
lr = 2e-4
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                     optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 1e-3, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=32)
