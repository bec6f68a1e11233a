"""Sparse vs dense LiDAR encoder, and generator sampling time.

    python tools/analysis_tools/sparse_encoder_benchmark.py --data-root DIR \
        [--sizes tiny full] [--repeats 3] [--steps 4 8 12] [--out bench.json]

1. For each size (``tiny``: configs/holodrive/lidar/lidar_tokenizer_tiny_synthetic.py;
   ``full``: lidar_tokenizer_nus.py, the reference's 640 x 640 x 64 grid) the encoder's sparse
   stages run on one real sweep of the world (the first val keyframe: a 32-beam sweep, the
   nuScenes density) as spconv sparse convolutions and as the same layers as dense ``conv3d``
   (``SparseBEVEncoder.sparse_stages_dense``, the same weights); prints the occupancy, the
   median forward time of each (interleaved rounds), their ratio, the peak memory growth
   (resident set on CPU, allocator peak on CUDA) and the largest difference of the outputs.
2. Sampling time per sweep of the tiny generator (MaskGIT steps + decoder + ray casting) for
   each ``--steps`` count (an untrained generator: the cost does not depend on the weights).

CPU always; CUDA too when available. Results also go to ``--out`` as JSON.
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from bench_utils import PeakRSS, interleaved_seconds, log, set_log_name  # noqa: E402

CONFIGS = {'tiny': 'configs/holodrive/lidar/lidar_tokenizer_tiny_synthetic.py',
           'full': 'configs/holodrive/lidar/lidar_tokenizer_nus.py'}
GENERATOR = 'configs/holodrive/lidar/lidar_generator_tiny_synthetic.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-root', required=True, help='a world from tools/create_data.py')
    p.add_argument('--sizes', nargs='+', default=['tiny', 'full'], choices=sorted(CONFIGS))
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--steps', nargs='*', type=int, default=[4, 8, 12],
                   help='MaskGIT step counts to time (none: skip)')
    p.add_argument('--devices', nargs='+', default=None, help='default: cpu [+ cuda]')
    p.add_argument('--out', help='write the results as JSON')
    return p.parse_args(argv)


def first_val_sweep(root):
    import mmengine
    import numpy as np
    import torch

    from holodrive.datasets.transforms.loading import read_points_checked
    info = osp.join(root, 'nuscenes_infos_val.pkl')
    if not osp.isfile(info):
        raise SystemExit(f'error: {info} not found: run tools/create_data.py on --data-root')
    rec = mmengine.load(info)['data_list'][0]
    path = osp.join(root, 'samples/LIDAR_TOP', osp.basename(rec['lidar_points']['lidar_path']))
    return torch.from_numpy(np.asarray(read_points_checked(path, 5)).reshape(-1, 5).copy())


def build(config):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import holodrive.models  # noqa: F401
    from holodrive.registry import MODELS
    init_default_scope('holodrive')
    return MODELS.build(Config.fromfile(config).model)


def memory(fn, device):
    import torch
    if device == 'cpu':
        with PeakRSS() as mem:
            fn()
        return mem.growth
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def encoder_case(size, points, device, repeats):
    import torch
    enc = build(CONFIGS[size]).encoder.to(device).eval()
    pts = points.to(device)
    indices = enc.grid.sparse_indices([pts])
    occupancy = enc.grid.occupancy([pts])
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

    def sparse():
        with torch.no_grad():
            out = enc.sparse_stages(indices, 1)
        sync()
        return out

    def dense():
        with torch.no_grad():
            out = enc.sparse_stages_dense(occupancy)
        sync()
        return out

    diff = float((sparse() - dense()).abs().max())
    secs = interleaved_seconds({'sparse': sparse, 'dense': dense}, warmup=1, repeats=repeats)
    row = dict(size=size, device=device, grid_zhw=list(enc.grid.shape),
               occupied_voxels=int(len(indices)),
               occupancy_percent=100.0 * len(indices) / occupancy.numel(),
               sparse_s=secs['sparse'], dense_s=secs['dense'],
               speedup=secs['dense'] / secs['sparse'],
               sparse_peak_mb=memory(sparse, device) / 2 ** 20,
               dense_peak_mb=memory(dense, device) / 2 ** 20, max_abs_diff=diff)
    log(f'{size} on {device}: grid {row["grid_zhw"]}, {row["occupied_voxels"]} voxels '
        f'({row["occupancy_percent"]:.3f}%): sparse {row["sparse_s"] * 1e3:.1f} ms / '
        f'{row["sparse_peak_mb"]:.0f} MB, dense conv3d {row["dense_s"] * 1e3:.1f} ms / '
        f'{row["dense_peak_mb"]:.0f} MB, dense / sparse time {row["speedup"]:.1f}x, '
        f'max |diff| {diff:.2e}')
    return row


def sampling_case(steps_list, device):
    import torch
    gen = build(GENERATOR).to(device).eval()
    layout = torch.zeros(1, gen.transformer.layout_adapter.stem[0].in_channels,
                         *[gen.tokenizer.grid.shape[1]] * 2, device=device)
    layout[:, :, 40:60, 40:90] = 1
    rows = []
    for steps in steps_list:
        def run():
            tokens = gen.sample(layout, num_steps=steps,
                                generator=torch.Generator(device=device).manual_seed(0))
            gen.generate_points(tokens)
        run()
        t = time.perf_counter()
        run()
        rows.append(dict(device=device, steps=steps, seconds_per_sweep=time.perf_counter() - t))
        log(f'sampling on {device}: {steps} steps -> {rows[-1]["seconds_per_sweep"]:.2f} s/sweep')
    return rows


def main(argv=None):
    args = parse_args(argv)
    import torch
    set_log_name('sparse_encoder_benchmark')
    devices = args.devices or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    points = first_val_sweep(args.data_root)
    log(f'sweep: {len(points)} points (first val keyframe of {args.data_root}); '
        f'torch threads {torch.get_num_threads()}')
    results = dict(encoder=[], sampling=[])
    for device in devices:
        for size in args.sizes:
            results['encoder'].append(encoder_case(size, points, device, args.repeats))
        if args.steps:
            results['sampling'] += sampling_case(args.steps, device)
    print('\n| size | device | grid (Z, H, W) | occupied | sparse ms | dense ms | dense/sparse '
          '| sparse MB | dense MB |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in results['encoder']:
        print(f'| {r["size"]} | {r["device"]} | {tuple(r["grid_zhw"])} | '
              f'{r["occupancy_percent"]:.3f}% | {r["sparse_s"] * 1e3:.1f} | '
              f'{r["dense_s"] * 1e3:.1f} | {r["speedup"]:.1f}x | {r["sparse_peak_mb"]:.0f} | '
              f'{r["dense_peak_mb"]:.0f} |')
    if results['sampling']:
        print('\n| device | MaskGIT steps | s / sweep |\n|---|---|---|')
        for r in results['sampling']:
            print(f'| {r["device"]} | {r["steps"]} | {r["seconds_per_sweep"]:.2f} |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
