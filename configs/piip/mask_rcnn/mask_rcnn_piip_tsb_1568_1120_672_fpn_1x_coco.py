# PIIP-TSB 1568/1120/672, Mask R-CNN 1x on COCO (README: 46.5 box / 41.3 mask AP, backbone
# 453 GFLOPs; official mmdetection/configs/piip/3branch/
# mask_rcnn_deit_tsb_1568_1120_672_fpn_1x_coco_bs16.py).
# Branches: DeiT III-B @672, DeiT III-S @1120, DeiT-T @1568; window 14 in every block; drop
# path B 0.15 / S 0.05 / T 0.05 (constant per branch), 0.4 in the interactions; an
# interaction after every block. The backbone dict is the FLOPs table's row (piip_det.flops_table).
_base_ = ['../_base_/models/mask_rcnn_piip_fpn.py', '../_base_/datasets/coco_instance_piip.py',
          '../_base_/schedules/adamw_layer_decay_1x.py', 'mmdet::_base_/default_runtime.py']
import piip_det.flops_table as variants  # noqa: E402

model = dict(backbone=variants.piip(variants.TSB, (672, 1120, 1568), window=14, recipe='tsb'),
             neck=dict(in_channels=[768] * 4))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.85, skip_stride=[1, 1]))
