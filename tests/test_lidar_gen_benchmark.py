"""The LiDAR generation benchmark end to end on the tiny world with untrained checkpoints
(two keyframes, one MaskGIT step): every table is printed and the generated world is real."""
import json
import os
import subprocess
import sys
from pathlib import Path

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint

import holodrive.models  # noqa: F401
from holodrive.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))


def _random_checkpoint(config, path, scope='holodrive'):
    from holodrive.engine.cli import import_project
    import_project()
    import mmdet.utils
    mmdet.utils.register_all_modules(init_default_scope=False)
    init_default_scope(scope)
    model = MODELS.build(Config.fromfile(str(ROOT / config)).model)
    save_checkpoint(model.state_dict(), str(path))
    init_default_scope('holodrive')
    return path


def test_benchmark_prints_all_three_tables(tiny_world, tmp_path):
    lidar = 'configs/holodrive/lidar/'
    tok = _random_checkpoint(lidar + 'lidar_tokenizer_tiny_synthetic.py', tmp_path / 'tok.pth')
    gen = _random_checkpoint(lidar + 'lidar_generator_tiny_synthetic.py', tmp_path / 'gen.pth')
    cp = _random_checkpoint('configs/centerpoint/centerpoint_tiny_synthetic.py',
                            tmp_path / 'cp.pth')
    work = tmp_path / 'bench'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/lidar_gen_benchmark.py', '--data-root',
         str(tiny_world.root), '--tokenizer', str(tok), '--generator', str(gen),
         '--centerpoint', str(cp), '--work-dir', str(work), '--limit', '2', '--num-steps', '1'],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for header in ('| val split | voxel IoU', '| trained / untrained', '| CenterPoint on',
                   '| generated sweeps |'):
        assert header in proc.stdout, proc.stdout[-3000:]
    res = json.loads((work / 'results.json').read_text())
    assert 0 <= res['tokenizer']['voxel_iou'] <= 1
    generated = list((work / 'generated_world' / 'samples' / 'LIDAR_TOP').glob('*.bin'))
    assert len(generated) == 2
    assert not (work / 'generated_world' / 'samples' / 'LIDAR_TOP').is_symlink()
    infos = __import__('mmengine').load(str(work / 'generated_world' / 'nuscenes_infos_val.pkl'))
    assert len(infos['data_list']) == 2 and all(not r['lidar_sweeps'] for r in infos['data_list'])
    recall = res['fidelity']['generated']['recall_2m']['car']
    assert recall[1] > 0                                       # cars were counted
