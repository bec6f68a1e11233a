# The InternViT-6B baseline Mask R-CNN 1x (mask_rcnn_internvit_6b_fpn_1x_coco.py) trained
# fully sharded, as PIIP-H6B in mask_rcnn_piip_h6b_1024_512_fpn_1x_coco_fsdp.py.
_base_ = ['./mask_rcnn_internvit_6b_fpn_1x_coco.py', '../_base_/strategies/fsdp_cp.py']

model = dict(backbone=dict(with_cp=False))   # the strategy checkpoints every block
optim_wrapper = dict(use_fsdp=True)
