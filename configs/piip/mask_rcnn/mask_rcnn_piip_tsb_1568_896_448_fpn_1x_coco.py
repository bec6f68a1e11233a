# PIIP-TSB 1568/896/448, Mask R-CNN 1x (README: 45.0 / 40.3 AP, 287 GFLOPs):
# B @448, S @896, T @1568.
_base_ = ['./mask_rcnn_piip_tsb_1568_1120_672_fpn_1x_coco.py']
import piip_det.flops_table as variants  # noqa: E402

model = dict(backbone=variants.piip(variants.TSB, (448, 896, 1568), window=14, recipe='tsb'))
