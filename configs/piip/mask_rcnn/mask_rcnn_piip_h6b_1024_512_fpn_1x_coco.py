# PIIP-H6B 1024/512, Mask R-CNN 1x on COCO with multi-scale training (official
# mmdetection/configs/piip/2branch/mask_rcnn_internvit_h6b_1024_512_fpn_1x_coco_bs16_ms.py):
# InternViT-6B @512 (interactions every 4 blocks) and MAE ViT-H @1024 (groups of 2-3 blocks),
# global attention, drop path 0.4 ramped over depth (the official InternViT6B class) and
# activation checkpointing in both branches; layer decay over 48 layers, ViT-H at stride 48/32.
# Data: DETR-style multi-scale resize / crop, then a random 1024 x 1024 crop; test at
# (1333, 800); padding to multiples of 64.
_base_ = ['../_base_/models/mask_rcnn_piip_fpn.py', '../_base_/datasets/coco_instance_piip.py',
          '../_base_/schedules/adamw_layer_decay_1x.py', 'mmdet::_base_/default_runtime.py']
import piip_det.flops_table as variants  # noqa: E402

_h6b = variants.piip(variants.H6B, (512, 1024))
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(_h6b, branches=[dict(b, drop_path_rate=0.4, drop_path_schedule='linear',
                                       with_cp=True) for b in _h6b['branches']]),
    neck=dict(in_channels=[3200] * 4))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=48, layer_decay_rate=0.85,
                                        skip_stride=[48 / 32]))
del _h6b

_scales = [(s, 1333) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=_scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
              keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=_scales, keep_ratio=True)]]),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(1024, 1024),
         allow_negative_crop=True),
    dict(type='PackDetInputs')]
test_pipeline = [dict(t, scale=(1333, 800)) if t['type'] == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
del _scales
