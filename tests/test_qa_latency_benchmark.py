"""tools/analysis_tools/qa_latency_benchmark.py and its modular baseline on a tiny budget: the
ViT parameter formula, the baseline's total parameters within a few % of the monolithic head's
and the same visual-token count, the tool run in this process on the tiny config (2 small views,
one thread) writing its JSON, and the one-line errors for a bad image size and a missing
--pretrained directory."""
import json
from pathlib import Path

import pytest
import torch

from holodrive.engine.config_check import ConfigError
from tests.tool_loader import load_tool

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / 'configs/drive_qa/mono_tiny_language_synthetic.py')


bench = load_tool('tools/analysis_tools/qa_latency_benchmark.py')


def test_vit_parameter_formula_matches_the_built_model():
    from holodrive.models.drive_qa.modular_baseline import (build_vit, projector_parameter_count,
                                                            vit_parameter_count)
    from holodrive.models.drive_qa.visual_tokens import build_mlp1
    for width, depth, hw, inter in [(64, 2, (56, 84), None), (96, 1, (28, 56), 200)]:
        vit = build_vit(width, depth, hw, intermediate=inter)
        assert sum(p.numel() for p in vit.parameters()) == vit_parameter_count(
            width, depth, hw, intermediate=inter)
        assert sum(p.numel() for p in build_mlp1(width, 0.5, 48).parameters()) == \
            projector_parameter_count(width, 0.5, 48)


def test_baseline_matches_parameters_and_visual_tokens(one_thread):
    from holodrive.models.drive_qa import MonoDriveForCausalLM
    from holodrive.models.drive_qa.modular_baseline import (ModularDriveBaseline,
                                                            mono_parameter_counts)
    args = bench.parse_args(['--config', TINY])
    config, _, _ = bench.load_head_config(args)
    torch.manual_seed(0)
    head = MonoDriveForCausalLM(config).eval()
    baseline = ModularDriveBaseline(head, (56, 84)).eval()
    mono, modular = mono_parameter_counts(head), baseline.parameter_counts()
    assert mono['total'] == sum(p.numel() for p in head.parameters())   # no adapters here
    assert mono['visual_experts'] > 0 and mono['active'] < mono['total']
    assert abs(modular['total'] - mono['total']) / mono['total'] < 0.02
    assert modular['text_llm'] == mono['text_llm'] and baseline.head is head   # same LLM
    pixels = torch.randn(1, 2, 3, 56, 84)
    with torch.no_grad():
        assert head.camera_tokens(pixels).shape == baseline.camera_tokens(pixels).shape == \
            (1, 2 * 2 * 3, config.hidden_size)
        # text-only input: both are the same plain LLM
        ids = torch.tensor([[5, 6, 7, 8]])
        assert torch.allclose(head(input_ids=ids).logits, baseline(ids).logits)


def test_tool_runs_in_process_and_writes_json(one_thread, tmp_path):
    out = tmp_path / 'lat.json'
    res = bench.main(['--config', TINY, '--image-size', '56', '56', '--views', '2',
                      '--repeats', '1', '--warmup', '1', '--new-tokens', '2', '--threads', '1',
                      '--out', str(out)])
    saved = json.loads(out.read_text())
    assert saved['ratio']['first_token'] == pytest.approx(res['ratio']['first_token'])
    assert saved['ratio']['first_token'] > 0 and saved['ratio']['goal'] == 0.5
    models = saved['models']
    assert models['monolithic']['visual_tokens'] == models['modular']['visual_tokens'] == \
        saved['image_context_slots'] == 2 * 2 * 2
    assert abs(saved['params_relative_difference']) < 0.02
    for m in models.values():
        assert m['first_token_ms'] > 0 and m['decode_tokens_per_s'] > 0
        assert len(m['times_s']['first_token_s']) == 1
    assert '--views 2' in saved['command'] and saved['threads'] == 1


def test_bad_image_size_and_missing_pretrained_are_one_line_errors(capsys):
    from holodrive.engine.cli import UserFileNotFoundError, run_cli
    with pytest.raises(ConfigError, match='multiples of 28'):
        bench.main(['--config', TINY, '--image-size', '100', '56'])
    with pytest.raises(UserFileNotFoundError, match='--pretrained'):
        bench.main(['--pretrained', str(ROOT / 'no/such/head')])
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: bench.main(['--config', TINY, '--image-size', '224', '100']))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: --image-size 224 100')
