# UperNet on PIIP-H6B 512/512, 80k iterations on ADE20K (README: 59.85 mIoU; official
# mmsegmentation/configs/piip/2branch/upernet_internvit_h6b_512_512_80k_ade20k_bs16_lr4e-5.py):
# InternViT-6B @512 and MAE ViT-H @512, global attention, the speed-up interactions
# (no projections, no norms), drop path 0.4 ramped over depth and activation checkpointing
# in both branches; UperNet 1536 channels on the 4 maps of width 3200, FCN auxiliary head;
# 512 x 512 crops, sliding-window test (stride 341); layer decay 0.95 over 48 layers
# (ViT-H at stride 48/32).
_base_ = ['../_base_/models/upernet_piip.py', 'mmseg::_base_/datasets/ade20k.py',
          '../_base_/schedules/adamw_layer_decay_poly_80k.py', 'mmseg::_base_/default_runtime.py']
import piip_det.flops_table as variants  # noqa: E402

_h6b = variants.piip(variants.H6B, (512, 512))
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(_h6b, interaction_proj=False, interaction_norm='none', branches=[
        dict(b, drop_path_rate=0.4, drop_path_schedule='linear', with_cp=True)
        for b in _h6b['branches']]),
    decode_head=dict(in_channels=[3200] * 4, channels=1536),
    auxiliary_head=dict(in_channels=3200, channels=1536),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
del _h6b
optim_wrapper = dict(paramwise_cfg=dict(num_layers=48, layer_decay_rate=0.95,
                                        skip_stride=[48 / 32]))
train_dataloader = dict(batch_size=2)
