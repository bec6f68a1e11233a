# UperNet on PIIP-TSB 512/384/256 (DeiT III-B @256, DeiT III-S @384, DeiT-T @512), 80k
# iterations on ADE20K. Not an official config (the PIIP repo releases ADE20K configs for
# InternViT-6B / PIIP-H6B only): the branches and drop paths of the COCO PIIP-TSB with
# global attention (the grids are at most 32 x 32), the ADE20K recipe of PIIP-H6B (AdamW
# lr 4e-5, layer decay 0.95, poly 80k, 512 crops, sliding test), layer decay over 12 layers;
# UperNet 768 channels, auxiliary head 256 (mmseg's ViT-B UperNet widths).
_base_ = ['../_base_/models/upernet_piip.py', 'mmseg::_base_/datasets/ade20k.py',
          '../_base_/schedules/adamw_layer_decay_poly_80k.py', 'mmseg::_base_/default_runtime.py']
import piip_det.flops_table as variants  # noqa: E402

model = dict(
    data_preprocessor=dict(size=(512, 512)),
    backbone=variants.piip(variants.TSB, (256, 384, 512), recipe='tsb'),
    decode_head=dict(in_channels=[768] * 4, channels=768),
    auxiliary_head=dict(in_channels=768, channels=256),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.95, skip_stride=[1, 1]))
train_dataloader = dict(batch_size=2)
