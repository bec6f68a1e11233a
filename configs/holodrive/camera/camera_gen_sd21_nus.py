# The full-size camera generator: Stable Diffusion 2.1 (VAE, UNet, CLIP text encoder and
# tokenizer) loaded from a local directory in diffusers' layout, extended for six views, on
# nuScenes at 448x256 (OpenDWM's CTSD resolution). Nothing is downloaded: put the SD 2.1 folder
# (vae/, unet/, text_encoder/, tokenizer/) at `sd_dir` below, or override the paths
# (model.vae.pretrained, model.denoiser.pretrained, model.text_encoder.pretrained and
# model.text_encoder.tokenizer):
#   python tools/create_data.py nuscenes --root-path data/nuscenes
#   python tools/train.py configs/holodrive/camera/camera_gen_sd21_nus.py \
#       --cfg-options data_root=data/nuscenes/
# 1600x900 -> resize 0.285 + bottom crop -> 448x256 -> SD VAE (factor 8) -> 4 x 32 x 56 latents
# -> SD 2.1 UNet (320/640/1280/1280, cross-attention 1024) + cross-view attention, camera
# embedding, layout adapter (5 residuals 320/320/640/1280/1280) and a depth branch on the 3840
# channels of the 5 injection points (OpenDWM's DepthNet input). Docs: docs/camera_gen.md.
_base_ = ['./camera_gen_tiny_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

data_root = 'data/nuscenes/'
sd_dir = 'data/pretrained/stable-diffusion-2-1/'
final_size = (448, 256)
resize = 0.285
latent_factor = 8
depth_bins = (1.0, 61.0, 2.0)         # metres: 30 bins
map_layers = ['drivable_area', 'lane', 'ped_crossing', 'walkway', 'lane_divider',
              'road_divider']
bev_raster = dict(x_range=(-51.2, 51.2), y_range=(-51.2, 51.2), resolution=0.25)

model = dict(
    vae=dict(_delete_=True, type='CameraAutoencoder', pretrained=sd_dir, subfolder='vae'),
    denoiser=dict(
        _delete_=True, type='MultiViewUNet', pretrained=sd_dir, subfolder='unet',
        crossview_heads=8, camera_conditioning=True, vae_scale_factor=latent_factor,
        gradient_checkpointing=True,          # SD-2.1 UNet x 6 views: activations dominate
        depth_net_config=dict(mid_channels=256, context_channels=64, num_depth_bins=30,
                              num_res_blocks=3, aspp_dilations=(6, 12, 18))),
    layout_adapter=dict(channels=320, num_res_blocks=2, norm_groups=32),
    text_encoder=dict(_delete_=True, type='CaptionEncoder', tokenizer=sd_dir,
                      tokenizer_subfolder='tokenizer', pretrained=sd_dir,
                      subfolder='text_encoder', max_length=77, trainable=False),
    scheduler=dict(prediction_type='v_prediction'),       # SD 2.1 (768) is a v-model
    condition_dropout=dict(text=0.2, boxes=0.2, map=0.2, camera=0.1))

_aug = dict(type='MultiViewImageAug', final_size=final_size, resize_range=(resize, resize))
train_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=True),
    _aug,
    dict(type='RasterizeMapBEV', layers=map_layers, **bev_raster),
    dict(type='ProjectLayoutToCameras', scale=1.0),
    dict(type='ProjectLidarDepth', strides=(latent_factor,), depth_bins=depth_bins),
    dict(type='GenerateCaption'),
    dict(type='PackSceneInputs', keys=['img', 'layout_images', f'depth_bins_s{latent_factor}',
                                       f'depth_valid_s{latent_factor}'])
]
generate_pipeline = [dict(t, test_mode=True) if t['type'] == 'MultiViewImageAug' else t
                     for t in train_pipeline if t['type'] != 'ProjectLidarDepth'][:-1] + [
    dict(type='PackSceneInputs', keys=['img', 'layout_images'])]
train_dataloader = dict(batch_size=1, num_workers=4,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))

max_epochs = 12
lr = 4e-5
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=1000, weight_decay=1e-2, max_norm=1.0, eta_ratio=0.1)
# bf16 autocast (no loss scale); on a CPU-only machine tools/train.py swaps in the CPU
# autocast wrapper (holodrive/engine/optim_wrappers.py)
optim_wrapper.update(type='AmpOptimWrapper', dtype='bfloat16')
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs + 1)
