"""Measure how dataset memory grows with the size of the world: streamed vs in-memory.

Example::

    python tools/analysis_tools/benchmark_dataset_memory.py --scenes 10 500

Builds info files of ``scenes x samples-per-scene`` keyframe records by repeating the real
records of a small synthetic world (or of ``--info PKL``) under new tokens, then constructs,
each in a fresh process, our streamed ``NuScenesSceneDataset`` and mmdet3d's
``NuScenesDataset`` (which unpickles every record and re-serialises the list in RAM) on the
same file, and reads 100 random items from each. Printed side by side: resident memory
(RSS, MiB) added by building the dataset and peak RSS of the process, and the ratio of the
largest to the smallest world for each loader.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))

_CHILD = r'''
import json, os, sys, numpy as np
sys.path.insert(0, sys.argv[4])
def rss():
    with open('/proc/self/status') as f:
        fields = dict(line.split(':', 1) for line in f)
    return int(fields['VmRSS'].split()[0]) / 1024, int(fields['VmHWM'].split()[0]) / 1024
import holodrive.registry  # noqa: F401  (imports mmdet3d, applies the compat fixes)
from holodrive.datasets import NuScenesSceneDataset
from holodrive.datasets.scene_dataset import NUSCENES_DATA_PREFIX
from mmdet3d.datasets import NuScenesDataset
kind, root, pkl = sys.argv[1:4]
before, _ = rss()
cls = NuScenesSceneDataset if kind == 'stream' else NuScenesDataset
ds = cls(data_root=root, ann_file=pkl, pipeline=[], data_prefix=dict(NUSCENES_DATA_PREFIX),
         modality=dict(use_lidar=True, use_camera=True))
built, _ = rss()
for i in np.random.default_rng(0).integers(0, len(ds), 100):
    ds.get_data_info(int(i))
after, peak = rss()
print(json.dumps(dict(items=len(ds), built=built - before, after=after - before, peak=peak)))
'''


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--scenes', type=int, nargs='+', default=[10, 500],
                   help='world sizes in scenes (default: 10 and 500)')
    p.add_argument('--samples-per-scene', type=int, default=20, help='keyframes per scene')
    p.add_argument('--info', help='info .pkl whose records are repeated (default: a generated '
                                  '2-scene world, 320x180 images, 10 LiDAR sweeps per record)')
    p.add_argument('--loaders', nargs='+', choices=['stream', 'mmdet3d'], default=['stream', 'mmdet3d'])
    return p.parse_args(argv)


def write_world_infos(src_pkl: str, dst_pkl: str, num_records: int, samples_per_scene: int) -> int:
    """Repeat ``src_pkl``'s records under fresh tokens into ``dst_pkl``; returns its bytes."""
    from holodrive.datasets.info_writer import replicate_info_file
    replicate_info_file(src_pkl, dst_pkl, num_records, samples_per_scene)
    return os.path.getsize(dst_pkl)


def measure(kind: str, root: str, pkl: str) -> dict:
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
    proc = subprocess.run([sys.executable, '-c', _CHILD, kind, root, pkl, repo],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{kind} loader failed on {pkl}: {proc.stderr.strip()[-500:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    tmp = tempfile.mkdtemp(prefix='holodrive_membench_')
    try:
        src = args.info
        if src is None:
            from holodrive.datasets.nuscenes_converter import create_nuscenes_infos
            from holodrive.datasets.synthetic import generate_world
            summary = generate_world(os.path.join(tmp, 'world'), num_scenes=2, seed=0,
                                     samples_per_scene=4, image_size=(320, 180),
                                     export_2d=False, progress=False)
            src = str(create_nuscenes_infos(os.path.join(tmp, 'world'), version=summary.version,
                                            progress=False)['train'])
        root = os.path.dirname(os.path.abspath(src))
        rows = {}
        for scenes in args.scenes:
            n = scenes * args.samples_per_scene
            pkl = os.path.join(tmp, f'infos_{scenes}_scenes.pkl')
            size = write_world_infos(src, pkl, n, args.samples_per_scene)
            print(f'{scenes} scenes: {n} records, info file {size / 2**20:.1f} MiB', flush=True)
            if 'stream' in args.loaders:  # the one-time .stream build is not measured
                from holodrive.datasets.streaming import open_info_stream
                open_info_stream(pkl)
            for kind in args.loaders:
                rows[kind, scenes] = measure(kind, root, pkl)
            for path in (pkl, pkl[:-4] + '.stream'):   # keep at most one world on disk
                if os.path.exists(path):
                    os.remove(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f'\n{"loader":<10}{"scenes":>8}{"records":>9}{"built +RSS":>12}{"after 100 reads":>17}'
          f'{"peak RSS":>10}   (MiB)')
    for (kind, scenes), r in rows.items():
        print(f'{kind:<10}{scenes:>8}{r["items"]:>9}{r["built"]:>12.1f}{r["after"]:>17.1f}{r["peak"]:>10.0f}')
    lo, hi = min(args.scenes), max(args.scenes)
    if lo != hi:
        print()
        for kind in args.loaders:
            a, b = rows[kind, lo], rows[kind, hi]
            print(f'{kind}: {hi}-scene / {lo}-scene  peak RSS x{b["peak"] / a["peak"]:.2f}, '
                  f'RSS added x{b["after"] / max(a["after"], 0.1):.2f} '
                  f'({a["after"]:.1f} -> {b["after"]:.1f} MiB)')
        if set(args.loaders) == {'stream', 'mmdet3d'}:
            s, m = rows['stream', hi], rows['mmdet3d', hi]
            print(f'{hi} scenes, mmdet3d / stream: peak RSS x{m["peak"] / s["peak"]:.2f}, '
                  f'RSS added {m["after"]:.0f} vs {s["after"]:.1f} MiB')


if __name__ == '__main__':
    main()
