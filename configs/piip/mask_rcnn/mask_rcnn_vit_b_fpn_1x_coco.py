# ViT-B baseline (DeiT III-B) @1024, Mask R-CNN 1x on COCO (README: 43.7 box / 39.7 mask AP,
# backbone 463 GFLOPs; official
# mmdetection/configs/piip/baseline/mask_rcnn_deit_vit_b_fpn_1x_coco_bs16.py):
# 4 x (2 window-14 blocks + 1 global block), drop path 0.15, ViTDet simple FPN on the
# stride-16 map (piip_det.ViTBaseline); images resized to (1024, 614), padded to 64;
# layer decay 0.95 over 12 layers.
_base_ = ['../_base_/models/mask_rcnn_piip_fpn.py', '../_base_/datasets/coco_instance_piip.py',
          '../_base_/schedules/adamw_layer_decay_1x.py', 'mmdet::_base_/default_runtime.py']
import piip_det.config_utils as config_utils  # noqa: E402
import piip_det.flops_table as variants  # noqa: E402

model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(variants.vit_baseline('deit-b', 4), type='piip_det.ViTBaseline',
                  drop_path_rate=0.15, real_size=1024),
    neck=dict(in_channels=[768] * 4))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.95, skip_stride=1))
img_scale = (1024, 1024 * 800 // 1333)
(train_pipeline, test_pipeline, train_dataloader, val_dataloader,
 test_dataloader) = config_utils.resized_data(_base_, img_scale)
