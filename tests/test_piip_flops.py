"""Backbone FLOPs under the PIIP paper's convention (piip_det.flops, tools/analysis_tools/get_flops.py).

Every count runs on the meta device (no weight is allocated). Checks: the
README numbers within 2% for the ViT-B, ViT-L, PIIP-TSB and PIIP-SBL rows; the
paper-convention counter against the reference's analytic MAC model
(piip.md 11.2) on a tiny PIIP and on PIIP-H6B; the as-built counter against a
brute-force FlopCounterMode run of the real model on real CPU tensors; the CLI
on tiny configs.
"""
import pytest
import torch

from piip_det.flops import build_backbone, count_backbone
from piip_det.flops_table import TOLERANCE, VARIANTS
from piip_det.models.backbones.vit import ARCHS

CHECKED = [v for v in VARIANTS if v.checked]


def test_the_acceptance_rows_are_all_there():
    names = ' '.join(v.name for v in CHECKED)
    assert len(CHECKED) == 11 and all(v.paper for v in CHECKED)
    assert names.count('PIIP-TSB') == 4 and names.count('PIIP-SBL') == 5   # 3 + 1, 3 + 2 ImageNet
    assert 'ViT-B' in names and 'ViT-L' in names


@pytest.mark.parametrize('variant', CHECKED, ids=[v.name.split(' (')[0] for v in CHECKED])
def test_paper_rows_within_2_percent(variant):
    model = build_backbone(variant.backbone)
    assert all(p.is_meta for p in model.parameters())          # nothing allocated
    report = count_backbone(model, (variant.size, variant.size), as_built=False)
    assert report.paper_total / 1e9 == pytest.approx(variant.paper, rel=TOLERANCE)


# ----------------------------------------------------------------------------- analytic model
def _dims(cfg):
    arch = ARCHS.get(cfg.get('arch'), {})
    return {k: cfg.get(k, arch.get(k)) for k in ('embed_dim', 'depth')}


def analytic_paper_macs(backbone, size, heads=16, points=4):
    """piip.md 11.2, written out independently of the counter (no norms / biases)."""
    branches = backbone['branches']
    d = [_dims(b)['embed_dim'] for b in branches]
    n = [(b['real_size'] * size // max(x['real_size'] for x in branches) // 16) ** 2
         for b in branches]
    total = 0
    for b, dj, nj in zip(branches, d, n):
        depth, ws = _dims(b)['depth'], (b.get('window_size', 14) if b.get('window_attn') else 0)
        attn = 2 * nj * ws * ws * dj if ws else 2 * nj * nj * dj
        total += 768 * nj * dj + depth * (12 * nj * dj * dj + attn)

    def injector(n_q, d_q, n_kv, d_feat):
        hidden, value = int(d_q * 0.25), int(d_q * 0.5)
        return (n_kv * d_feat * value + n_q * d_q * heads * points * 2 + n_q * d_q * heads * points
                + n_q * value * d_q + 2 * n_q * d_q * hidden + 9 * n_q * hidden
                + 5 * n_q * points * d_q)

    stages = len(branches[0]['interaction_indexes'])
    for a in range(len(branches) - 1):
        b = a + 1
        unit = (n[b] * d[b] * d[a] + n[a] * d[a] * d[b]
                + injector(n[a], d[a], n[b], d[a]) + injector(n[b], d[b], n[a], d[b]))
        total += stages * unit
    return total + sum(nj * dj * d[0] for nj, dj in zip(n[1:], d[1:]))


def tiny_backbone():
    """3 branches; branch1's 3x3 grid is padded to its window 2, branch3 is an InternViT block."""
    return dict(type='piip_det.PIIP', deform_num_heads=4, branches=[
        dict(embed_dim=64, depth=2, num_heads=2, real_size=48, pretrain_img_size=64,
             window_attn=True, window_size=2, interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=2, num_heads=2, real_size=64, pretrain_img_size=64,
             window_attn=True, window_size=2, interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=4, num_heads=2, real_size=96, pretrain_img_size=64,
             block_type='internvit', qk_norm=True, interaction_indexes=[[0, 1], [2, 3]])])


def test_paper_counter_matches_the_analytic_model_on_a_tiny_piip():
    cfg = tiny_backbone()
    report = count_backbone(build_backbone(cfg), (96, 96), as_built=False)
    counted = report.paper_total - sum(v for (_, k), v in report.paper.items() if k == 'elementwise')
    assert counted == analytic_paper_macs(cfg, 96, heads=4)


def test_6b_variant_counts_without_weights_and_matches_the_analytic_model():
    variant = next(v for v in VARIANTS if v.name == 'PIIP-H6B 1024/512')
    model = build_backbone(variant.backbone)
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) > 6e9
    report = count_backbone(model, (variant.size, variant.size), as_built=False)
    elementwise = sum(v for (_, k), v in report.paper.items() if k == 'elementwise')
    assert report.paper_total - elementwise == analytic_paper_macs(variant.backbone, variant.size)


# ----------------------------------------------------------------------------- brute force
def test_as_built_counter_equals_a_brute_force_run_on_real_tensors():
    """Real weights, a real CPU forward (grid_sample sampling), FlopCounterMode over every op
    (SDPA's math backend, so the attention matmuls are visible to it)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from piip_det.registry import MODELS
    cfg = tiny_backbone()
    report = count_backbone(build_backbone(cfg), (96, 96))
    torch.manual_seed(0)
    real = MODELS.build(cfg).eval()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        real(torch.randn(1, 3, 96, 96))
    brute = counter.get_total_flops() // 2
    assert report.as_built - report.as_built_sampling == brute
    assert report.as_built_sampling > 0
    # the paper convention drops the padded window tokens and the merges / FPN; on this
    # model the only other difference is the padding of branch1 (3x3 grid -> 4x4, window 2)
    padded, unpadded, d = 16, 9, 64
    padding = 2 * (padded - unpadded) * d * 3 * d + 2 * 2 * (padded - unpadded) * 2 * 2 * d
    paper_matmuls = sum(v for (g, k), v in report.paper.items()
                        if k in ('linear', 'conv', 'attention') and g != 'merge')
    assert brute - report.as_built_outputs - paper_matmuls == padding


# ----------------------------------------------------------------------------- CLI
def _cli():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / 'tools' / 'analysis_tools' / 'get_flops.py'
    spec = importlib.util.spec_from_file_location('get_flops_cli', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_cli_on_a_backbone_only_config(tmp_path, capsys):
    main = _cli()
    config = _write(tmp_path / 'tiny_backbone.py', f'backbone = {tiny_backbone()!r}\n')
    report = main([config])
    out = capsys.readouterr().out
    assert 'MACs' in out and 'square input at the top resolution' in out and 'backbone only' in out
    assert 'input: 1x3x96x96' in out
    assert 'backbone GFLOPs (paper convention, GMACs)' in out and 'backbone parameters' in out
    assert report.paper_total == count_backbone(build_backbone(tiny_backbone()), (96, 96),
                                                as_built=False).paper_total
    main([config, '--shape', '96', '64', '--cfg-options', 'backbone.deform_num_heads=2'])
    assert 'NOT square' in capsys.readouterr().out


def test_cli_on_a_tiny_mask_rcnn_config(tmp_path, capsys):
    main = _cli()
    backbone = tiny_backbone()
    config = _write(tmp_path / 'tiny_mask_rcnn.py', f"""
default_scope = 'mmdet'
model = dict(
    type='MaskRCNN', train_cfg=None,
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
    backbone={backbone!r},
    neck=dict(type='FPN', in_channels=[64] * 4, out_channels=32, num_outs=5),
    rpn_head=dict(type='RPNHead', in_channels=32, feat_channels=32,
                  anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                        strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=32, featmap_strides=[4, 8, 16, 32],
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=32, fc_out_channels=64, num_classes=3),
        mask_roi_extractor=dict(type='SingleRoIExtractor', out_channels=32, featmap_strides=[4, 8, 16, 32],
                                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)),
        mask_head=dict(type='FCNMaskHead', num_convs=2, in_channels=32, conv_out_channels=32,
                       num_classes=3)),
    test_cfg=dict(rpn=dict(max_per_img=50), rcnn=dict(max_per_img=10)))
""")
    report = main([config])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith('full model GMACs as built'))
    assert 'counted: backbone, neck, rpn_head, roi_head.bbox_head (50 RoIs), ' \
           'roi_head.mask_head (10 RoIs)' in line
    assert 'not counted:' not in out
    full = float(line.split(': ')[1].split(' ')[0]) * 1e9
    assert full > report.as_built > report.paper_total
    assert 'full model parameters' in out
