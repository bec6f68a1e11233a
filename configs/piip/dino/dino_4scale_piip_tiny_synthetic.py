# A tiny DINO 4-scale on a 2-branch PIIP ('dino' outputs, strides 8/16/32) that trains on CPU
# on the synthetic world's COCO export (--cfg-options data_root=DIR/); evaluated with
# CocoMetric (bbox). Same parts and recipe as the full config; sizes, iterations, lr and
# fp32 differ (see configs/piip/mask_rcnn/mask_rcnn_piip_tiny_synthetic.py).
_base_ = ['../_base_/models/dino_4scale_piip.py', '../_base_/datasets/synthetic_coco.py',
          '../_base_/schedules/adamw_layer_decay_1x.py', 'mmdet::_base_/default_runtime.py']

# the transformer keeps 256 dims (mmdet's DINO decoder hard-codes 128 sine features per
# box coordinate), with one encoder and one decoder layer
model = dict(
    num_queries=20,
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(deform_num_heads=4, interaction_drop_path_rate=0.1, branches=[
        dict(embed_dim=64, depth=2, num_heads=2, real_size=128, pretrain_img_size=64,
             drop_path_rate=0.1, interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=2, num_heads=2, real_size=256, pretrain_img_size=64,
             window_attn=[True, False], window_size=8, drop_path_rate=0.05,
             interaction_indexes=[[0, 0], [1, 1]])]),
    neck=dict(in_channels=[64] * 3),
    encoder=dict(num_layers=1, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=64))),
    decoder=dict(num_layers=1, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=64))),
    bbox_head=dict(num_classes=10),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=10)),
    test_cfg=dict(max_per_img=20))
val_evaluator = dict(metric='bbox')
test_evaluator = dict(metric='bbox')

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='PIIPLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=2, layer_decay_rate=0.85, skip_stride=1))
max_iters = 4
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_begin=max_iters + 1)          # evaluation: tools/test.py
param_scheduler = []
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
