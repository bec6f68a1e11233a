# PIIP-TSB camera BEV detector on nuScenes: DeiT III-B @640, DeiT III-S @1120, DeiT-T @1600
# (the 1600 x 640 network input is the T branch's; each branch sees it resized by
# real_size / 1600), an interaction after every block, window attention 14, the PIIP
# detection drop-path recipe; layer-wise lr decay 0.85 over the 12 blocks of branch 1 (the
# official PIIP detection rule, PIIPLayerDecayOptimizerConstructor on `img_backbone`).
# Pretrained branches: init_cfg of each branch, or tools/convert/ for official checkpoints.
# Everything else (LSS + DepthNet, BEV encoder, CenterHead, CBGS, aug, schedule):
# _base_/bev_det_nus_full.py. Not trained here (no GPU, no nuScenes); the tests build it.
_base_ = ['./_base_/bev_det_nus_full.py']
import piip_det.flops_table as variants  # noqa: E402

img_channels = 256
model = dict(
    img_backbone=variants.piip(variants.TSB, (640, 1120, 1600), window=14, recipe='tsb'),
    img_in_indices=(1, 2, 3),                  # strides 8 / 16 / 32 of the PIIP pyramid
    img_neck=dict(type='mmdet.FPN', in_channels=[768] * 3, out_channels=img_channels,
                  start_level=1, num_outs=2))   # outputs at strides 16 / 32; index 0 is used
optim_wrapper = dict(constructor='PIIPLayerDecayOptimizerConstructor',
                     paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.85,
                                        skip_stride=[1, 1], backbone_name='img_backbone'))
