# Single-branch baseline of bev_det_piip_tiny_synthetic.py: the same detector with a plain ViT
# (piip_det.ViTBaseline, simple FPN outputs) of about the same backbone FLOPs at 128x256:
#   PIIP (64 wide @128 + 32 wide @256, depth 2): 0.0159 GMACs (paper convention), 0.037 as built
#   ViT  (48 wide, depth 2, 2 heads, @256):      0.0150 GMACs (paper convention), 0.022 as built
# (piip_det.flops.count_backbone(build_backbone(cfg.img_backbone), (1, 3, 128, 256));
#  docs/bev_det.md). Everything else is inherited.
_base_ = ['./bev_det_piip_tiny_synthetic.py']

vit_width = 48
model = dict(
    img_backbone=dict(_delete_=True, type='piip_det.ViTBaseline', embed_dim=vit_width, depth=2,
                      num_heads=2, pretrain_img_size=64, drop_path_rate=0.1,
                      output_mode='simple_fpn', real_size=256),
    img_neck=dict(in_channels=[vit_width, vit_width]))
