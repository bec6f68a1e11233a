"""The sharded strategy of configs/piip/_base_/strategies/fsdp_cp.py (FlexibleRunner + FSDP,
activation checkpointing) on CPU processes (gloo): 2 ranks x batch 1 train like 1 rank x batch 2.

The tiny PIIP UperNet is made deterministic for the comparison: GroupNorm heads (BatchNorm
statistics depend on the per-rank batch), no drop-path / dropout / random flip, no shuffling,
and the pixel-mean cross-entropy (every image has the same size, so the mean of the rank means
is the global mean). What remains is floating-point summation order.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY_UPERNET = ROOT / 'configs/piip/upernet/upernet_piip_tiny_synthetic.py'
FSDP = ROOT / 'configs/piip/_base_/strategies/fsdp_cp.py'

DETERMINISTIC = f"""
_base_ = [{str(TINY_UPERNET)!r}, {str(FSDP)!r}]
custom_imports = dict(imports=['mmseg.registry', 'piip_det.models', 'piip_det.optim',
                               'tests.fsdp_loss_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='GlobalLossRecorderHook')]
gn = dict(type='GN', num_groups=8)
model = dict(
    backbone=dict(interaction_drop_path_rate=0.0, branches=[
        dict(embed_dim=64, depth=2, num_heads=2, real_size=128, pretrain_img_size=64,
             interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=2, num_heads=2, real_size=256, pretrain_img_size=64,
             window_attn=[True, False], window_size=8, interaction_indexes=[[0, 0], [1, 1]])]),
    decode_head=dict(dropout_ratio=0.0, norm_cfg=dict(_delete_=True, **gn)),
    auxiliary_head=dict(dropout_ratio=0.0, norm_cfg=dict(_delete_=True, **gn)))
train_dataloader = dict(sampler=dict(shuffle=False), dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=(256, 144), keep_ratio=True), dict(type='PackSegInputs')]))
"""


def _dist_train(config, nproc, work, world, batch_size, port):
    env = dict(os.environ, PORT=str(port), PYTHON=sys.executable, OMP_NUM_THREADS='1')
    env.pop('LOCAL_RANK', None)   # a torchrun parent's; each child gets its own
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(config), str(nproc), '--work-dir', str(work),
         '--cfg-options', f'data_root={world.root}/', f'train_dataloader.batch_size={batch_size}'],
        cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return json.loads((work / 'global_losses.json').read_text())


@pytest.fixture(scope='module')
def fsdp_runs(tiny_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('fsdp')
    config = tmp / 'upernet_piip_tiny_fsdp_deterministic.py'
    config.write_text(DETERMINISTIC)
    port = 29000 + os.getpid() % 400 * 2
    sharded = _dist_train(config, 2, tmp / 'two', tiny_world, 1, port)
    single = _dist_train(config, 1, tmp / 'one', tiny_world, 2, port + 1)
    return config, tmp, sharded, single


def test_two_sharded_ranks_give_the_single_process_losses(fsdp_runs):
    _, _, sharded, single = fsdp_runs
    assert (sharded['wrapper'], sharded['world_size']) == ('MMFullyShardedDataParallel', 2)
    sharded, single = sharded['losses'], single['losses']
    assert len(sharded) == len(single) == 4, (sharded, single)
    torch.testing.assert_close(torch.tensor(sharded), torch.tensor(single), rtol=1e-4, atol=0)
    assert sharded[-1] < sharded[0], sharded       # and it trains


def test_sharded_checkpoint_is_one_full_file_that_tools_test_reads(fsdp_runs, tiny_world):
    config, tmp, _, _ = fsdp_runs
    ckpt = tmp / 'two' / 'iter_4.pth'
    assert ckpt.is_file(), sorted(p.name for p in (tmp / 'two').iterdir())
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert state['backbone.w1'].shape == (1,) and 'decode_head.conv_seg.weight' in state
    assert not any('_fsdp_wrapped_module' in k or '_checkpoint_wrapped' in k for k in state)
    import importlib.util
    spec = importlib.util.spec_from_file_location('piip_fsdp_test_tool', ROOT / 'tools/test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([str(config), str(ckpt), '--work-dir', str(tmp / 'test'), '--cfg-options',
               f'data_root={tiny_world.root}/', 'visualizer.name=piip_fsdp_test'])
    (metrics,) = (tmp / 'test').glob('*/metrics.json')
    assert 0.0 < json.loads(metrics.read_text())['aAcc'] <= 100.0


def test_fsdp_units_and_checkpointed_regions_are_the_blocks():
    from piip_det.fsdp import block_wrap_policy, is_block
    from piip_det.models.backbones.interaction import InteractionBlock
    from piip_det.models.backbones.vit import DeiTBlock
    block = DeiTBlock(dim=16, num_heads=2)
    assert is_block(block) and block_wrap_policy(block, recurse=False, nonwrapped_numel=1)
    assert block_wrap_policy(torch.nn.Linear(2, 2), recurse=True, nonwrapped_numel=6)
    assert not block_wrap_policy(torch.nn.Linear(2, 2), recurse=False, nonwrapped_numel=6)
    from piip_det.flops import build_backbone
    piip = build_backbone(dict(type='piip_det.PIIP', deform_num_heads=2, branches=[
        dict(embed_dim=64, depth=2, num_heads=2, real_size=64, pretrain_img_size=64,
             interaction_indexes=[[0, 0], [1, 1]]),
        dict(embed_dim=32, depth=2, num_heads=2, real_size=128, pretrain_img_size=64,
             interaction_indexes=[[0, 0], [1, 1]])]))
    units = [m for m in piip.modules() if is_block(m)]
    assert sum(isinstance(m, InteractionBlock) for m in units) == 2   # one per stage
    assert sum(isinstance(m, DeiTBlock) for m in units) == 4          # 2 branches x depth 2
