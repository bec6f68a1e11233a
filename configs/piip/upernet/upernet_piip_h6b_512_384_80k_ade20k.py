# UperNet on PIIP-H6B 512/384 (InternViT-6B @384, ViT-H @512), otherwise as 512/512 (official
# mmsegmentation/configs/piip/2branch/upernet_internvit_h6b_384_512_80k_ade20k_bs16_lr4e-5.py).
_base_ = ['./upernet_piip_h6b_512_512_80k_ade20k.py']

_internvit, _vit_h = _base_.model.backbone.branches
model = dict(backbone=dict(branches=[dict(_internvit, real_size=384), _vit_h]))
del _internvit, _vit_h
