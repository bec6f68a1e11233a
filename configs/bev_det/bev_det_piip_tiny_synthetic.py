# A tiny camera-only BEV detector (BEVDet-style) with a 2-branch PIIP image backbone, sized to
# train on CPU on the synthetic world:
#   python tools/train.py configs/bev_det/bev_det_piip_tiny_synthetic.py \
#       --cfg-options data_root=DIR/        (a world written by tools/create_data.py synthetic)
# images (6 views, 320x180) -> resize 0.8 + bottom crop -> 256x128 -> PIIP (branches 64 wide @
# half size, 32 wide @ full size) -> FPN (stride 16) -> LSS + DepthNet (1 m bins, 1..53 m) ->
# 64x64 BEV at 1.6 m -> SECOND/SECONDFPN -> CenterHead (the tiny CenterPoint's).
# Single-branch baseline of about the same backbone FLOPs: bev_det_vit_tiny_synthetic.py.
# Docs: docs/bev_det.md.
_base_ = ['../_base_/datasets/synthetic_nus_lidar.py', '../_base_/default_runtime.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.2, 0.2, 0.2]          # the head's target grid: 512 x 512, /8 -> 64 x 64
out_size_factor = 8
image_size = (128, 256)               # (H, W) network input of every view
final_size = (256, 128)               # (W, H) for MultiViewImageAug
resize_test = 0.8                     # 320x180 -> 256x144, bottom crop -> 256x128
downsample = 16                       # stride of the camera features given to the LSS
depth_bins = (1.0, 53.0, 1.0)         # metres (start, stop, step): 52 bins
bev_grid = dict(x_range=(-51.2, 51.2), y_range=(-51.2, 51.2), resolution=1.6)
img_channels, bev_channels = 64, 64

img_backbone = dict(
    type='piip_det.PIIP', deform_num_heads=4, interaction_drop_path_rate=0.1, branches=[
        dict(embed_dim=64, depth=2, num_heads=2, real_size=128, pretrain_img_size=64,
             drop_path_rate=0.1, interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=2, num_heads=2, real_size=256, pretrain_img_size=64,
             window_attn=[True, False], window_size=8, drop_path_rate=0.05,
             interaction_indexes=[[0, 0], [1, 1]])])
backbone_out_channels = [64, 64]      # the strides 16 / 32 outputs given to the neck
# Optional temporal fusion of the previous keyframe (off here: it doubles the camera cost);
# switched on in bev_det_piip_tiny_temporal_synthetic.py.
temporal_fusion = None

center_head = config_utils.center_head_nus(
    128, point_cloud_range, voxel_size, out_size_factor, share_conv_channel=32,
    max_num=300)   # (bbox_head, train_cfg, test_cfg)
model = dict(
    type='BEVDet',
    data_preprocessor=dict(type='SceneDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    img_backbone=img_backbone,
    img_in_indices=(2, 3),
    img_neck=dict(type='mmdet.FPN', in_channels=backbone_out_channels,
                  out_channels=img_channels, num_outs=2),
    img_out_index=0,
    view_transform=dict(
        type='LSSViewTransform', in_channels=img_channels, out_channels=bev_channels,
        image_size=image_size, downsample=downsample, depth_bins=depth_bins,
        bev_grid=bev_grid, z_range=point_cloud_range[2::3], num_views=6,
        depth_net=dict(mid_channels=img_channels, num_res_blocks=1)),
    depth_loss=dict(type='DepthLoss', loss_weight=1.0, stride=downsample),
    temporal_fusion=temporal_fusion,
    bev_backbone=dict(
        type='SECOND', in_channels=bev_channels, out_channels=[64, 128], layer_nums=[2, 2],
        layer_strides=[1, 2], norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        conv_cfg=dict(type='Conv2d', bias=False)),
    bev_neck=dict(
        type='SECONDFPN', in_channels=[64, 128], out_channels=[64, 64], upsample_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        upsample_cfg=dict(type='deconv', bias=False), use_conv_for_no_stride=True),
    bbox_head=center_head[0],
    train_cfg=center_head[1],
    test_cfg=center_head[2])

class_names = {{_base_.class_names}}
input_modality = dict(use_lidar=True, use_camera=True)   # LiDAR only for the depth targets
train_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='GlobalRotScaleTrans', rot_range=[-0.3925, 0.3925],
         scale_ratio_range=[0.95, 1.05], translation_std=[0, 0, 0]),
    dict(type='RandomFlip3D', flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
    dict(type='MultiViewImageAug', final_size=final_size, resize_range=(0.75, 0.85),
         flip_prob=0.0, rot_range=(-3.0, 3.0)),
    dict(type='FilterSceneInstances', point_cloud_range=point_cloud_range),
    dict(type='ProjectLidarDepth', strides=(downsample,), depth_bins=depth_bins),
    dict(type='PackSceneInputs', keys=['img', 'gt_bboxes_3d', 'gt_labels_3d',
                                       f'depth_bins_s{downsample}', f'depth_valid_s{downsample}'])
]
test_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='MultiViewImageAug', final_size=final_size,
         resize_range=(resize_test, resize_test), test_mode=True),
    dict(type='PackSceneInputs', keys=['img'])
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline,
                                                   modality=input_modality))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader

# Schedule: AdamW, linear warm-up then cosine decay; epoch-based (checkpoint every epoch).
max_epochs = 12
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
