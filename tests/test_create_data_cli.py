"""tools/create_data.py: info files for an existing nuScenes-format release, clear errors."""
import pickle
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_nuscenes_subcommand_writes_infos(tiny_world, tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/create_data.py', 'nuscenes', '--root-path', str(tiny_world.root),
         '--version', tiny_world.version, '--out-dir', str(tmp_path), '--max-sweeps', '3'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for split in ('train', 'val'):
        with open(tmp_path / f'nuscenes_infos_{split}.pkl', 'rb') as f:
            infos = pickle.load(f)  # written by this test itself
        assert infos['metainfo']['version'] == tiny_world.version
        assert infos['data_list'] and all(len(i['lidar_sweeps']) <= 3 for i in infos['data_list'])


def test_nuscenes_subcommand_without_tables_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/create_data.py', 'nuscenes', '--root-path', str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'nuScenes tables not found' in lines[0] and str(tmp_path) in lines[0]
