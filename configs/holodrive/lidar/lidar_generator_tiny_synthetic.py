# A tiny layout-conditioned masked-token LiDAR generator (MaskGIT) on the synthetic world:
#   python tools/train.py configs/holodrive/lidar/lidar_generator_tiny_synthetic.py \
#       --cfg-options data_root=DIR/ model.tokenizer_checkpoint=TOKENIZER.pth
# layout (6 map layers + 4 box groups, 128 x 128 at 0.8 m, the tokenizer's grid) -> adapter
# (stride 4, zero-initialised per layer) + 32 x 32 tokens of the frozen tiny tokenizer
# -> 4-layer bidirectional transformer (width 128) -> codebook logits. Sampling: 12 steps.
# Full size: lidar_generator_nus.py. Docs: docs/lidar_gen.md.
_base_ = ['./lidar_tokenizer_tiny_synthetic.py']

tokenizer = {{_base_.model}}
map_layers = ['drivable_area', 'lane', 'ped_crossing', 'walkway', 'lane_divider',
              'road_divider']
bev_raster = dict(x_range=(-51.2, 51.2), y_range=(-51.2, 51.2), resolution=0.8)

model = dict(
    _delete_=True,
    type='LiDARGenerator',
    data_preprocessor=dict(type='SceneDataPreprocessor'),
    tokenizer=tokenizer,
    tokenizer_checkpoint=None,          # set to the trained tokenizer's epoch_N.pth
    transformer=dict(type='BEVTokenTransformer', embed_dim=128, depth=4, num_heads=4,
                     mlp_ratio=4.0, dropout=0.0, layout_channels=len(map_layers) + 4,
                     layout_stride=4),
    layout_keys=('map_bev', 'box_bev'),
    condition_dropout=0.1, num_steps=12, temperature=1.0, guidance_scale=1.0,
    blank_logit_offset=0.0, label_smoothing=0.1, seed=0)

train_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5,
         flip_ratio_bev_vertical=0.0),
    dict(type='PointsRangeFilter', point_cloud_range={{_base_.point_cloud_range}}),
    dict(type='RasterizeMapBEV', layers=map_layers, **bev_raster),
    dict(type='RasterizeBoxBEV', **bev_raster),
    dict(type='PackSceneInputs', keys=['points', 'map_bev', 'box_bev'])
]
test_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='PointsRangeFilter', point_cloud_range={{_base_.point_cloud_range}}),
    dict(type='RasterizeMapBEV', layers=map_layers, **bev_raster),
    dict(type='RasterizeBoxBEV', **bev_raster),
    dict(type='PackSceneInputs', keys=['points', 'map_bev', 'box_bev'])
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 12
lr = 1e-3
optim_wrapper = dict(optimizer=dict(lr=lr, weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 0.02, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
