"""The tiny CenterPoint on the tiny world: train, kill -9, resume, evaluate, 2-process DDP."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from holodrive.compat import apply_runtime_fixes

apply_runtime_fixes()
ROOT = Path(__file__).resolve().parents[1]
TINY = 'configs/centerpoint/centerpoint_tiny_synthetic.py'
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')


def _data_opts(root):
    root = f'{root}/'
    info = f'{root}nuscenes_infos_val.pkl'
    return ['--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}', f'test_dataloader.dataset.data_root={root}',
            f'val_evaluator.data_root={root}', f'val_evaluator.ann_file={info}',
            f'test_evaluator.data_root={root}', f'test_evaluator.ann_file={info}',
            'train_cfg.max_epochs=3', 'train_cfg.val_interval=100', 'param_scheduler.1.T_max=3',
            'param_scheduler.1.end=3', 'train_dataloader.num_workers=0']


def _train(work, world, *extra):
    return [sys.executable, 'tools/train.py', TINY, '--work-dir', str(work), *extra,
            *_data_opts(world.root)]


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.fixture(scope='module')
def full_run(tiny_world, tmp_path_factory):
    work = tmp_path_factory.mktemp('cp_full')
    proc = subprocess.run(_train(work, tiny_world), cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def test_sigkill_then_resume_gives_identical_weights(tiny_world, full_run, tmp_path):
    work = tmp_path / 'killed'
    proc = subprocess.Popen(_train(work, tiny_world), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (work / 'epoch_1.pth').exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # let it get into epoch 2 (or into writing a checkpoint)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work / 'epoch_3.pth').exists(), 'the run finished before it was killed'
    resumed = subprocess.run(_train(work, tiny_world, '--resume'), cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch:' in resumed.stdout + resumed.stderr
    full, again = _weights(full_run / 'epoch_3.pth'), _weights(work / 'epoch_3.pth')
    assert full.keys() == again.keys()
    for k in full:
        assert torch.equal(full[k], again[k]), k


def test_test_tool_reports_devkit_metrics(tiny_world, full_run, tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', TINY, str(full_run / 'epoch_3.pth'), '--work-dir',
         str(tmp_path), *_data_opts(tiny_world.root)],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert 'NuScenes metric/pred_instances_3d_NuScenes/mAP' in out  # devkit evaluator ran
    summary = [line for line in proc.stdout.splitlines() if line.startswith('result: ')]
    assert len(summary) == 2, proc.stdout[-2000:]
    assert summary[0].startswith('result: mAP ') and ' NDS ' in summary[0]
    assert summary[1].startswith('result: class AP  car: ')
    saved = list(tmp_path.glob('*/metrics.json'))
    assert len(saved) == 1
    metrics = json.loads(saved[0].read_text())
    for key in ('mAP', 'NDS', 'car_AP_dist_2.0'):
        value = metrics[f'NuScenes metric/pred_instances_3d_NuScenes/{key}']
        assert 0.0 <= value <= 1.0


def test_dist_train_runs_tiny_detector_on_two_processes(tiny_world, tmp_path):
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY, '2', '--work-dir', str(tmp_path),
         *_data_opts(tiny_world.root), 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=1'],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env=dict(ENV, PORT=str(29900 + os.getpid() % 90), PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / 'epoch_1.pth').exists()
    assert 'GPU number: 2' in proc.stdout + proc.stderr  # mmengine's name for world size
