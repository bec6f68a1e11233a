# PIIP-TSBL 1568/1120/672/448, Mask R-CNN 1x (official
# mmdetection/configs/piip/4branch/mask_rcnn_deit_tsbl_1568_1120_672_448_fpn_1x_coco_bs16.py):
# DeiT III-L @448, DeiT III-B @672, DeiT III-S @1120, DeiT-T @1568; window 28 in every block;
# drop path L 0.4 / B 0.15 / S 0.05 / T 0.05; layer decay as SBL, every small branch at stride 2.
_base_ = ['./mask_rcnn_piip_sbl_1568_896_672_fpn_1x_coco.py']
import piip_det.flops_table as variants  # noqa: E402

_tsbl = variants.piip(variants.TSBL, (448, 672, 1120, 1568), window=28)
model = dict(backbone=dict(_tsbl, branches=[
    dict(b, drop_path_rate=rate) for b, rate in zip(_tsbl['branches'], (0.4, 0.15, 0.05, 0.05))]))
optim_wrapper = dict(paramwise_cfg=dict(skip_stride=[2, 2, 2]))
del _tsbl
