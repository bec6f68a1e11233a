# The official PIIP ADE20K recipe (mmsegmentation/configs/piip/2branch/upernet_internvit_h6b_*):
# AdamW lr 4e-5, betas (0.9, 0.999), weight decay 0.05, layer-wise lr decay 0.95
# (PIIPLayerDecayOptimizerConstructor; a config sets num_layers / skip_stride), 80k iterations
# of poly decay (power 1, to 0) with a 1500-iteration linear warm-up from 1e-6 (the two
# factors multiply, as mmcv 1.x's warm-up did), batch 16 (8 GPUs x 2), bf16 autocast
# (official: bf16 backbone under DeepSpeed ZeRO-1).
_base_ = ['mmseg::_base_/schedules/schedule_80k.py']
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=4e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='PIIPLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.95, skip_stride=1))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=0, end=80000)]
