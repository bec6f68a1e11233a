# A tiny 2-branch PIIP Mask R-CNN that trains on CPU on the synthetic world's COCO export:
#   python tools/train.py configs/piip/mask_rcnn/mask_rcnn_piip_tiny_synthetic.py \
#       --cfg-options data_root=DIR/        (a world written by tools/create_data.py synthetic)
# Same parts and recipe as the full configs (AdamW + layer decay, PIIP normalisation); sizes,
# iterations, lr (1e-3, no warm-up: 4 iterations) and fp32 (mmengine's AmpOptimWrapper
# needs a GPU) differ. Branches: 64 wide @128 px, 32 wide @256 px (window 8 in its first block).
_base_ = ['../_base_/models/mask_rcnn_piip_fpn.py', '../_base_/datasets/synthetic_coco.py',
          '../_base_/schedules/adamw_layer_decay_1x.py', 'mmdet::_base_/default_runtime.py']

num_classes, width = 10, 32
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(deform_num_heads=4, interaction_drop_path_rate=0.1, branches=[
        dict(embed_dim=64, depth=2, num_heads=2, real_size=128, pretrain_img_size=64,
             drop_path_rate=0.1, interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=2, num_heads=2, real_size=256, pretrain_img_size=64,
             window_attn=[True, False], window_size=8, drop_path_rate=0.05,
             interaction_indexes=[[0, 0], [1, 1]])]),
    neck=dict(in_channels=[64] * 4, out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=64, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(num_convs=1, in_channels=width, conv_out_channels=width,
                       num_classes=num_classes)),
    train_cfg=dict(rpn=dict(sampler=dict(num=64)),
                   rpn_proposal=dict(nms_pre=400, max_per_img=100),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=30)))

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
