# A tiny multi-view camera generator (latent diffusion) for CPU on the synthetic world:
#   python tools/create_data.py captions --root-path DIR          (caption tokenizer, once)
#   python tools/train.py configs/holodrive/camera/camera_vae_tiny_synthetic.py \
#       --work-dir work_dirs/cam_vae --cfg-options data_root=DIR/
#   python tools/create_data.py latents --config configs/holodrive/camera/camera_gen_tiny_synthetic.py \
#       --vae-checkpoint work_dirs/cam_vae/epoch_2.pth --cfg-options data_root=DIR/   (optional)
#   python tools/train.py configs/holodrive/camera/camera_gen_tiny_synthetic.py \
#       --cfg-options data_root=DIR/ model.vae_checkpoint=work_dirs/cam_vae/epoch_2.pth \
#       [model.latent_cache=DIR/camera_latents/train]
# 6 views 256x128 -> frozen tiny VAE -> latents 4 x 16 x 32 -> MultiViewUNet (diffusers
# UNet2DConditionModel 32/64/128 + cross-view attention to the ring neighbours + camera
# embedding + depth branch, 30 LiDAR depth bins of 2 m at the latent stride 8), conditioned on
# the caption (tiny CLIPTextModel on a BPE trained on the world's captions) and the per-camera
# layout (6 map layers + 4 box groups at the image size, T2I-style zero-initialised adapter).
# Full size (SD 2.1 from local directories): camera_gen_sd21_nus.py. Docs: docs/camera_gen.md.
_base_ = ['./camera_vae_tiny_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

data_root = 'data/synthetic/'         # the caption tokenizer lives here (create_data captions)
# latents (z - 2.441) * 0.2147: mean 0, std 1 over the 320 train keyframes of the 20-scene world
# for the tiny VAE of camera_vae_tiny_synthetic.py (2 epochs), as printed by
# `tools/create_data.py latents` (the latent cache; docs/camera_gen.md)
latent_shift, latent_scale = 2.441, 0.2147
latent_factor = 8
depth_bins = (1.0, 61.0, 2.0)         # metres (start, stop, step): 30 bins
map_layers = ['drivable_area', 'lane', 'ped_crossing', 'walkway', 'lane_divider',
              'road_divider']
num_layout_channels = len(map_layers) + 4        # + the 4 box groups of RasterizeBoxBEV
text_dim = 64

model = dict(
    _delete_=True,
    type='MultiViewDiffusion',
    data_preprocessor={{_base_.model.data_preprocessor}},
    vae=dict(type='CameraAutoencoder', vae={{_base_.vae}}, shift_factor=latent_shift,
             scaling_factor=latent_scale),
    vae_checkpoint=None,
    # camera_latents/train of `tools/create_data.py latents` (training skips the frozen encoder;
    # the augmentation below is deterministic), or None to encode every step
    latent_cache=None,
    denoiser=dict(
        type='MultiViewUNet', crossview_heads=4, camera_conditioning=True,
        vae_scale_factor=latent_factor,
        gradient_checkpointing=False,     # True: recompute activations (the full config's)
        unet_config=dict(sample_size=(16, 32), in_channels=4, out_channels=4, layers_per_block=1,
                  block_out_channels=(32, 64, 128),
                  down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D',
                                    'DownBlock2D'),
                  up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
                  cross_attention_dim=text_dim, attention_head_dim=4, norm_num_groups=16),
        depth_net_config=dict(mid_channels=32, context_channels=8, num_depth_bins=30,
                       num_res_blocks=1, aspp_dilations=(2, 4, 6))),
    layout_adapter=dict(type='LayoutAdapter', in_channels=num_layout_channels, channels=32,
                        num_res_blocks=1, norm_groups=16),
    num_map_channels=len(map_layers),
    text_encoder=dict(type='CaptionEncoder', tokenizer=data_root + 'caption_tokenizer',
                      max_length=48,
                      text_model=dict(hidden_size=text_dim, intermediate_size=4 * text_dim,
                                      num_hidden_layers=2, num_attention_heads=2)),
    scheduler=dict(num_train_timesteps=1000, beta_schedule='scaled_linear',
                   beta_start=0.00085, beta_end=0.012, prediction_type='epsilon'),
    condition_dropout=dict(text=0.1, boxes=0.1, map=0.1, camera=0.1),
    depth_loss=dict(type='DepthLoss', loss_weight=0.1, stride=latent_factor))

input_modality = dict(use_lidar=True, use_camera=True)   # LiDAR only for the depth targets
bev_raster = dict(x_range=(-51.2, 51.2), y_range=(-51.2, 51.2), resolution=0.4)
train_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=True),
    dict(type='MultiViewImageAug', final_size={{_base_.final_size}},
         resize_range=({{_base_.resize}}, {{_base_.resize}})),
    dict(type='RasterizeMapBEV', layers=map_layers, **bev_raster),
    dict(type='ProjectLayoutToCameras', scale=1.0),
    dict(type='ProjectLidarDepth', strides=(latent_factor,), depth_bins=depth_bins),
    dict(type='GenerateCaption'),
    dict(type='PackSceneInputs', keys=['img', 'layout_images', f'depth_bins_s{latent_factor}',
                                       f'depth_valid_s{latent_factor}'])
]
# the conditions of a keyframe for tools/generate.py (the train dataset with this pipeline):
# deterministic augmentation, no depth targets
generate_pipeline = [dict(t, test_mode=True) if t['type'] == 'MultiViewImageAug' else t
                 for t in train_pipeline if t['type'] != 'ProjectLidarDepth'][:-1] + [
    dict(type='PackSceneInputs', keys=['img', 'layout_images'])]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline,
                                                   modality=input_modality))
# tools/test.py: sample every val keyframe and score it (CameraGenMetric: FID / KID with the
# seeded InceptionV3 file, multi-view consistency, depth AbsRel); no validation while training
test_pipeline = [dict(t, test_mode=True) if t['type'] == 'MultiViewImageAug' else t
                 for t in train_pipeline][:-1] + [
    dict(type='PackSceneInputs', keys=['img', 'layout_images', f'depth_s{latent_factor}',
                                       f'depth_valid_s{latent_factor}'])]
test_dataloader = dict(batch_size=1, num_workers=1, persistent_workers=False,
                       dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_evaluator = dict(_delete_=True, type='CameraGenMetric', split='val',
                      crop='resize 0.8 + bottom crop of the 320x180 views')
test_cfg = dict()
val_dataloader = None
val_evaluator = None
val_cfg = None
model.update(depth_bins=depth_bins,
             sample_cfg=dict(scheduler='dpm', steps=10, guidance_scale=1.0, seed=0,
                             depth_timestep=100))

max_epochs = 3
lr = 5e-4
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=100, weight_decay=1e-2, max_norm=1.0, eta_ratio=0.05)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs + 1)
# EMA of the weights (checkpoints store the EMA as state_dict, so tools/test.py and
# generate.py sample with it). Momentum max(0.01, 100 / (100 + step)): it follows the weights
# early and averages ~the last 100 steps late. (A fixed 0.001 kept 0.999^960 = 38% of the
# random initialisation after the 960 steps of this schedule.)
custom_hooks = [dict(type='StepSeedHook'),
                dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=0.01, gamma=100,
                     update_buffers=True, priority=49)]
