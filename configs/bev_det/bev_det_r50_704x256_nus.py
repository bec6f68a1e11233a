# ResNet-50 camera BEV detector at BEVDepth's 704 x 256 input, for comparison with published
# BEVDepth / BEVDet R50 numbers: mmdet ResNet-50 (ImageNet weights from a local file:
# --cfg-options model.img_backbone.init_cfg.checkpoint=PATH), FPN on C3-C5, stride-16
# features; 1600 x 900 recordings resized by 0.44 (train 0.386-0.55) and bottom-cropped to
# 704 x 256. Rest (LSS + DepthNet, BEV encoder, CenterHead, CBGS, aug, schedule):
# _base_/bev_det_nus_full.py.
_base_ = ['./_base_/bev_det_nus_full.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

image_size = (256, 704)
img_channels = 256
model = dict(
    img_backbone=dict(
        type='mmdet.ResNet', depth=50, num_stages=4, out_indices=(1, 2, 3), frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch',
        init_cfg=None),
    img_neck=dict(type='mmdet.FPN', in_channels=[512, 1024, 2048], out_channels=img_channels,
                  start_level=1, num_outs=2),       # strides 16 / 32; index 0 is used
    view_transform=dict(image_size=image_size))
(train_pipeline, test_pipeline, train_dataloader, val_dataloader,
 test_dataloader) = config_utils.camera_aug_data(_base_, (704, 256), (0.386, 0.55), 0.44)
train_dataloader.update(batch_size=8)
