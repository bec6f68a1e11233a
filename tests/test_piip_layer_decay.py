"""PIIP training recipe pieces: layer-wise lr decay (official rule) and bf16 autocast.

``PIIPLayerDecayOptimizerConstructor`` is what the PIIP configs name in
``optim_wrapper.constructor``; the checks below restate the official rule
independently and compare every parameter's layer id, lr scale and weight decay.
"""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from piip_det.models.backbones import interaction as interaction_module
from piip_det.optim.layer_decay import param_group_table
from piip_det.registry import MODELS

BASE_LR, WD = 1e-4, 0.05


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def branch(dim, depth, real_size, per_stage=1, **kw):
    return dict(embed_dim=dim, depth=depth, num_heads=2, real_size=real_size,
                pretrain_img_size=64,
                interaction_indexes=[[i, i + per_stage - 1] for i in range(0, depth, per_stage)],
                **kw)


def tiny_sbl():
    """SBL-like: branch1 has twice the depth of branches 2 and 3 (skip_stride [2, 2])."""
    return MODELS.build(dict(type='piip_det.PIIP', deform_num_heads=4, branches=[
        branch(64, 4, 32, per_stage=2), branch(32, 2, 48), branch(32, 2, 64)]))


class Detector(nn.Module):
    """A backbone plus a head: parameter names as in an mmdet model (``backbone.``...)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(4, 2)


def build(model, **paramwise):
    cfg = dict(optimizer=dict(type='AdamW', lr=BASE_LR, betas=(0.9, 0.999), weight_decay=WD),
               constructor='PIIPLayerDecayOptimizerConstructor', paramwise_cfg=paramwise)
    with DefaultScope.overwrite_default_scope('mmdet'):     # as in an mmdet config
        return build_optim_wrapper(model, cfg).optimizer


def official_layer_id(name, num_layers, strides):
    """The official rule (piip.md section 8) written out; ``num_layers`` already + 2."""
    parts = name.split('.')
    if parts[1].startswith('branch') and parts[2] in ('pos_embed', 'patch_embed'):
        return 0
    if parts[1].startswith('branch') and parts[2] == 'blocks':
        j, i = int(parts[1][len('branch'):]), int(parts[3])
        return i + 1 if j == 1 else (i + 1) * strides[j - 2]
    return num_layers - 1


def expected_id(name, num_layers, strides):
    return math.floor(official_layer_id(name, num_layers, strides))


def official_groups(model, num_layers, strides, rate):
    """The official constructor's grouping, restated: group key ``'layer_%d'`` (a fractional
    id joins the group of its floor, whose scale was set by the parameter that created it)
    and its weight-decay test (``len(shape) == 1`` or a ``.bias`` name)."""
    groups, out = {}, {}
    for name, p in model.named_parameters():
        lid = official_layer_id(name, num_layers, strides)
        decay = not (len(p.shape) == 1 or name.endswith('.bias'))
        key = 'layer_%d_%s' % (lid, 'decay' if decay else 'no_decay')
        groups.setdefault(key, rate ** (num_layers - lid - 1))
        out[name] = (groups[key], WD if decay else 0.0)
    return out


def test_layer_ids_and_lr_scales_follow_the_official_rule():
    torch.manual_seed(0)
    model = Detector(tiny_sbl())
    optimizer = build(model, num_layers=4, layer_decay_rate=0.85, skip_stride=[2, 2])
    table = param_group_table(optimizer, model)
    assert set(table) == {n for n, _ in model.named_parameters()}
    num_layers = 4 + 2
    for name, (lid, scale, _) in table.items():
        assert lid == expected_id(name, num_layers, [2, 2]), name
        assert scale == pytest.approx(0.85 ** (num_layers - lid - 1)), name
    # spot checks of the rule, read as a user would
    assert table['backbone.branch1.pos_embed'][0] == 0
    assert table['backbone.branch3.patch_embed.proj.weight'][0] == 0
    assert table['backbone.branch1.blocks.3.mlp.fc1.weight'][0] == 4
    assert table['backbone.branch2.blocks.0.attn.qkv.weight'][0] == 2       # (0 + 1) * 2
    assert table['backbone.branch3.blocks.1.attn.qkv.weight'][0] == 4       # (1 + 1) * 2
    for name in ('backbone.interactions.0.interaction_units_12.branch2to1_proj.weight',
                 'backbone.merge_branch2.0.weight', 'backbone.fpn1.0.weight', 'backbone.w1',
                 'head.weight'):
        assert table[name][:2] == (5, 1.0), name
    for group in optimizer.param_groups:
        assert group['lr'] == pytest.approx(BASE_LR * group['lr_scale'])


def test_weight_decay_spares_biases_norms_gammas_pos_embed_and_merge_scalars():
    model = Detector(tiny_sbl())
    table = param_group_table(build(model, num_layers=4, layer_decay_rate=0.85,
                                    skip_stride=[2, 2]), model)
    params = dict(model.named_parameters())
    for name, (_, _, wd) in table.items():
        spared = params[name].ndim <= 1 or name.endswith(('.bias', 'pos_embed'))
        assert wd == (0.0 if spared else WD), name
    assert params['backbone.w2'].shape == (1,) and table['backbone.w2'][2] == 0.0   # merge scalar
    assert table['backbone.branch1.pos_embed'][2] == 0.0
    assert table['backbone.branch2.blocks.0.gamma_1'][2] == 0.0
    assert table['backbone.branch2.blocks.0.attn.qkv.weight'][2] == WD


def test_fractional_skip_stride_matches_the_official_grouping():
    """H6B (InternViT-6B 48 layers + ViT-H 32): ``skip_stride=[48 / 32]``; the official
    ``'layer_%d'`` group names floor ``1.5 * (i + 1)``; lr scales and decays otherwise agree
    (the deliberate differences: merge scalars and pos_embed are not decayed here)."""
    model = Detector(MODELS.build(dict(type='piip_det.PIIP', deform_num_heads=4, branches=[
        branch(64, 6, 32, per_stage=3, block_type='internvit'),
        branch(32, 4, 64, per_stage=2, block_type='internvit', norm_type='layernorm')])))
    rate, num_layers = 0.85, 6
    table = param_group_table(build(model, num_layers=num_layers, layer_decay_rate=rate,
                                    skip_stride=[1.5]), model)
    assert [table[f'backbone.branch2.blocks.{i}.attn.qkv.weight'][0] for i in range(4)] == \
        [1, 3, 4, 6]
    official = official_groups(model, num_layers + 2, [1.5], rate)
    for name, (lid, scale, wd) in table.items():
        official_scale, official_wd = official[name]
        assert scale == pytest.approx(official_scale), name
        if not (name in ('backbone.w1', 'backbone.w2') or name.endswith('pos_embed')):
            assert wd == official_wd, name


def test_single_branch_baseline_and_inferred_num_layers():
    model = Detector(MODELS.build(dict(
        type='piip_det.ViTBaseline', embed_dim=32, depth=3, num_heads=2, pretrain_img_size=64,
        window_attn=[True, True, False], window_size=2)))
    table = param_group_table(build(model, layer_decay_rate=0.95), model)   # num_layers = 3
    assert table['backbone.branch1.patch_embed.proj.weight'][:2] == (0, pytest.approx(0.95 ** 4))
    assert table['backbone.branch1.blocks.2.norm1.weight'][:2] == (3, pytest.approx(0.95))
    assert table['backbone.fpn1.1.weight'][:2] == (4, 1.0)


def test_missing_rate_and_short_skip_stride_fail_with_the_key():
    model = Detector(tiny_sbl())
    with pytest.raises(ValueError, match='layer_decay_rate'):
        build(model, num_layers=4)
    with pytest.raises(ValueError, match=r'skip_stride=\[2\]: 1 entries for 3 branches'):
        build(model, num_layers=4, layer_decay_rate=0.85, skip_stride=[2])


def test_bf16_autocast_keeps_the_deformable_attention_in_fp32(monkeypatch):
    """Under ``torch.autocast('cpu', bfloat16)`` the ViT blocks run in bf16 while every
    deformable-attention projection, and the sampling itself, sees fp32 tensors; the
    outputs are fp32 and close to the fp32 forward."""
    torch.manual_seed(0)
    model = tiny_sbl().eval()
    for name, p in model.named_parameters():          # open the interactions
        if name.endswith(('ca_gamma', 'cffn_gamma')):
            nn.init.constant_(p, 0.5)
    seen = {'msda': set(), 'sampling': set(), 'blocks': set()}
    original = interaction_module.multi_scale_deformable_attn

    def sampling(value, shapes, starts, locations, weights, *args):
        seen['sampling'].update({value.dtype, locations.dtype, weights.dtype})
        return original(value, shapes, starts, locations, weights, *args)

    monkeypatch.setattr(interaction_module, 'multi_scale_deformable_attn', sampling)
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and '.attn.' in name and 'injector' in name:
            m.register_forward_hook(lambda mod, i, o: seen['msda'].update({i[0].dtype, o.dtype}))
        elif isinstance(m, nn.Linear) and '.blocks.' in name:
            m.register_forward_hook(lambda mod, i, o: seen['blocks'].add(o.dtype))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        for dtypes in seen.values():
            dtypes.clear()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            mixed = model(x)
    assert seen['blocks'] == {torch.bfloat16}              # autocast is really on
    assert seen['msda'] == {torch.float32} and seen['sampling'] == {torch.float32}
    for a, b in zip(reference, mixed):
        assert b.dtype == torch.float32
        err = (a - b).abs().max() / a.abs().max()
        assert math.isfinite(err) and err < 0.05, err


def test_bf16_amp_runs_on_cpu_through_the_autocast_optim_wrapper():
    """mmengine's AmpOptimWrapper refuses CPUs; prepare_config swaps a bf16 one (the full
    configs, ``--amp``) for Bf16AutocastOptimWrapper, whose step runs under bf16 autocast."""
    from mmengine.optim import build_optim_wrapper

    from holodrive.engine.cli import import_project, prepare_config
    from holodrive.engine.config_check import ConfigError
    import_project()                       # what tools/train.py does first
    tiny = 'configs/piip/upernet/upernet_piip_tiny_synthetic.py'
    full = 'configs/piip/mask_rcnn/mask_rcnn_piip_tsb_1120_896_448_fpn_1x_coco.py'
    for path, amp in ((tiny, True), (full, False)):
        cfg = prepare_config(path, amp=amp, check_paths=False)
        assert cfg.optim_wrapper.type == 'Bf16AutocastOptimWrapper', path
        assert 'dtype' not in cfg.optim_wrapper and 'loss_scale' not in cfg.optim_wrapper
    with pytest.raises(ConfigError, match="optim_wrapper.dtype='float16' needs a GPU"):
        prepare_config(full, cfg_options={'optim_wrapper.dtype': 'float16'}, check_paths=False)
    model = torch.nn.Linear(4, 4)
    wrapper = build_optim_wrapper(model, dict(type='Bf16AutocastOptimWrapper',
                                              optimizer=dict(type='SGD', lr=0.1)))
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.bfloat16
    assert model(torch.randn(2, 4)).dtype == torch.float32
