"""Per-GPU training memory estimate (piip_det.memory, printed by get_flops.py)."""
import importlib.util
from pathlib import Path

import pytest
import torch

from piip_det.flops import empty_weights
from piip_det.memory import ActivationReport, measure_activations, per_gpu_memory
from piip_det.models.backbones.vit import DeiTBlock

ROOT = Path(__file__).resolve().parents[1]


class _Blocks(torch.nn.Module):
    """``depth`` DeiT blocks on a ``(B, C, h, w)`` map."""

    def __init__(self, dim, depth):
        super().__init__()
        self.blocks = torch.nn.ModuleList(DeiTBlock(dim=dim, num_heads=dim // 64)
                                          for _ in range(depth))

    def forward(self, x):
        hw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        for blk in self.blocks:
            x = blk(x, hw)
        return x


def test_a_vit_block_saves_what_the_transformer_memory_formula_says():
    """Korthikanti et al. (2022): a transformer layer keeps ~34 s*b*h bytes in 16-bit with
    the N x N attention terms removed by a memory-efficient kernel (less 2 s*b*h of dropout
    masks DeiT does not have, plus the kernel's output); the measurement sits near it."""
    with empty_weights():
        model = _Blocks(768, 2)
    report = measure_activations(model, (1, 768, 14, 14), act_bytes=2)
    sbh = 196 * 768
    assert len(report.per_block) == 2
    for saved, inp in report.per_block:
        assert 30 <= saved / sbh <= 42, saved / sbh
        assert inp == 2 * sbh                            # the block's bf16 input
    fp32 = measure_activations(model, (1, 768, 14, 14), act_bytes=4)
    assert fp32.total == pytest.approx(2 * report.total, rel=0.02)   # lse stays fp32
    # no N^2 term: 4x the tokens -> 4x the bytes
    big = measure_activations(model, (1, 768, 28, 28), act_bytes=2)
    assert big.total == pytest.approx(4 * report.total, rel=0.01)


def test_checkpointing_keeps_block_inputs_and_one_recomputation():
    report = ActivationReport(total=1000, per_block=[(300, 10), (400, 10), (200, 10)])
    assert report.checkpointed == 1000 - 900 + 30 + 400


def test_fsdp_shards_model_states_and_ddp_does_not():
    acts = ActivationReport(total=8 * 2**30, per_block=[(2**30, 2**20)] * 8)
    p, blocks, block_max = 7_000_000_000, 6_800_000_000, 150_000_000
    f8 = per_gpu_memory(p, blocks, block_max, acts, 8, 2, sharded=True)
    f64 = per_gpu_memory(p, blocks, block_max, acts, 64, 2, sharded=True)
    ddp = per_gpu_memory(p, blocks, block_max, acts, 8, 2, sharded=False)
    assert f8['weights'] == 4 * p / 8 and f64['adamw'] == 8 * p / 64
    assert ddp['weights'] + ddp['grads'] + ddp['adamw'] == 16 * p
    assert f8['activations'] == 2 * acts.total and f8['gathered'] == f64['gathered']
    assert f64['total'] < f8['total'] < ddp['total']
    assert f8['total_checkpointed'] < f8['total']


def test_get_flops_prints_the_memory_of_the_6b_fsdp_config(capsys):
    path = ROOT / 'tools/analysis_tools/get_flops.py'
    spec = importlib.util.spec_from_file_location('get_flops_memory_cli', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = ROOT / 'configs/piip/mask_rcnn/mask_rcnn_piip_h6b_1024_512_fpn_1x_coco_fsdp.py'
    module.main([str(config)])
    out = capsys.readouterr().out
    assert 'FSDP FULL_SHARD' in out and 'activations in bf16' in out
    lines = [line for line in out.splitlines() if 'GPUs:' in line]
    assert [line.split()[0] for line in lines] == ['8', '64']
    totals = [float(line.rsplit('(', 1)[1].split()[0]) for line in lines]   # checkpointed
    assert totals[1] < totals[0] < 80, totals       # fits an 80 GB GPU when checkpointed
    assert 'not counted' in out
