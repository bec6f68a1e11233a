"""tools/analysis_tools/bev_det_benchmark.py on a tiny budget: the epoch schedule overrides,
the car-AP parsing of devkit metric keys, the resident-set peak meter, ``bev_pool`` timing at
the tiny size, the depth evaluation of an untrained detector against the LiDAR of the tiny
world, and the one-line error for a data root without info files."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from holodrive.engine.config_check import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools/analysis_tools/bev_det_benchmark.py'


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'bev_det_benchmark_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_tool()


def test_epoch_overrides_end_the_cosine_at_the_new_epoch_count():
    cfg = load_config(bench.CONFIGS['piip'])
    old = cfg.train_cfg.max_epochs
    opts = bench.epoch_overrides(cfg, old // 3)
    assert f'train_cfg.max_epochs={old // 3}' in opts
    assert f'train_cfg.val_interval={old // 3 + 1}' in opts            # no validation
    assert f'param_scheduler.1.T_max={old // 3}' in opts
    assert f'param_scheduler.1.end={old // 3}' in opts
    assert not any(o.startswith('param_scheduler.0') for o in opts)    # warm-up untouched


def test_car_ap_is_the_mean_over_the_distance_thresholds():
    pre = 'NuScenes metric/pred_instances_3d_NuScenes/'
    aps = (('0.5', 0.1), ('1.0', 0.2), ('2.0', 0.3), ('4.0', 0.4))
    metrics = {pre + f'car_AP_dist_{d}': v for d, v in aps}
    metrics.update({pre + 'mAP': 0.05, pre + 'NDS': 0.2, pre + 'truck_AP_dist_0.5': 0.9})
    head = bench.headline(metrics)
    assert head == pytest.approx(dict(mAP=0.05, NDS=0.2, car_AP=0.25))
    assert bench.class_ap(metrics, 'bus') is None


def test_peak_rss_sees_a_large_temporary():
    """In a fresh process (a test worker may have loaded an allocator that keeps freed
    memory resident, which the meter cannot see)."""
    code = (
        'import importlib.util, time, torch\n'
        f'spec = importlib.util.spec_from_file_location("b", {str(TOOL)!r})\n'
        'm = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n'
        'with m.PeakRSS() as mem:\n'
        '    x = torch.ones(64 * 2 ** 20 // 4); time.sleep(0.2); del x\n'
        'print(mem.growth)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    growth = int(out.stdout.strip().splitlines()[-1])
    assert growth > 48 * 2 ** 20, growth


def test_pool_case_times_the_tiny_geometry():
    cfg = load_config(bench.CONFIGS['piip'])
    vt = cfg.model.view_transform
    res = bench.pool_case(tuple(vt.image_size), vt.downsample, tuple(vt.depth_bins), 16,
                          dict(vt.bev_grid), max_elements=1 << 16, repeats=1)
    assert res['feature_hw'] == [8, 16] and res['depth_bins'] == 52
    # six cameras round the car: a good share of the frustum falls in the +-51.2 m grid
    assert 0.2 * 6 * 52 * 8 * 16 < res['points_in_grid'] <= 6 * 52 * 8 * 16
    assert res['seconds'] > 0 and res['peak_mb'] >= 0


def test_depth_of_an_untrained_detector_is_scored_against_the_lidar(tiny_world):
    model, cfg = bench.build_detector(bench.CONFIGS['piip'], str(tiny_world.root))
    cfg.val_dataloader.dataset.ann_file = str(tiny_world.root / 'nuscenes_infos_val.pkl')
    dm = bench.depth_quality(model, cfg, str(tiny_world.root), max_samples=2)
    assert dm['count'] > 100
    assert 0 < dm['abs_rel'] < 10 and dm['rmse'] > 0 and 0 <= dm['delta1'] <= 1


def test_a_data_root_without_info_files_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match='nuscenes_infos_train.pkl not found'):
        bench.ensure_world(str(tmp_path), str(tmp_path / 'work'), 2)


def test_the_512_preset_runs_the_512x256_pair_without_depth_loss_or_teacher():
    """--preset 512: the 512x256 configs, a 640x360 world, and the no-depth run's options
    give a model without depth loss whose teacher hook keeps the lift on the net's depth."""
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)   # as tools/train.py
    try:
        bench.use_preset('512')
        assert bench.WORLD_SIZE == [640, 360]
        assert bench.CONFIGS['vit'].endswith('bev_det_vit_tiny_512x256_synthetic.py')
        assert bench.CONFIGS['piip_no_depth'] == bench.CONFIGS['piip']
        cfg = load_config(bench.CONFIGS['piip_no_depth'])
        opts = parser.parse_args(['--cfg-options'] + bench.EXTRA_OPTIONS['piip_no_depth'])
        cfg.merge_from_dict(opts.cfg_options)
        assert cfg.model.depth_loss is None
        hook = cfg.custom_hooks[1]
        assert hook.type == 'DepthTeacherForcingHook' and hook.start == 0.0 == hook.end
    finally:
        bench.use_preset('tiny')
    assert bench.CONFIGS['piip'].endswith('bev_det_piip_tiny_synthetic.py')
    assert bench.EXTRA_OPTIONS == {'piip_no_depth': ['model.depth_loss=None']}


def test_children_cpu_seconds_count_a_finished_subprocess():
    before = bench.children_cpu_s()
    subprocess.run([sys.executable, '-c', 'import time\nt = time.process_time()\n'
                    'while time.process_time() - t < 0.5: pass'], check=True, timeout=60)
    assert bench.children_cpu_s() - before >= 0.4
