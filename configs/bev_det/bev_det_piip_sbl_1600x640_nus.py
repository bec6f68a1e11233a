# PIIP-SBL camera BEV detector on nuScenes: DeiT III-L @640, DeiT III-B @960, DeiT III-S @1600
# (1600 x 640 input), L interacting every 2 blocks, window attention 14, the PIIP-SBL
# drop-path recipe; layer-wise lr decay 0.85 over the 24 blocks of branch 1 with skip_stride
# [2, 2] (official rule). Rest as bev_det_piip_tsb_1600x640_nus.py.
_base_ = ['./_base_/bev_det_nus_full.py']
import piip_det.flops_table as variants  # noqa: E402

img_channels = 256
model = dict(
    img_backbone=variants.piip(variants.SBL, (640, 960, 1600), window=14, recipe='sbl'),
    img_in_indices=(1, 2, 3),
    img_neck=dict(type='mmdet.FPN', in_channels=[1024] * 3, out_channels=img_channels,
                  start_level=1, num_outs=2))
optim_wrapper = dict(constructor='PIIPLayerDecayOptimizerConstructor',
                     paramwise_cfg=dict(num_layers=24, layer_decay_rate=0.85,
                                        skip_stride=[2, 2], backbone_name='img_backbone'))
