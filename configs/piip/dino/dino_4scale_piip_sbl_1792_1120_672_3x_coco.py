# DINO 4-scale on PIIP-SBL 1792/1120/672, 3x on COCO with multi-scale training (README:
# 57.8 box AP; official mmdetection/configs/piip/3branch/
# dino_4scale_deit_384_sbl_1792_1120_672_fpn_3x_coco_bs32_ms.py):
# DeiT III-L @672, -B @1120, -S @1792 (the 384-px pretrained models), each block pattern
# (window 24, window 24, global), drop path L 0.4 / B 0.15 / S 0.05; backbone strides 8/16/32.
# Recipe: AdamW lr 2e-4, weight decay 0.05, layer decay 0.85 over 24 layers (stride 2),
# gradient clipping 0.1, 36 epochs with steps at 27 and 33 after a 500-iteration warm-up,
# batch 32 (16 GPUs x 2); DETR-style multi-scale resize / crop scaled by 1792 / 1024, a random
# 1792 crop, test at (2332, 1400), padding to multiples of 224.
_base_ = ['../_base_/models/dino_4scale_piip.py', 'mmdet::_base_/datasets/coco_detection.py',
          '../_base_/schedules/adamw_layer_decay_1x.py', 'mmdet::_base_/default_runtime.py']
import piip_det.flops_table as variants  # noqa: E402

_sbl = variants.piip(variants.SBL, (672, 1120, 1792), window=24, recipe='sbl')
model = dict(backbone=dict(_sbl, output_mode='dino', branches=[
    dict(b, pretrain_img_size=384,
         window_attn=[True, True, False] * ((b['interaction_indexes'][-1][1] + 1) // 3))
    for b in _sbl['branches']]), neck=dict(in_channels=[1024] * 3))
del _sbl

optim_wrapper = dict(optimizer=dict(lr=2e-4), clip_grad=dict(max_norm=0.1, norm_type=2),
                     paramwise_cfg=dict(num_layers=24, layer_decay_rate=0.85, skip_stride=[2, 2]))
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)]
auto_scale_lr = dict(base_batch_size=32)

_r = 1792 / 1024
_scales = [(int(s * _r), int(1333 * _r)) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=_scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', keep_ratio=True,
              scales=[(int(s * _r), int(1333 * _r)) for s in (400, 500, 600)]),
         dict(type='RandomCrop', crop_type='absolute_range',
              crop_size=(int(384 * _r), int(600 * _r)), allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=_scales, keep_ratio=True)]]),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(1792, 1792),
         allow_negative_crop=True),
    dict(type='PackDetInputs')]
test_pipeline = [dict(t, scale=(int(1333 * _r), int(800 * _r))) if t['type'] == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
del _r, _scales
