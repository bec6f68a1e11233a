# A tiny LiDAR tokenizer (VQ-VAE) that trains on CPU on the synthetic world:
#   python tools/train.py configs/holodrive/lidar/lidar_tokenizer_tiny_synthetic.py \
#       --cfg-options data_root=DIR/        (a world written by tools/create_data.py synthetic)
# sweep -> occupancy 16 x 128 x 128 (0.8 m, z -3..5 m at 0.5 m) -> sparse 3D stages (spconv)
# -> dense BEV /2 -> 2D stage /2 -> 32 x 32 tokens (3.2 m) -> 512-code EMA quantizer
# -> pixel-shuffle decoder -> occupancy logits; predict() casts the HDL-32E beams through the
# reconstruction (scan-like sweep). Full size: lidar_tokenizer_nus.py. Docs: docs/lidar_gen.md.
_base_ = ['../../_base_/datasets/synthetic_nus_lidar.py', '../../_base_/default_runtime.py']

point_cloud_range = [-51.2, -51.2, -3.0, 51.2, 51.2, 5.0]
voxel_size = [0.8, 0.8, 0.5]          # grid (Z, H, W) = (16, 128, 128)
token_stride = 4                      # tokens 32 x 32
code_dim, num_codes = 64, 512

model = dict(
    type='LiDARTokenizer',
    data_preprocessor=dict(type='SceneDataPreprocessor'),
    encoder=dict(
        type='SparseBEVEncoder', point_cloud_range=point_cloud_range, voxel_size=voxel_size,
        sparse_stages=[dict(channels=16, stride=1, num_blocks=1),
                       dict(channels=32, stride=2, num_blocks=1)],
        bev_stages=[dict(channels=128, stride=2, num_blocks=2)],
        out_channels=code_dim),
    quantizer=dict(type='VectorQuantizer', num_codes=num_codes, code_dim=code_dim, beta=0.25,
                   ema_decay=0.99, dead_code_threshold=0.03),
    decoder=dict(type='OccupancyDecoder', in_channels=code_dim,
                 point_cloud_range=point_cloud_range, voxel_size=voxel_size,
                 token_stride=token_stride, channels=128, num_blocks=2, with_intensity=True,
                 occupancy_bias_init=-5.0),
    scan=dict(elevations='hdl32e', azimuth_steps=1084, min_range=1.0, max_range=70.0),
    occupancy_loss_weight=100.0, vq_loss_weight=10.0, intensity_loss_weight=1.0,
    intensity_scale=255.0)

input_modality = dict(use_lidar=True, use_camera=False)
train_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5,
         flip_ratio_bev_vertical=0.0),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackSceneInputs', keys=['points'])
]
test_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PackSceneInputs', keys=['points'])
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline, filter_empty_gt=False,
                                                   modality=input_modality))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='LiDARGenMetric')
test_evaluator = val_evaluator

max_epochs = 8
lr = 2e-3
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 0.02, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
