"""The benchmark scripts run and report what they claim (small sizes)."""
import pickle
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_memory_benchmark_builds_world_infos_and_reports_both_sizes(tiny_world, tmp_path):
    sys.path.insert(0, str(ROOT / 'tools' / 'analysis_tools'))
    from benchmark_dataset_memory import write_world_infos

    dst = tmp_path / 'infos.pkl'
    write_world_infos(str(tiny_world.infos['train']), str(dst), num_records=7, samples_per_scene=3)
    with open(dst, 'rb') as f:
        records = pickle.load(f)['data_list']  # written by this test
    assert [r['token'] for r in records] == [f'tok{i}' for i in range(7)]
    assert [r['prev'] for r in records[:4]] == ['', 'tok0', 'tok1', '']
    assert [r['next'] for r in records[4:]] == ['tok5', '', '']  # scenes end at 2, 5, 6
    assert len({r['scene_token'] for r in records}) == 3

    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark_dataset_memory.py', '--scenes', '1', '3',
         '--samples-per-scene', '2', '--loaders', 'stream', '--info', str(tiny_world.infos['train'])],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith('stream ')]
    assert [(r[1], r[2]) for r in rows] == [('1', '2'), ('3', '6')]
    assert 'stream: 3-scene / 1-scene  peak RSS x' in proc.stdout


def test_generation_benchmark_reports_its_split(capsys):
    sys.path.insert(0, str(ROOT / 'tools' / 'analysis_tools'))
    from benchmark_generation import main

    s = main(['--num-scenes', '1', '--samples', '1', '--image-size', '64', '36', '--lidar-sweeps', '1',
              '--camera-sweeps', '1', '--no-export-2d'])
    out = capsys.readouterr().out
    assert s.num_samples == 1 and s.camera_images == 12 and s.lidar_sweeps == 2
    for key in ('keyframes/s', 'camera time', 'LiDAR time', 'process CPU time', 'keyframe render cost'):
        assert key in out
