# UperNet (+ FCN auxiliary head on the stride-16 map) on a PIIP backbone in 'simple_fpn'
# mode (4 maps, strides 4/8/16/32, all d1 channels): mmseg's model, ImageNet normalisation
# as in the official PIIP ADE20K configs. A config adds model.backbone and the head widths.
_base_ = ['mmseg::_base_/models/upernet_r50.py']
# mmseg.registry: the config checker runs before mmengine imports the default scope's registry
custom_imports = dict(imports=['mmseg.registry', 'piip_det.models', 'piip_det.models.vit_baseline',
                               'piip_det.optim'], allow_failed_imports=False)
# norm_cfg without requires_grad=True (mmcv's default anyway): holodrive's config checker
# reads a norm_cfg as the norm class's arguments
norm_cfg = dict(type='SyncBN')
model = dict(
    pretrained=None,
    backbone=dict(_delete_=True, type='piip_det.PIIP'),
    decode_head=dict(in_index=[0, 1, 2, 3], num_classes=150,
                     norm_cfg=dict(_delete_=True, **norm_cfg)),
    auxiliary_head=dict(in_index=2, num_classes=150, norm_cfg=dict(_delete_=True, **norm_cfg)))
