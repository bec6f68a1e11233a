# ViT-L baseline (DeiT III-L) @1024, Mask R-CNN 1x on COCO (README: 46.7 box / 42.5 mask AP,
# backbone 1542 GFLOPs; official
# mmdetection/configs/piip/baseline/mask_rcnn_deit_vit_l_fpn_1x_coco_bs16.py):
# 8 x (2 window-14 blocks + 1 global block), drop path 0.4; layer decay 0.95 over 24 layers.
_base_ = ['./mask_rcnn_vit_b_fpn_1x_coco.py']
import piip_det.flops_table as variants  # noqa: E402

model = dict(backbone=dict(variants.vit_baseline('deit-l', 8), type='piip_det.ViTBaseline',
                           drop_path_rate=0.4),
             neck=dict(in_channels=[1024] * 4))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=24))
