# PIIP-SBL 1568/896/672, Mask R-CNN 1x on COCO (README: 49.3 box / 43.7 mask AP, backbone
# 1464 GFLOPs; official mmdetection/configs/piip/3branch/
# mask_rcnn_deit_sbl_1568_896_672_fpn_1x_coco_bs16.py).
# Branches: DeiT III-L @672 (interactions every 2 blocks), DeiT III-B @896, DeiT III-S @1568;
# window 28 in every block; drop path L 0.4 / B 0.15 / S 0.05, 0.4 in the interactions;
# layer decay over ViT-L's 24 layers with the 12-layer branches at stride 2.
_base_ = ['../_base_/models/mask_rcnn_piip_fpn.py', '../_base_/datasets/coco_instance_piip.py',
          '../_base_/schedules/adamw_layer_decay_1x.py', 'mmdet::_base_/default_runtime.py']
import piip_det.flops_table as variants  # noqa: E402

model = dict(backbone=variants.piip(variants.SBL, (672, 896, 1568), window=28, recipe='sbl'),
             neck=dict(in_channels=[1024] * 4))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=24, layer_decay_rate=0.85, skip_stride=[2, 2]))
