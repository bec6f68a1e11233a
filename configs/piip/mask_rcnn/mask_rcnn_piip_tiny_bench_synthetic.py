# The tiny PIIP of tools/analysis_tools/piip_benchmark.py: mask_rcnn_piip_tiny_synthetic.py with
# branch1 widened to 96 (3 heads) so that the pair is 96 wide @128 px + 32 wide @256 px, and a
# schedule long enough to learn (3000 iterations at batch 2, 30-iteration warm-up, lr x0.1 at
# 75 %). Backbone 0.0475 GMACs (paper convention, 256 x 256) = 0.52x its baseline
# mask_rcnn_vit_tiny_synthetic.py (branch1 alone @256: 0.0914), like PIIP-TSB 1120/896/448.
#   python tools/train.py configs/piip/mask_rcnn/mask_rcnn_piip_tiny_bench_synthetic.py \
#       --cfg-options data_root=DIR/
_base_ = ['./mask_rcnn_piip_tiny_synthetic.py']

width1 = 96
branch1, branch2 = _base_.model.backbone.branches
model = dict(backbone=dict(branches=[dict(branch1, embed_dim=width1, num_heads=3), branch2]),
             neck=dict(in_channels=[width1] * 4))
max_iters, warmup_iters = 3000, 30
train_cfg = dict(max_iters=max_iters, val_begin=max_iters + 1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 3 // 4], gamma=0.1)]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=20)
