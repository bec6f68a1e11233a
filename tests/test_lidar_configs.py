"""The LiDAR generator configs: full sizes match the reference's shapes (built without
training), the tiny ones stay CPU-sized; the benchmark and tools/generate.py run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import holodrive.models  # noqa: F401
from holodrive.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
LIDAR = ROOT / 'configs/holodrive/lidar'
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))


def test_full_tokenizer_has_the_reference_grid_and_codebook():
    init_default_scope('holodrive')
    cfg = Config.fromfile(str(LIDAR / 'lidar_tokenizer_nus.py'))
    tok = MODELS.build(cfg.model)
    assert tok.grid.shape == (64, 640, 640)                     # 0.15625 m, z 0.125 m
    assert tok.token_shape == (80, 80)                          # 6400 tokens
    assert (tok.quantizer.num_codes, tok.quantizer.code_dim) == (2048, 1024)
    assert cfg.model.occupancy_loss_weight == 100 and cfg.model.vq_loss_weight == 10
    assert cfg.optim_wrapper.dtype == 'bfloat16'


def test_full_generator_matches_the_reference_transformer():
    init_default_scope('holodrive')
    cfg = Config.fromfile(str(LIDAR / 'lidar_generator_nus.py')).model
    assert cfg.tokenizer.quantizer.num_codes == 2048 and 'bev_stages' in cfg.tokenizer.encoder
    with torch.device('meta'):                                 # ~0.5 B parameters: no memory
        net = MODELS.build(dict(cfg.transformer, num_codes=2048, token_shape=(80, 80)))
    assert (net.depth, net.embed_dim, net.layers[0].self_attn.num_heads) == (24, 1280, 40)
    assert sum(p.numel() for p in net.parameters()) > 4e8
    assert cfg.num_steps == 50


def test_tiny_configs_are_cpu_sized():
    init_default_scope('holodrive')
    gen = MODELS.build(Config.fromfile(str(LIDAR / 'lidar_generator_tiny_synthetic.py')).model)
    assert gen.tokenizer.grid.shape == (16, 128, 128) and gen.tokenizer.token_shape == (32, 32)
    assert sum(p.numel() for p in gen.parameters()) < 5e6


def test_sparse_encoder_benchmark_prints_the_table(tiny_world, tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, 'tools/analysis_tools/sparse_encoder_benchmark.py',
                           '--data-root', str(tiny_world.root), '--sizes', 'tiny',
                           '--repeats', '1', '--steps', '1', '--out', str(out)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| tiny | cpu |' in proc.stdout and 'MaskGIT steps' in proc.stdout
    res = json.loads(out.read_text())
    (row,) = res['encoder']
    assert row['max_abs_diff'] < 1e-4 and row['sparse_s'] > 0 and row['dense_s'] > 0
    assert 0 < row['occupancy_percent'] < 5
    assert res['sampling'][0]['seconds_per_sweep'] > 0


def _write_generator_checkpoint(path):
    from mmengine.runner import save_checkpoint
    init_default_scope('holodrive')
    gen = MODELS.build(Config.fromfile(str(LIDAR / 'lidar_generator_tiny_synthetic.py')).model)
    save_checkpoint(gen.state_dict(), str(path))


@pytest.fixture(scope='module')
def generator_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp('gen') / 'untrained.pth'
    _write_generator_checkpoint(path)
    return path


def _generate(*args):
    return subprocess.run([sys.executable, 'tools/generate.py', '--modality', 'lidar',
                           str(LIDAR / 'lidar_generator_tiny_synthetic.py'), *map(str, args),
                           '--num-steps', '2'],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def test_generate_from_a_sample_writes_a_loadable_sweep_and_pictures(tiny_world, tmp_path,
                                                                     generator_ckpt):
    proc = _generate(generator_ckpt, '--data-root', tiny_world.root, '--sample-idx', 0,
                     '--out-dir', tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'MaskGIT steps' in proc.stderr                       # the progress bar
    (sweep,) = tmp_path.glob('*.pcd.bin')
    from nuscenes.utils.data_classes import LidarPointCloud
    assert LidarPointCloud.from_file(str(sweep)).points.shape[0] == 4
    assert len(list(tmp_path.glob('*_bev.png'))) == 1
    assert len(list(tmp_path.glob('*_points3d.png'))) == 1


def test_generate_bad_layouts_give_one_line(tmp_path, generator_ckpt, capsys):
    """In-process through run_cli (as the command line runs it): one ``error:`` line, exit 2."""
    import functools
    import importlib.util
    spec = importlib.util.spec_from_file_location('generate_tool', ROOT / 'tools/generate.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    outside = tmp_path / 'outside.json'
    outside.write_text(json.dumps({'boxes': [{'name': 'car', 'center': [300, 0, -1.8],
                                              'size': [4.5, 1.9, 1.6], 'yaw': 0}]}))
    empty = tmp_path / 'empty.json'
    empty.write_text(json.dumps({'boxes': []}))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'boxes': [{'name': 'spaceship', 'center': [1, 0, 0],
                                          'size': [1, 1, 1], 'yaw': 0}]}))
    broken = tmp_path / 'broken.json'
    broken.write_text('{"boxes": [')
    cases = ((outside, 'empty'), (empty, 'empty'), (bad, 'spaceship'), (broken, 'not a layout'))
    for path, words in cases:
        argv = ['--modality', 'lidar', str(LIDAR / 'lidar_generator_tiny_synthetic.py'),
                str(generator_ckpt), '--layout-json', str(path), '--out-dir', str(tmp_path / 'o'),
                '--num-steps', '1']
        with pytest.raises(SystemExit) as exc:
            tool.run_cli(functools.partial(tool.main, argv))
        lines = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and lines[-1].startswith('error: '), lines[-5:]
        assert words in lines[-1], lines[-1]
    good = tmp_path / 'good.json'
    good.write_text(json.dumps({'boxes': [{'name': 'car', 'center': [8, 2, -1.8],
                                           'size': [4.5, 1.9, 1.6], 'yaw': 0.3}]}))
    tool.main(['--modality', 'lidar', str(LIDAR / 'lidar_generator_tiny_synthetic.py'),
               str(generator_ckpt), '--layout-json', str(good), '--out-dir',
               str(tmp_path / 'g'), '--num-steps', '1'])
    assert (tmp_path / 'g' / 'good.pcd.bin').is_file()
