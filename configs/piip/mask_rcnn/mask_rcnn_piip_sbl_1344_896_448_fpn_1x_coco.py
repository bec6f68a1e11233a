# PIIP-SBL 1344/896/448, Mask R-CNN 1x (README: 48.3/42.7 AP, 1002 GFLOPs): L @448, B @896, S @1344;
# images resized to (1344, 1344 * 800 // 1333) (padded to multiples of 224, as officially).
_base_ = ['./mask_rcnn_piip_sbl_1568_896_672_fpn_1x_coco.py']
import piip_det.config_utils as config_utils  # noqa: E402
import piip_det.flops_table as variants  # noqa: E402

model = dict(backbone=variants.piip(variants.SBL, (448, 896, 1344), window=28, recipe='sbl'))
img_scale = (1344, 1344 * 800 // 1333)
(train_pipeline, test_pipeline, train_dataloader, val_dataloader,
 test_dataloader) = config_utils.resized_data(_base_, img_scale)
