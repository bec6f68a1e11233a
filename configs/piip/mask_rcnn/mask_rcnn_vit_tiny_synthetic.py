# The single-branch ViT baseline of the tiny PIIP benchmark
# (tools/analysis_tools/piip_benchmark.py): mask_rcnn_piip_tiny_bench_synthetic.py (same
# detector, neck, heads, data, schedule, seed) with the PIIP replaced by its largest branch
# (96 wide, 2 blocks, 3 heads) at the top resolution (256), as the paper's ViT baselines:
# window 8 then global attention (its 2-window + 1-global pattern cut to 2 blocks), simple FPN
# on the stride-16 map (piip_det.ViTBaseline), layer decay 0.95 (the paper's baseline rate;
# PIIP 0.85). Backbone 0.0914 GMACs (paper convention, 256 x 256).
_base_ = ['./mask_rcnn_piip_tiny_bench_synthetic.py']

model = dict(backbone=dict(
    _delete_=True, type='piip_det.ViTBaseline', embed_dim=96, depth=2, num_heads=3,
    pretrain_img_size=64, window_attn=[True, False], window_size=8, drop_path_rate=0.1,
    real_size=256))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=2, layer_decay_rate=0.95))
