# Runtime shared by every HoloDrive Suite config.
default_scope = 'holodrive'
custom_imports = dict(imports=['holodrive.registry', 'holodrive.engine', 'holodrive.datasets',
                               'holodrive.models', 'piip_det.registry', 'piip_det.optim'],
                      allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # every epoch; keeps the last 3; files are written atomically (holodrive.compat)
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='Det3DVisualizationHook'))
# Bit-exact resume after a kill: re-seed every step from (seed, step).
custom_hooks = [dict(type='StepSeedHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))  # tools/train.py switches to gloo on CPU

randomness = dict(seed=0, deterministic=False)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
