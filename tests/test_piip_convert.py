"""Porting official PIIP checkpoints and configs with tools/convert/piip_official.py.

An official checkpoint here is made the way the official code would save one: random weights
under the official names (piip.md section 14; ours plus the documented differences, e.g. the
``fpn1`` a DINO PIIPThreeBranch stores), neck/head tensors beside them, written with
``torch.save({'state_dict': ..., 'meta': ...})``. After conversion our PIIP, built from the
translated config, must load it with zero unmatched keys and give the outputs of
:func:`tests.piip_official_reference.official_forward`, a restatement of the official forward
on the official tensors and keyword arguments, written independently of our modules.
"""
import argparse
import importlib.util
import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from safetensors.torch import load_file

from piip_det.convert import build_target
from piip_det.convert_config import translate_official_config
from piip_det.registry import MODELS
from tests.piip_official_reference import NUM_BRANCHES, official_forward

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    'piip_official', os.path.join(ROOT, 'tools', 'convert', 'piip_official.py'))
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out + out.err


def _stages(depth, stages):
    per = depth // stages
    return [[s * per, s * per + per - 1] for s in range(stages)]


def deit(real, dim, depth=2, stages=2, window=None, pretrained='./pretrained/deit_3_base.pth'):
    """An official vit_models branch (tiny: pretrain grid 4x4, 2 heads)."""
    windows = window if isinstance(window, list) else [window] * depth
    return dict(real_size=real, pretrain_img_size=64, patch_size=16, pretrain_patch_size=16,
                depth=depth, embed_dim=dim, num_heads=2, mlp_ratio=4, qkv_bias=True,
                drop_path_rate=0.05, init_scale=1., with_fpn=False, use_flash_attn=True,
                interaction_indexes=_stages(depth, stages), pretrained=pretrained,
                window_attn=[w is not None for w in windows],
                window_size=[w or -1 for w in windows])


def internvit(real, dim, depth=2, stages=2, six_b=False, **extra):
    """An official InternViT6B branch: InternViT-6B style (RMSNorm, QK-norm) or MAE ViT-H style."""
    return dict(real_size=real, pretrain_img_size=64, patch_size=16, pretrain_patch_size=14,
                depth=depth, embed_dim=dim, num_heads=2, mlp_ratio=4, qkv_bias=not six_b,
                init_values=0.1 if six_b else 1.0, qk_normalization=six_b, with_cp=False,
                norm_layer_type='RMSNorm' if six_b else 'LayerNorm', drop_path_rate=0.1,
                use_flash_attn=True, with_fpn=False, interaction_indexes=_stages(depth, stages),
                pretrained='pretrained/intern_vit_6b.pth' if six_b else 'pretrained/mae_vit_h.pth',
                **extra)


DEFORM = dict(n_points=4, deform_num_heads=4, deform_ratio=0.5, with_cffn=True, cffn_ratio=0.25,
              interact_attn_type='deform', interaction_drop_path_rate=0.4)
CASES = {
    'tsb_mask_rcnn': dict(type='PIIPThreeBranch', **DEFORM, branch1=deit(32, 64, window=2),
                          branch2=deit(48, 32, window=2), branch3=internvit(64, 32, depth=4)),
    'h6b_speedup': dict(type='PIIPTwoBranch', **DEFORM, interaction_proj=False, norm_layer='none',
                        branch1=internvit(32, 64, 4, six_b=True, window_attn=True, window_size=2),
                        branch2=internvit(64, 32)),
    'sbl_dino': dict(type='PIIPThreeBranch', **DEFORM, is_dino=True,
                     branch1=deit(32, 64, 4, window=[2, None, 2, None]), branch2=deit(48, 32),
                     branch3=deit(64, 32, window=[2, None])),
    'tsbl_four_branch': dict(type='PIIPFourBranch', **DEFORM, branch1=deit(32, 64),
                             branch2=deit(48, 32, window=2), branch3=deit(64, 32),
                             branch4=deit(80, 16)),          # built as branch3's ViT (official)
    'regular_fpn': dict(type='PIIPThreeBranch', **DEFORM, with_simple_fpn=False,
                        out_interaction_indexes=[0, 1, 2], branch1=deit(32, 64, 4, 4, window=2),
                        branch2=deit(48, 32, 4, 4), branch3=internvit(64, 32, 4, 4)),
}
NECK = {'neck.lateral_convs.0.conv.weight': torch.randn(8, 64, 1, 1),
        'roi_head.bbox_head.fc_cls.weight': torch.randn(3, 8)}


def official_checkpoint(kw, seed=0):
    """Official-named random tensors for the official kwargs ``kw`` (``backbone.`` prefix)."""
    model = MODELS.build(translate_official_config(kw)[0])
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for name, p in model.state_dict().items():
        if p.dim() >= 2 and not name.endswith('pos_embed'):
            sd[name] = torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel())
        elif name.endswith(('bias', 'pos_embed')):
            sd[name] = 0.3 * torch.randn(p.shape, generator=gen)
        else:                                   # norms, layer scales, gates, merge weights
            sd[name] = torch.empty(p.shape).uniform_(0.5, 1.5, generator=gen)
    if kw.get('is_dino'):        # PIIPThreeBranch builds (and saves) fpn1 in DINO mode too
        d = sd['fpn2.0.weight'].shape[0]
        sd.update({'fpn1.0.weight': torch.randn(d, d, 2, 2), 'fpn1.0.bias': torch.randn(d),
                   'fpn1.1.weight': torch.ones(d), 'fpn1.1.bias': torch.zeros(d),
                   'fpn1.3.weight': torch.randn(d, d, 2, 2), 'fpn1.3.bias': torch.randn(d)})
    return {'backbone.' + k: v for k, v in sd.items()}


def _save_official(path, kw, with_meta_config=False, extra=None):
    sd = {**official_checkpoint(kw), **NECK, **(extra or {})}
    meta = dict(mmdet_version='2.25.3', CLASSES=('car', 'person'), epoch=12)
    if with_meta_config:   # what mmdet 2.x tools/train.py stores: the config text
        meta['config'] = f"model = dict(type='DINO', backbone={kw!r}, neck=dict(type='CM'))"
    torch.save({'state_dict': sd, 'meta': meta}, path)
    return sd


@pytest.mark.parametrize('case', list(CASES))
def test_official_checkpoint_converts_and_gives_the_official_outputs(case, tmp_path, capsys):
    kw = CASES[case]
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.safetensors'
    cfg_py = tmp_path / 'ours.py'
    sd = _save_official(src, kw, with_meta_config=case == 'sbl_dino')
    args = [src, dst]
    if case != 'sbl_dino':      # the DINO case reads its config from the checkpoint meta
        (tmp_path / 'official.json').write_text(json.dumps(kw))
        args += ['--official-config', tmp_path / 'official.json', '--out-config', cfg_py]
    backbone_only = case == 'h6b_speedup'
    rc, out = run_cli(capsys, *args, *(['--backbone-only'] if backbone_only else []))
    assert rc == 0, out
    assert 'all backbone keys match our PIIP' in out
    if case == 'sbl_dino':
        assert "meta['config']" in out and 'dropped 6 (fpn1: the DINO output mode' in out
    if case == 'tsbl_four_branch':
        assert 'branch4 built from branch3' in out

    cfg = Config.fromfile(cfg_py).backbone if cfg_py.exists() else translate_official_config(kw)[0]
    model = MODELS.build(cfg).eval()
    converted = load_file(dst)
    prefix = '' if backbone_only else 'backbone.'
    model.load_state_dict({k[len(prefix):]: v for k, v in converted.items()
                           if k.startswith(prefix)}, strict=True)     # zero unmatched keys
    rest = {k: v for k, v in converted.items() if not k.startswith('backbone.')}
    if backbone_only:
        assert set(converted) == set(model.state_dict())
    else:
        assert set(rest) == set(NECK) and all(torch.equal(rest[k], NECK[k]) for k in NECK)

    top = kw[f'branch{NUM_BRANCHES[kw["type"]]}']
    x = torch.randn(2, 3, top['real_size'], top['real_size'] - 16,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(x)
        ref, used = official_forward(sd, kw, x)
    official_backbone = {k[len('backbone.'):] for k in sd if k.startswith('backbone.')}
    unused = {k for k in official_backbone if kw.get('is_dino') and k.startswith('fpn1.')}
    assert used == official_backbone - unused
    assert [o.shape for o in ours] == [r.shape for r in ref]
    for o, r in zip(ours, ref):
        assert r.abs().max() > 0.1                  # not a trivially small output
        assert (o - r).abs().max() <= 1e-3, (o - r).abs().max()


def test_mismatched_shape_fails_naming_the_key_and_allow_partial_writes_the_rest(tmp_path, capsys):
    kw = CASES['tsb_mask_rcnn']
    (tmp_path / 'official.json').write_text(json.dumps(kw))
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.safetensors'
    bad = 'backbone.branch1.blocks.0.attn.qkv.weight'
    _save_official(src, kw, extra={bad: torch.randn(96, 64),        # should be (192, 64)
                                   'backbone.branch1.blocks.0.attn.q_bias': torch.randn(64)})
    common = [src, dst, '--official-config', tmp_path / 'official.json']
    rc, out = run_cli(capsys, *common)
    assert rc == 1
    assert f'shape mismatch: {bad}: checkpoint (96, 64) vs our model (192, 64)' in out
    assert 'unmatched: backbone.branch1.blocks.0.attn.q_bias' in out
    assert not dst.exists()

    rc, out = run_cli(capsys, *common, '--allow-partial')
    assert rc == 0 and dst.exists(), out
    converted = {k[len('backbone.'):]: v for k, v in load_file(dst).items()
                 if k.startswith('backbone.')}
    model = MODELS.build(translate_official_config(kw)[0])
    result = model.load_state_dict(converted, strict=False)
    assert result.missing_keys == ['branch1.blocks.0.attn.qkv.weight']
    assert not result.unexpected_keys


def test_without_a_config_names_are_checked_against_our_layout(tmp_path, capsys):
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.safetensors'
    _save_official(src, CASES['h6b_speedup'], extra={'backbone.branch1.convnext_model.stem.weight':
                                                     torch.zeros(1)})
    rc, out = run_cli(capsys, src, dst)
    assert rc == 1 and 'target: none' in out
    assert 'unmatched: backbone.branch1.convnext_model.stem.weight: not a name of our PIIP' in out


def _timm_deit(dim, grid, kernel, depth=2):
    sd = {'cls_token': torch.randn(1, 1, dim), 'pos_embed': torch.randn(1, 1 + grid * grid, dim),
          'patch_embed.proj.weight': torch.randn(dim, 3, kernel, kernel),
          'patch_embed.proj.bias': torch.randn(dim), 'norm.weight': torch.randn(dim),
          'norm.bias': torch.randn(dim), 'head.weight': torch.randn(10, dim),
          'head.bias': torch.randn(10)}
    for i in range(depth):     # DeiT v1: no layer scale
        for name, shape in [('norm1', (dim,)), ('attn.qkv', (3 * dim, dim)),
                            ('attn.proj', (dim, dim)), ('norm2', (dim,)),
                            ('mlp.fc1', (4 * dim, dim)), ('mlp.fc2', (dim, 4 * dim))]:
            sd[f'blocks.{i}.{name}.weight'] = torch.randn(shape)
            sd[f'blocks.{i}.{name}.bias'] = torch.randn(shape[:1])
    return sd, 'blocks.1.attn.qkv.weight', 'blocks.1.attn.qkv.weight'


def _hf_internvit(dim, grid, kernel, depth=4):
    sd = {'embeddings.class_embedding': torch.randn(1, 1, dim),
          'embeddings.position_embedding': torch.randn(1, 1 + grid * grid, dim),
          'embeddings.patch_embedding.weight': torch.randn(dim, 3, kernel, kernel),
          'embeddings.patch_embedding.bias': torch.randn(dim)}
    for i in range(depth):     # InternViT-6B: RMSNorm, QK-norm, no qkv bias, bare layer scales
        pre = f'encoder.layers.{i}.'
        shapes = {'norm1.weight': (dim,), 'norm2.weight': (dim,), 'attn.qkv.weight': (3 * dim, dim),
                  'attn.q_norm.weight': (dim,), 'attn.k_norm.weight': (dim,),
                  'attn.proj.weight': (dim, dim), 'attn.proj.bias': (dim,),
                  'mlp.fc1.weight': (4 * dim, dim), 'mlp.fc1.bias': (4 * dim,),
                  'mlp.fc2.weight': (dim, 4 * dim), 'mlp.fc2.bias': (dim,),
                  'ls1': (dim,), 'ls2': (dim,)}
        sd.update({pre + name: torch.randn(shape) for name, shape in shapes.items()})
    return sd, 'encoder.layers.3.ls2', 'blocks.3.ls2.gamma'


@pytest.mark.parametrize('case, branch, make, cls_slot', [
    ('tsb_mask_rcnn', 2, _timm_deit, False),      # timm DeiT (cls slot dropped, gammas filled)
    ('h6b_speedup', 1, _hf_internvit, True),      # HF InternViT-6B (cls slot kept)
])
def test_plain_vit_checkpoint_loads_into_one_branch_with_resizing(case, branch, make, cls_slot,
                                                                  tmp_path, capsys):
    kw = CASES[case]
    (tmp_path / 'official.json').write_text(json.dumps(kw))
    dim = kw[f'branch{branch}']['embed_dim']
    sd, src_key, our_key = make(dim, grid=7, kernel=14)   # 7x7 grid of patch 14 -> 4x4 of patch 16
    src, dst = tmp_path / 'plain.pth', tmp_path / 'branch.safetensors'
    torch.save({'model': sd}, src)
    rc, out = run_cli(capsys, src, dst, '--branch', branch, '--official-config',
                      tmp_path / 'official.json', '--backbone-only')
    assert rc == 0, out
    model = MODELS.build(translate_official_config(kw)[0])
    converted = load_file(dst)
    prefix = f'branch{branch}.'
    assert set(converted) == {k for k in model.state_dict() if k.startswith(prefix)}
    pos = sd['pos_embed' if 'pos_embed' in sd else 'embeddings.position_embedding']
    grid = F.interpolate(pos[:, 1:].reshape(1, 7, 7, dim).permute(0, 3, 1, 2), size=(4, 4),
                         mode='bicubic', align_corners=False).flatten(2).transpose(1, 2)
    expected = torch.cat([pos[:, :1], grid], 1) if cls_slot else grid
    torch.testing.assert_close(converted[prefix + 'pos_embed'], expected)
    timm = 'pos_embed' in sd
    kernel = sd['patch_embed.proj.weight' if timm else 'embeddings.patch_embedding.weight']
    torch.testing.assert_close(converted[prefix + 'patch_embed.proj.weight'],
                               F.interpolate(kernel, size=(16, 16), mode='bicubic',
                                             align_corners=False))
    assert torch.equal(converted[prefix + our_key], sd[src_key])
    if not cls_slot:   # DeiT v1 has no layer scale: init_values (1.0), as the official load leaves
        assert torch.equal(converted[prefix + 'blocks.0.gamma_1'], torch.ones(dim))
        assert 'filled with init_values=1.0' in out
    result = model.load_state_dict(converted, strict=False)
    assert not result.unexpected_keys and not any(k.startswith(prefix) for k in result.missing_keys)


def test_a_pickle_needing_arbitrary_objects_is_refused_in_one_line(tmp_path, capsys):
    src = tmp_path / 'deit_with_args.pth'
    torch.save({'model': {'pos_embed': torch.zeros(1, 5, 4)},
                'args': argparse.Namespace(lr=0.1)}, src)
    rc = cli.main([str(src), str(tmp_path / 'out.safetensors')])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and '\n' not in err
    assert 'torch zip checkpoint' in err and 'argparse.Namespace' in err and 'weights_only' in err
    assert "torch.save({'state_dict'" in err


def _full_deit(real, dim, heads, depth, dp, pretrained, windows, sizes, stages=12):
    return dict(real_size=real, pretrain_img_size=224, patch_size=16, pretrain_patch_size=16,
                depth=depth, embed_dim=dim, num_heads=heads, mlp_ratio=4, qkv_bias=True,
                drop_path_rate=dp, init_scale=1., with_fpn=False, use_flash_attn=True,
                interaction_indexes=_stages(depth, stages), pretrained=pretrained,
                window_attn=windows, window_size=sizes)


def test_translated_full_size_official_configs_build_the_official_architectures(tmp_path, capsys):
    """Real official definitions (configs/piip/...), built on the meta device (no memory)."""
    tsb = dict(type='PIIPThreeBranch', n_points=4, deform_num_heads=16, cffn_ratio=0.25,
               deform_ratio=0.5, with_cffn=True, interact_attn_type='deform',
               interaction_drop_path_rate=0.4,
               branch1=_full_deit(672, 768, 12, 12, 0.15, 'deit_3_b.pth', [True] * 12, [14] * 12),
               branch2=_full_deit(1120, 384, 6, 12, 0.05, 'deit_3_s.pth', [True] * 12, [14] * 12),
               branch3=_full_deit(1568, 192, 3, 12, 0.05, 'deit_t.pth', [True] * 12, [14] * 12))
    (tmp_path / 'tsb.json').write_text(json.dumps({'backbone': tsb}))
    rc, out = run_cli(capsys, '--official-config', tmp_path / 'tsb.json',
                      '--out-config', tmp_path / 'tsb.py')
    assert rc == 0 and 'pretrained' in (tmp_path / 'tsb.py').read_text(), out
    cfg = Config.fromfile(tmp_path / 'tsb.py').backbone.to_dict()
    assert cfg == json.loads(json.dumps(translate_official_config(tsb)[0]))
    model = build_target(cfg)
    assert [b.embed_dim for b in model.branches] == [768, 384, 192]
    assert [b.blocks[0].attn.num_heads for b in model.branches] == [12, 6, 3]
    assert all(b.window_sizes == [14] * 12 for b in model.branches)
    assert [b.blocks[11].drop_path.drop_prob for b in model.branches] == [0.15, 0.05, 0.05]
    unit = model.interactions[11].interaction_units_23.branch1to2_injector
    assert unit.attn.sampling_offsets.weight.shape == (16 * 4 * 2, 192)
    assert unit.attn.value_proj.weight.shape == (96, 192) and unit.ffn.fc1.weight.shape == (48, 192)
    assert unit.drop_path.drop_prob == 0.4 and model.out_strides == (4, 8, 16, 32)
    # DINO SBL 1792/1120/672: 2 windowed + 1 global blocks (window 24), no fpn1
    pattern = [True, True, False] * 8
    sbl = dict(tsb, is_dino=True,
               branch1=_full_deit(672, 1024, 16, 24, 0.4, 'deit_3_large_384_21k.pth', pattern,
                                  [24 if w else -1 for w in pattern]),
               branch2=_full_deit(1120, 768, 12, 12, 0.15, 'deit_3_base_384.pth', pattern[:12],
                                  [24] * 12),
               branch3=_full_deit(1792, 384, 6, 12, 0.05, 'deit_3_small_384.pth', pattern[:12],
                                  [24] * 12))
    model = build_target(translate_official_config(sbl)[0])
    assert model.branches[0].window_sizes == [24, 24, 0] * 8 and model.out_strides == (8, 16, 32)
    unit = model.interactions[0].interaction_units_12.branch2to1_injector
    assert not hasattr(model, 'fpn1') and unit.attn.value_proj.weight.shape == (512, 1024)
    # H6B 1024/512: InternViT-6B (RMSNorm, QK-norm, layer scale 0.1, patch 14 -> 16, linear
    # drop path, with_cp) and MAE ViT-H (LayerNorm, qkv bias, layer scale 1.0)
    common = dict(pretrain_img_size=224, patch_size=16, pretrain_patch_size=14, mlp_ratio=4,
                  with_cp=True, use_flash_attn=True, layerscale_force_fp32=False, with_fpn=False,
                  drop_path_rate=0.4)
    h6b = dict(type='PIIPTwoBranch', **{k: tsb[k] for k in DEFORM},
               branch1=dict(common, real_size=512, depth=48, embed_dim=3200, num_heads=25,
                            qkv_bias=False, init_values=0.1, qk_normalization=True,
                            norm_layer_type='RMSNorm', interaction_indexes=_stages(48, 12),
                            pretrained='intern_vit_6b_224px.pth'),
               branch2=dict(common, real_size=1024, depth=32, embed_dim=1280, num_heads=16,
                            qkv_bias=True, init_values=1.0, qk_normalization=False,
                            norm_layer_type='LayerNorm',
                            interaction_indexes=[[0, 1], [2, 3], [4, 5], [6, 7], [8, 10], [11, 13],
                                                 [14, 16], [17, 19], [20, 22], [23, 25], [26, 28],
                                                 [29, 31]],
                            pretrained='mae_pretrain_vit_huge.pth'))
    model = build_target(translate_official_config(h6b)[0])
    six_b, vit_h = model.branches
    assert six_b.pos_embed.shape == (1, 1 + 14 * 14, 3200) and six_b.with_cp
    blk = six_b.blocks[47]
    assert type(blk.norm1).__name__ == 'RMSNorm' and blk.attn.qkv.bias is None
    assert type(blk.attn.q_norm).__name__ == 'RMSNorm' and blk.attn.num_heads == 25
    assert isinstance(six_b.blocks[0].drop_path1, torch.nn.Identity)
    assert blk.drop_path1.drop_prob == pytest.approx(0.4)
    assert six_b.blocks[24].drop_path1.drop_prob == pytest.approx(0.4 * 24 / 47)
    assert isinstance(vit_h.blocks[0].norm1, torch.nn.LayerNorm)
    assert not vit_h.blocks[0].attn.qk_norm
    assert vit_h.blocks[0].attn.qkv.bias is not None and vit_h.blocks[0].ls1.gamma.shape == (1280,)
    assert model.schedules[1][4] == [8, 10] and model.out_strides == (4, 8, 16, 32)


def test_plain_vit_checkpoint_converts_for_the_single_branch_baseline(tmp_path, capsys):
    """--branch 1 --config on a ViTBaseline config (the paper's ViT-B / ViT-L baselines)."""
    backbone = dict(type='piip_det.ViTBaseline', embed_dim=64, depth=2, num_heads=2,
                    pretrain_img_size=112, real_size=64, init_values=None)
    config = tmp_path / 'baseline.py'
    config.write_text(f'backbone = {backbone!r}\n')
    sd, src_key, our_key = _timm_deit(64, grid=7, kernel=16)
    src, dst = tmp_path / 'plain.pth', tmp_path / 'baseline.safetensors'
    torch.save({'model': sd}, src)
    rc, out = run_cli(capsys, src, dst, '--branch', 1, '--config', config, '--backbone-only')
    assert rc == 0, out
    model = MODELS.build(backbone)
    converted = load_file(dst)
    assert set(converted) == {k for k in model.state_dict() if k.startswith('branch1.')}
    assert torch.equal(converted['branch1.' + our_key], sd[src_key])
    result = model.load_state_dict(converted, strict=False)
    assert not result.unexpected_keys and all(k.startswith('fpn') for k in result.missing_keys)
