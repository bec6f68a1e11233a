# A tiny camera autoencoder (diffusers AutoencoderKL, trained from scratch) for CPU on the
# synthetic world:
#   python tools/train.py configs/holodrive/camera/camera_vae_tiny_synthetic.py \
#       --cfg-options data_root=DIR/        (a world written by tools/create_data.py synthetic)
# 6 views 320x180 -> resize 0.8 + bottom crop -> 256x128 in [-1, 1] -> AutoencoderKL
# (blocks 16/32/64/128, factor 8; 2 random views of each sample per step)
# -> latents 4 x 16 x 32 per view (x scaling_factor).
# The camera detector (configs/bev_det/) sees the same 256x128 crop, so generated views feed
# it unchanged. Full size (SD 2.1 VAE from a local directory): camera_vae_sd21.py.
# Docs: docs/camera_gen.md.
_base_ = ['../../_base_/datasets/synthetic_nus_lidar.py', '../../_base_/default_runtime.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

final_size = (256, 128)               # (W, H) of every view, multiples of the latent factor 8
resize = 0.8                          # 320x180 -> 256x144, bottom crop -> 256x128
vae = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
    block_out_channels=(16, 32, 64, 128),
    down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4,
    mid_block_add_attention=False, sample_size=256, scaling_factor=1.0)

model = dict(
    type='CameraAutoencoder',
    # uint8 BGR -> RGB in [-1, 1]
    data_preprocessor=dict(type='SceneDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3,
                           bgr_to_rgb=True),
    vae=vae, kl_weight=1e-6, rec_loss='l1', sample_posterior=True, train_views=2)

input_modality = dict(use_lidar=False, use_camera=True)
train_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='MultiViewImageAug', final_size=final_size, resize_range=(resize, resize)),
    dict(type='PackSceneInputs', keys=['img'])
]
test_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='MultiViewImageAug', final_size=final_size, resize_range=(resize, resize),
         test_mode=True),
    dict(type='PackSceneInputs', keys=['img'])
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline, filter_empty_gt=False,
                                                   modality=input_modality))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CameraReconMetric')
test_evaluator = val_evaluator

max_epochs = 2                         # 640 steps: ~12 CPU-min, so VAE + denoiser fit 45 CPU-min
lr = 1e-3
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=50, weight_decay=1e-4, max_norm=1.0, eta_ratio=0.05)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
