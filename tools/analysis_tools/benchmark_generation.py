"""Measure the synthetic world generator's speed.

Example::

    python tools/analysis_tools/benchmark_generation.py --image-size 800 450 --num-scenes 1 --samples 5

Prints keyframes per second (a keyframe = 6 camera images + one LiDAR scan, plus its share
of LiDAR sweeps / camera sweeps / 2D exports as configured) and the time split between
camera rendering (ray casting, shading, JPEG, masks, 2D export) and LiDAR (ray casting,
point counting, writing) measured in the same run.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--image-size', type=int, nargs=2, default=(800, 450), metavar=('W', 'H'))
    p.add_argument('--num-scenes', type=int, default=1)
    p.add_argument('--samples', type=int, default=5, help='keyframes per scene')
    p.add_argument('--lidar-sweeps', type=int, default=9, help='LiDAR sweeps per keyframe (9 = 20 Hz)')
    p.add_argument('--camera-sweeps', type=int, default=0)
    p.add_argument('--no-export-2d', action='store_true')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='output folder (default: a temporary folder, removed)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from holodrive.datasets.synthetic import generate_world
    out = args.out or tempfile.mkdtemp(prefix='holodrive_bench_')
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        s = generate_world(out, num_scenes=args.num_scenes, seed=args.seed, samples_per_scene=args.samples,
                           image_size=tuple(args.image_size), lidar_sweeps_per_sample=args.lidar_sweeps,
                           camera_sweeps_per_sample=args.camera_sweeps, export_2d=not args.no_export_2d,
                           progress=False)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    kf = s.num_samples
    other = max(wall - s.camera_seconds - s.lidar_seconds, 0.0)
    w, h = args.image_size
    print(f'image size            : {w}x{h}, {args.num_scenes} scene(s) x {args.samples} keyframes '
          f'({s.camera_images} camera images, {s.lidar_sweeps} LiDAR scans incl. sweeps)')
    print(f'total wall time       : {wall:.2f} s  ->  {kf / wall:.3f} keyframes/s '
          f'({wall / kf:.3f} s per keyframe, all included)')
    print(f'process CPU time      : {cpu:.2f} s (wall > CPU means the machine was busy with other work)')
    print(f'camera time           : {s.camera_seconds:.2f} s ({100 * s.camera_seconds / wall:.1f} %), '
          f'{s.camera_seconds / max(s.camera_images, 1) * 1000:.1f} ms per image, '
          f'{s.camera_seconds / max(s.camera_images, 1) * 6:.3f} s per 6-camera frame')
    print(f'LiDAR time            : {s.lidar_seconds:.2f} s ({100 * s.lidar_seconds / wall:.1f} %), '
          f'{s.lidar_seconds / max(s.lidar_sweeps, 1) * 1000:.1f} ms per scan')
    print(f'other (layout, agents, map, tables): {other:.2f} s ({100 * other / wall:.1f} %)')
    kf_only = s.camera_seconds / max(s.camera_images, 1) * 6 + s.lidar_seconds / max(s.lidar_sweeps, 1)
    print(f'keyframe render cost  : {kf_only:.3f} s (6 cameras + 1 LiDAR scan) -> {1 / kf_only:.2f} keyframes/s')
    return s


if __name__ == '__main__':
    main()
