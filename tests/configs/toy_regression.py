# Toy config for testing train.py / dist_train.sh machinery (see tests/toy_modules.py).
_base_ = ['../../configs/_base_/default_runtime.py']
custom_imports = dict(imports=['holodrive.registry', 'holodrive.engine', 'tests.toy_modules'],
                      allow_failed_imports=False)
model = dict(type='ToyRegressor', hidden=8)
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ToyRegressionDataset', num=16))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
train_cfg = dict(by_epoch=True, max_epochs=3)
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
