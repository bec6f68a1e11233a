"""tools/analysis_tools/piip_benchmark.py on a tiny budget: the dense-matmul peak, the
interleaved timer, the shipped pair's design and FLOPs ratio (<= 0.6, paper convention), the
schedule scaling, the one-line error for a data root without a COCO export, and the AP
parsing on a real tools/test.py output (a 1-iteration training of the benchmark PIIP on the
``tiny_world`` fixture, both tools run in this process with one thread)."""
import importlib.util
from pathlib import Path

import pytest

from holodrive.engine.config_check import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'piip_benchmark_tool', ROOT / 'tools/analysis_tools/piip_benchmark.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_tool()


def test_matmul_peak_and_interleaved_timer(one_thread):
    for dtype in ('float32', 'bfloat16'):
        assert 0.1 < bench.matmul_peak(128, dtype, repeats=2) < 1e6
    calls = {'a': 0, 'b': 0}

    def count(name):
        def fn():
            calls[name] += 1
        return fn
    secs = bench.interleaved_seconds({'a': count('a'), 'b': count('b')}, warmup=1, repeats=3)
    assert set(secs) == {'a', 'b'} and all(v >= 0 for v in secs.values())
    assert calls == {'a': 4, 'b': 4}


def test_baseline_is_the_piips_largest_branch_at_the_top_resolution_and_costs_more():
    piip = load_config(bench.PIIP_CONFIG)
    base = load_config(bench.BASELINE_CONFIG)
    branch1 = piip.model.backbone.branches[0]
    vit = base.model.backbone
    assert vit.type == 'piip_det.ViTBaseline'
    assert (vit.embed_dim, vit.depth, vit.num_heads) == (
        branch1.embed_dim, branch1.depth, branch1.num_heads)
    assert vit.real_size == max(b.real_size for b in piip.model.backbone.branches)
    # same detector, data and schedule
    for key in ('neck', 'rpn_head', 'roi_head', 'train_cfg', 'test_cfg'):
        assert piip.model[key] == base.model[key], key
    for key in ('train_dataloader', 'test_dataloader', 'test_evaluator', 'train_cfg',
                'param_scheduler', 'randomness'):
        assert piip[key] == base[key], key
    macs = {k: bench.backbone_macs(c.model.backbone) for k, c in (('piip', piip), ('base', base))}
    assert macs['piip']['side'] == macs['base']['side'] == 256
    assert macs['piip']['paper'] <= 0.6 * macs['base']['paper'], macs
    assert macs['piip']['as_built'] > macs['piip']['paper']        # conv merges + simple FPN


def test_schedule_overrides_scale_the_decay_step_but_not_the_warm_up():
    cfg = load_config(bench.PIIP_CONFIG)
    old = cfg.train_cfg.max_iters
    opts = bench.schedule_overrides(cfg, old // 2)
    assert f'train_cfg.max_iters={old // 2}' in opts
    assert f'param_scheduler.1.milestones=[{round(old * 3 // 4 / 2)}]' in opts
    assert not any(o.startswith('param_scheduler.0') for o in opts)


def test_a_data_root_without_coco_export_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match='no COCO export.*tools/create_data.py synthetic'):
        bench.main(['--data-root', str(tmp_path / 'missing'), '--work-dir', str(tmp_path)])


def test_ap_numbers_are_parsed_from_a_real_test_output(tiny_world, tmp_path, one_thread):
    ckpt, metrics = bench.train_and_test('piip', bench.PIIP_CONFIG, str(tiny_world.root),
                                         str(tmp_path), iters=1, seed=0, in_process=True)
    assert Path(ckpt).is_file()
    text = (tmp_path / 'piip' / 'test' / 'test.log').read_text()
    assert metrics == bench.parse_test_output(text)
    ap = bench.ap_numbers(metrics)
    assert all(0.0 <= v <= 1.0 for v in ap.values()), ap
    # without the metrics.json the headline line is enough
    headline = '\n'.join(line for line in text.splitlines() if line.startswith('result:'))
    short = bench.ap_numbers(bench.parse_test_output(headline))
    assert short['box_ap'] == pytest.approx(ap['box_ap'], abs=1e-4)
    assert short['mask_ap'] == pytest.approx(ap['mask_ap'], abs=1e-4)
