# The official PIIP detection recipe (piip.md section 8): AdamW lr 1e-4, betas (0.9, 0.999),
# weight decay 0.05, layer-wise lr decay (PIIPLayerDecayOptimizerConstructor; a config sets
# num_layers = depth of branch1, layer_decay_rate 0.85 for PIIP / 0.95 for the baselines,
# skip_stride), no gradient clipping, 12 epochs with steps at 8 and 11 after a 500-iteration
# linear warm-up at 0.001 (mmdet's schedule_1x), batch 16 (8 GPUs x 2), bf16 autocast
# (the official runs cast the backbone to bf16 under DeepSpeed ZeRO-1 instead; the
# deformable attention runs in fp32 either way).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='PIIPLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.85, skip_stride=1))
auto_scale_lr = dict(enable=False, base_batch_size=16)
