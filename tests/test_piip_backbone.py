"""The N-branch PIIP backbone on CPU with tiny widths: usage examples and invariants.

A PIIP config is a list of branch dicts, the largest model first (``branch1``);
the input is the image at the last branch's ``real_size``.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from piip_det.models.backbones import PIIP, ViT, multi_scale_deformable_attn
from piip_det.models.backbones.deform_attn import _deformable_attn_grid_sample
from piip_det.registry import MODELS


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny tensors: one intra-op thread is faster and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_branches(num_branches=3, depth=2):
    """Widths 64/32/32 at 32/48/64 px, patch 16, window 2 (branch1's grid is 2x2)."""
    every = [[i, i] for i in range(depth)]
    branches = [
        dict(embed_dim=64, depth=depth, num_heads=2, real_size=32, pretrain_img_size=64,
             window_attn=True, window_size=2, drop_path_rate=0.1, interaction_indexes=every),
        dict(embed_dim=32, depth=depth, num_heads=2, real_size=48, pretrain_img_size=64,
             window_attn=True, window_size=2, drop_path_rate=0.05, interaction_indexes=every),
        # InternViT-6B block type (RMSNorm, QK-norm, layer scale), two blocks per stage
        dict(embed_dim=32, depth=2 * depth, num_heads=2, real_size=64, pretrain_img_size=64,
             block_type='internvit', qk_norm=True, drop_path_rate=0.05,
             interaction_indexes=[[2 * i, 2 * i + 1] for i in range(depth)]),
    ]
    return branches if num_branches == 3 else [branches[0], branches[2]]


def tiny_piip(num_branches=3, depth=2, **kwargs):
    cfg = dict(type='piip_det.PIIP', branches=tiny_branches(num_branches, depth), deform_num_heads=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def set_gammas(model, value):
    for name, p in model.named_parameters():
        if name.endswith(('ca_gamma', 'cffn_gamma')):
            torch.nn.init.constant_(p, value)


@pytest.mark.parametrize('num_branches', [2, 3])
def test_zero_gammas_leave_every_branch_a_plain_vit(num_branches):
    torch.manual_seed(0)
    model = tiny_piip(num_branches).eval()
    x = torch.randn(2, 3, 64, 48)        # non-square: branch1's 2x1 grid is padded to its window
    with torch.no_grad():
        fused = model.forward_branches(x)
        for j, (cfg, out) in enumerate(zip(tiny_branches(num_branches), fused)):
            cfg = {k: v for k, v in cfg.items() if k not in ('real_size', 'interaction_indexes')}
            alone = ViT(**cfg).eval()
            alone.load_state_dict(model.branches[j].state_dict())
            scale = model.real_sizes[j] / model.real_sizes[-1]
            img = F.interpolate(x, scale_factor=scale, mode='bilinear') if scale < 1 else x
            expected = alone(img)
            assert out.shape == expected.shape
            torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
        # the interactions are wired: non-zero gammas change the branches
        set_gammas(model, 0.5)
        changed = model.forward_branches(x)
    assert all((a - b).abs().max() > 1e-3 for a, b in zip(fused, changed))


def random_msda_inputs(dtype=torch.float32):
    shapes = torch.tensor([[5, 7], [3, 4]])
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    b, n_q, heads, d_head, points = 2, 11, 4, 6, 3
    value = torch.randn(b, int(shapes.prod(1).sum()), heads, d_head, dtype=dtype)
    locations = torch.rand(b, n_q, heads, 2, points, 2, dtype=dtype) * 1.4 - 0.2  # some outside
    weights = torch.rand(b, n_q, heads, 2 * points, dtype=dtype).softmax(-1)
    return value, shapes, starts, locations, weights.view(b, n_q, heads, 2, points)


def test_deform_attn_pytorch_path_matches_mmcv_reference():
    torch.manual_seed(0)
    value, shapes, starts, locations, weights = random_msda_inputs()
    leaves = [t.clone().requires_grad_() for t in (value, locations, weights)]
    ours = multi_scale_deformable_attn(leaves[0], shapes, starts, leaves[1], leaves[2])
    refs = [t.clone().requires_grad_() for t in (value, locations, weights)]
    ref = multi_scale_deformable_attn_pytorch(refs[0], shapes, refs[1], refs[2])
    assert ours.shape == (2, 11, 4 * 6)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    for a, b in zip(leaves, refs):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-5)
    # fp32 inside, the caller's dtype outside
    half = multi_scale_deformable_attn(value.bfloat16(), shapes, starts, locations.bfloat16(),
                                       weights.bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), ref.detach(), rtol=0, atol=5e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA for the compiled mmcv op')
def test_deform_attn_cuda_op_matches_pytorch_path():
    torch.manual_seed(0)
    value, shapes, starts, locations, weights = random_msda_inputs()
    ref = _deformable_attn_grid_sample(value, shapes, locations, weights)
    inputs = (value, shapes, starts, locations, weights)
    cuda = multi_scale_deformable_attn(*(t.cuda() for t in inputs))
    torch.testing.assert_close(cuda.cpu(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize('num_branches', [2, 3])
@pytest.mark.parametrize('mode, strides', [('simple_fpn', (4, 8, 16, 32)), ('dino', (8, 16, 32)),
                                           ('regular_fpn', (4, 8, 16, 32))])
def test_output_modes_shapes_and_strides(num_branches, mode, strides):
    torch.manual_seed(0)
    extra = dict(out_interaction_indexes=[0, 1, 2]) if mode == 'regular_fpn' else {}
    model = tiny_piip(num_branches, depth=4 if mode == 'regular_fpn' else 2, output_mode=mode,
                      **extra).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
    assert tuple(model.out_strides) == strides
    assert [o.shape for o in outs] == [(1, 64, 64 // s, 96 // s) for s in strides]
    assert all(o.dtype == torch.float32 for o in outs)
    keys = model.state_dict()
    assert {'w1', 'merge_branch1.0.weight', 'fpn2.0.weight', 'branch1.pos_embed',
            'branch1.patch_embed.proj.weight', 'branch1.blocks.0.gamma_1',
            'branch1.blocks.0.attn.qkv.weight', f'branch{num_branches}.blocks.0.ls1.gamma',
            'interactions.1.interaction_units_12.branch2to1_injector.attn.value_proj.weight',
            'interactions.1.interaction_units_12.branch1to2_injector.ffn.dwconv.dwconv.weight',
            } <= set(keys)
    assert ('fpn1.3.weight' in keys) == (mode != 'dino')
    if mode == 'regular_fpn':
        assert 'intermediate_merging_2_w1' in keys and 'merge_branch1.0.weight' in keys


def _broken(change):
    branches = tiny_branches()
    change(branches)
    return branches


@pytest.mark.parametrize('branches, extra, key', [
    (_broken(lambda b: b[1].update(real_size=40)), {}, r'branches\[1\]\.real_size=40'),
    (_broken(lambda b: b[0].update(interaction_indexes=[[0, 1]])), {},
     r'branches\[1\]\.interaction_indexes'),      # 1 stage where the others have 2
    (_broken(lambda b: b[1].update(interaction_indexes=[[0, 0], [2, 2]])), {},
     r'branches\[1\]\.interaction_indexes'),      # block 1 skipped
    (_broken(lambda b: b[0].update(window_size=4)), {}, r'branches\[0\]\.window_size=4'),
    (_broken(lambda b: b[2].update(real_size=16)), {}, r'branches\[2\]\.real_size=16'),
    (_broken(lambda b: b[0].update(pretrained='x.pth')), {}, r'branches\[0\]\.pretrained'),
    (tiny_branches(), dict(output_mode='regular_fpn'), 'out_interaction_indexes=None'),
    (tiny_branches(), dict(deform_num_heads=3), 'deform_num_heads=3'),
])
def test_bad_configs_fail_at_build_with_one_line_naming_the_key(branches, extra, key):
    kwargs = dict(deform_num_heads=4, **extra) if 'deform_num_heads' not in extra else extra
    with pytest.raises(ValueError, match=key) as err:
        PIIP(branches=copy.deepcopy(branches), **kwargs)
    assert '\n' not in str(err.value)


def test_backward_finite_and_checkpointing_gives_the_same_grads():
    torch.manual_seed(0)
    plain = tiny_piip(interaction_drop_path_rate=0.2).train()
    set_gammas(plain, 0.3)
    branches = tiny_branches()
    for b in branches:
        b['with_cp'] = True
    ckpt = MODELS.build(dict(type='piip_det.PIIP', branches=branches, deform_num_heads=4,
                             interaction_drop_path_rate=0.2, interaction_with_cp=True)).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(1)      # same drop-path masks in both runs
        loss = sum(o.square().mean() for o in model(x))
        loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, g in grads[0].items():
        assert g is not None and torch.isfinite(g).all(), name
        torch.testing.assert_close(grads[1][name], g, rtol=1e-5, atol=1e-7, msg=name)
    assert grads[0]['interactions.0.interaction_units_23.branch1to2_injector.ca_gamma'].abs().sum() > 0


def test_plain_checkpoint_kernel_and_pos_embed_are_resized_on_load():
    vit = ViT(embed_dim=32, depth=1, num_heads=2, patch_size=16, pretrain_img_size=64,
              block_type='internvit')           # pos_embed keeps a cls slot: (1, 1 + 4*4, 32)
    plain = {k: v.clone() for k, v in vit.state_dict().items()}
    plain['patch_embed.proj.weight'] = torch.randn(32, 3, 14, 14)   # patch-14 pretraining
    plain['pos_embed'] = torch.randn(1, 1 + 7 * 7, 32)              # 7x7 grid + cls
    vit.load_state_dict(plain)
    assert vit.patch_embed.proj.weight.shape == (32, 3, 16, 16)
    assert vit.pos_embed.shape == (1, 17, 32)
    tokens, hw = vit.embed(torch.randn(1, 3, 80, 48))                # PE resized per forward
    assert hw == (5, 3) and tokens.shape == (1, 15, 32)
