# The LiDAR tokenizer at the reference's size (OpenDWM VQPointCloud shapes) for nuScenes:
#   python tools/train.py configs/holodrive/lidar/lidar_tokenizer_nus.py \
#       --cfg-options data_root=data/nuscenes/      (after tools/create_data.py nuscenes)
# grid x, y in [-50, 50] m at 0.15625 m, z in [-3, 5] m at 0.125 m -> (64, 640, 640);
# sparse 3D stages (spconv) to (32, 320, 320) x 32 channels -> dense 2D /2 /2 -> 80 x 80 tokens
# (6400, token stride 8) -> 2048 x 1024 EMA codebook -> pixel-shuffle decoder (bias -5).
# Loss weights as the reference (voxel 100, embedding 10). Not trained here (no GPU, no
# nuScenes); built and checked by tests/test_lidar_configs.py. Tiny: *_tiny_synthetic.py.
_base_ = ['./lidar_tokenizer_tiny_synthetic.py']

data_root = 'data/nuscenes/'
point_cloud_range = [-50.0, -50.0, -3.0, 50.0, 50.0, 5.0]
voxel_size = [0.15625, 0.15625, 0.125]
token_stride = 8
code_dim, num_codes = 1024, 2048

model = dict(
    encoder=dict(point_cloud_range=point_cloud_range, voxel_size=voxel_size,
                 sparse_stages=[dict(channels=16, stride=1, num_blocks=1),
                                dict(channels=32, stride=2, num_blocks=2)],
                 bev_stages=[dict(channels=256, stride=2, num_blocks=2),
                             dict(channels=512, stride=2, num_blocks=2)],
                 out_channels=code_dim),
    quantizer=dict(num_codes=num_codes, code_dim=code_dim),
    decoder=dict(in_channels=code_dim, point_cloud_range=point_cloud_range,
                 voxel_size=voxel_size, token_stride=token_stride, channels=512,
                 num_blocks=3))

train_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSweepsChecked', sweeps_num=1, use_dim=[0, 1, 2, 3, 4],
         pad_empty_sweeps=True, remove_close=True),
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
train_dataloader = dict(batch_size=4, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 40
lr = 4e-4
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                     optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 0.01, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
