# The masked-token LiDAR generator at the reference's size (OpenDWM
# BidirectionalTransformerWithAdapter: 24 layers, width 1280, 40 heads; layout 3D-box + HD-map
# BEV rasters through a per-layer adapter) on the full tokenizer's 80 x 80 tokens:
#   python tools/train.py configs/holodrive/lidar/lidar_generator_nus.py \
#       --cfg-options data_root=data/nuscenes/ model.tokenizer_checkpoint=TOKENIZER.pth
# Single-frame (the reference interleaves temporal attention; not built yet). Not trained here.
_base_ = ['./lidar_generator_tiny_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

data_root = 'data/nuscenes/'
point_cloud_range = [-50.0, -50.0, -3.0, 50.0, 50.0, 5.0]
bev_raster = dict(x_range=(-50.0, 50.0), y_range=(-50.0, 50.0), resolution=0.625)  # 160 x 160

model = dict(
    tokenizer=config_utils.model_of('{{ fileDirname }}/lidar_tokenizer_nus.py'),
    transformer=dict(embed_dim=1280, depth=24, num_heads=40, layout_stride=2),
    num_steps=50)

train_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5,
         flip_ratio_bev_vertical=0.0),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='RasterizeMapBEV', layers={{_base_.map_layers}}, **bev_raster),
    dict(type='RasterizeBoxBEV', **bev_raster),
    dict(type='PackSceneInputs', keys=['points', 'map_bev', 'box_bev'])
]
test_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='RasterizeMapBEV', layers={{_base_.map_layers}}, **bev_raster),
    dict(type='RasterizeBoxBEV', **bev_raster),
    dict(type='PackSceneInputs', keys=['points', 'map_bev', 'box_bev'])
]
train_dataloader = dict(batch_size=4, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 40
lr = 3e-4
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                     optimizer=dict(lr=lr, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 0.01, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
