# Single-branch baseline of bev_det_piip_tiny_512x256_synthetic.py: the same teacher-forced
# detector at 512x256 input (a 640x360 world) with a plain ViT (piip_det.ViTBaseline, simple
# FPN outputs) of about the same backbone FLOPs at 256x512:
#   PIIP (64 wide @256 + 32 wide @512 with windows, depth 2): 0.0791 GMACs (paper), 0.165 as built
#   ViT  (48 wide @512, depth 2, 2 heads, first block in 8x8 windows as PIIP's 512 branch):
#                                                            0.0757 GMACs (paper), 0.104 as built
# (piip_det.flops.count_backbone(build_backbone(cfg.img_backbone), (1, 3, 256, 512));
#  docs/bev_det.md). Everything else is inherited.
_base_ = ['./bev_det_piip_tiny_512x256_synthetic.py']

vit_width = 48
model = dict(
    img_backbone=dict(_delete_=True, type='piip_det.ViTBaseline', embed_dim=vit_width, depth=2,
                      num_heads=2, pretrain_img_size=64, drop_path_rate=0.1,
                      window_attn=[True, False], window_size=8,
                      output_mode='simple_fpn', real_size=512),
    img_neck=dict(in_channels=[vit_width, vit_width]))
