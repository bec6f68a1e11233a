"""tools/analysis_tools/qa_reading_probe.py: the synthetic counting task is answered by the
map (and only by it), a small decoder trained in this process reads its visual tokens far
above the blind control and the majority count, and bad arguments give one-line errors."""
import json
from pathlib import Path

import pytest
import torch

from holodrive.engine.config_check import ConfigError
from tests.tool_loader import load_tool

TINY = Path(__file__).resolve().parents[1] / 'configs/drive_qa/mono_tiny_language_synthetic.py'
probe = load_tool('tools/analysis_tools/qa_reading_probe.py')


def test_batches_answer_from_the_map_only():
    maps, asked, counts = probe.make_batch(torch.Generator().manual_seed(0), 64, 4, 3, 5)
    assert maps.shape == (64, 3, 4, 4)
    assert int(maps.sum(1).max()) <= 1                       # one object per cell
    assert torch.equal(counts, maps[torch.arange(64), asked].flatten(1).sum(1).long())
    ids, labels = probe.prompt_ids(asked, counts, 16)
    assert ids.shape == (64, 16 + 4) and bool((ids[:, :16] == probe.IMAGE).all())
    assert torch.equal(ids[:, -2] - probe.COUNT0, counts)
    assert bool((labels[:, :-2] == -100).all()) and torch.equal(labels[:, -2:], ids[:, -2:])


def test_small_decoder_reads_its_visual_tokens(tmp_path, one_thread):
    config = tmp_path / 'small.py'
    config.write_text(
        f"_base_ = ['{TINY}']\n"
        'model = dict(llm=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,\n'
        '                      num_attention_heads=4, num_key_value_heads=2))\n')
    final, majority = probe.main(['--config', str(config), '--steps', '600', '--lr', '1e-3',
                                  '--eval-every', '300', '--val-size', '256',
                                  '--out-dir', str(tmp_path / 'out')])
    assert final['reading'] >= majority + 0.15, (final, majority)
    assert final['blind control'] <= majority + 0.05, (final, majority)
    saved = json.loads((tmp_path / 'out' / 'probe.json').read_text())
    assert saved['final'] == final and len(saved['curves']['reading']) == 2
    assert (tmp_path / 'out' / 'probe_curve.png').stat().st_size > 0


@pytest.mark.parametrize('argv, message', [
    (['--grid', '5', '--fold', '2'], 'not divisible by --fold'),
    (['--grid', '2', '--max-objects', '5'], '--max-objects 5'),
])
def test_bad_arguments_are_config_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        probe.main(argv)
