# PIIP-TSB 1120/896/448, Mask R-CNN 1x (README: 43.6 / 38.7 AP, 243 GFLOPs):
# B @448, S @896, T @1120;
# images resized to (1120, 672) (still padded to multiples of 224, as officially).
_base_ = ['./mask_rcnn_piip_tsb_1568_1120_672_fpn_1x_coco.py']
import piip_det.config_utils as config_utils  # noqa: E402
import piip_det.flops_table as variants  # noqa: E402

model = dict(backbone=variants.piip(variants.TSB, (448, 896, 1120), window=14, recipe='tsb'))
img_scale = (1120, 1120 * 800 // 1333)
(train_pipeline, test_pipeline, train_dataloader, val_dataloader,
 test_dataloader) = config_utils.resized_data(_base_, img_scale)
