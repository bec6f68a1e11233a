# Mask R-CNN + FPN on a PIIP (or single-branch ViT) backbone: mmdet's model with PIIP's
# input normalisation (mean = std = 127.5, i.e. [-1, 1]) and padding (multiples of 224,
# so the 672/1120/1568 grids are whole and window-14 aligned; piip.md section 3).
# A config adds model.backbone (branches) and model.neck.in_channels = [d1] * 4.
#
# Pretrained branches (every PIIP config here; the official runs start from DeiT / DeiT III /
# MAE / InternViT-6B classification weights): convert each plain checkpoint once,
#   python tools/convert/piip_official.py deit_3_base_224_21k.pth pretrained/tsb_1.safetensors \
#       --branch 1 --backbone-only --config CONFIG          (and --branch 2, 3 for the others)
# and set, in a config inheriting CONFIG, model = dict(backbone=dict(init_cfg=[
# dict(type='Pretrained', checkpoint='pretrained/tsb_1.safetensors'), ...])) (one entry per
# branch); or start from a converted official detection checkpoint with load_from=....
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['piip_det.models', 'piip_det.models.vit_baseline', 'piip_det.optim'],
                      allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5],
                           bgr_to_rgb=True, pad_size_divisor=224),
    backbone=dict(_delete_=True, type='piip_det.PIIP'))
