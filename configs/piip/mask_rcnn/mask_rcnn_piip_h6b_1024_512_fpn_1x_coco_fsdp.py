# PIIP-H6B 1024/512 Mask R-CNN 1x (mask_rcnn_piip_h6b_1024_512_fpn_1x_coco.py) trained fully
# sharded: FlexibleRunner + FSDPStrategy (ZeRO-3) with activation checkpointing on every ViT
# and interaction block, bf16 autocast with fp32 sharded master weights. The official runs
# use DeepSpeed ZeRO-1 in bf16 instead (piip.md section 8).
#   bash tools/dist_train.sh configs/piip/mask_rcnn/mask_rcnn_piip_h6b_1024_512_fpn_1x_coco_fsdp.py 8
#   python tools/analysis_tools/get_flops.py THIS_CONFIG   (per-GPU memory for 8 / 64 GPUs)
_base_ = ['./mask_rcnn_piip_h6b_1024_512_fpn_1x_coco.py', '../_base_/strategies/fsdp_cp.py']

# the strategy checkpoints the blocks; the branches' own with_cp would recompute twice
model = dict(backbone=dict(branches=[dict(b, with_cp=False)
                                     for b in _base_.model.backbone.branches]))
optim_wrapper = dict(use_fsdp=True)   # AmpOptimWrapper: FSDP's sharded grad scaler
