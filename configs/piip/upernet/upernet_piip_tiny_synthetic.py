# A tiny 2-branch PIIP UperNet that trains on CPU on the synthetic world's ADE20K-layout
# export (--cfg-options data_root=DIR/); evaluated with IoUMetric (mIoU). Same parts and
# recipe as the full configs (AdamW + layer decay); sizes, iterations, lr (3e-3, no warm-up),
# BatchNorm instead of SyncBN and fp32 differ.
_base_ = ['../_base_/models/upernet_piip.py', '../_base_/datasets/synthetic_ade.py',
          '../_base_/schedules/adamw_layer_decay_poly_80k.py', 'mmseg::_base_/default_runtime.py']

num_classes = 17
norm_cfg = dict(type='BN')
model = dict(
    data_preprocessor=dict(size_divisor=32, test_cfg=dict(size_divisor=32)),
    backbone=dict(deform_num_heads=4, interaction_drop_path_rate=0.1, branches=[
        dict(embed_dim=64, depth=2, num_heads=2, real_size=128, pretrain_img_size=64,
             drop_path_rate=0.1, interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=2, num_heads=2, real_size=256, pretrain_img_size=64,
             window_attn=[True, False], window_size=8, drop_path_rate=0.05,
             interaction_indexes=[[0, 0], [1, 1]])]),
    decode_head=dict(in_channels=[64] * 4, channels=32, pool_scales=(1, 2, 3),
                     num_classes=num_classes, norm_cfg=dict(_delete_=True, **norm_cfg)),
    auxiliary_head=dict(in_channels=64, channels=16, num_classes=num_classes,
                        norm_cfg=dict(_delete_=True, **norm_cfg)),
    test_cfg=dict(mode='whole'))

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='PIIPLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=2, layer_decay_rate=0.85, skip_stride=1))
max_iters = 4
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_begin=max_iters + 1)          # evaluation: tools/test.py
param_scheduler = []
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
