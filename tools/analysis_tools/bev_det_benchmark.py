"""Camera BEV detection: tiny PIIP vs the tiny ViT baseline, and depth supervision on / off,
trained and scored in one run (issue 7).

    python tools/analysis_tools/bev_det_benchmark.py [--data-root DIR] [--num-scenes 20]
        [--epochs N] [--seed 0] [--work-dir work_dirs/bev_det_benchmark] [--reuse]
        [--runs piip vit piip_no_depth] [--preset tiny|512] [--out FILE.json]
        [--plot FILE.png] [--pool-only]

Presets (``--preset``): ``tiny`` (default) the 256 x 128 configs
``bev_det_{piip,vit}_tiny_synthetic.py`` on a 320 x 180 world; ``512`` the teacher-forced
512 x 256 configs ``bev_det_{piip,vit}_tiny_512x256_synthetic.py`` on a 640 x 360 world, whose
run without depth supervision also turns the LiDAR teacher of the lift off
(``custom_hooks.1.start=0.0``: the lift uses the net's depth from the first iteration).

Stages (one log line each, ``[bev_det_benchmark  T s]``):

1. data: ``--data-root DIR`` must hold ``nuscenes_infos_{train,val}.pkl`` of a world
   (``tools/create_data.py synthetic``); without it a world of ``--num-scenes`` scenes
   (the preset's camera size, 20 keyframes each, 80 % train) is generated, or reused, under
   ``WORK/world``;
2. train with ``tools/train.py`` (same epochs, seed and data; the cosine schedule ends at
   ``--epochs``, no validation during training), each run in a subprocess: ``piip`` (the tiny
   PIIP config), ``vit`` (the single-branch baseline of about the same backbone FLOPs) and
   ``piip_no_depth`` (the PIIP config with ``model.depth_loss=None``); wall and CPU minutes
   of each training (its process tree, ``getrusage``) are kept in ``WORK/RUN/train_time.json``
   so that ``--reuse`` reports them too (runs trained by parallel invocations on one work dir
   are merged by a last ``--reuse`` call);
3. score each final checkpoint with ``tools/test.py`` (devkit ``NuScenesMetric``: mAP, NDS,
   car AP = mean over the 4 distance thresholds);
4. depth of each model against the LiDAR on the val split (``ProjectLidarDepth`` at the view
   transform's stride: AbsRel, RMSE, delta < 1.25 of the expected depth, cells with points);
5. backbone MACs (``piip_det.flops``, 1 x 3 x H x W network input, paper convention and as
   built) and CPU images/s of full-model inference (``test_step`` on one val sample of 6
   views, rounds alternating between the models, median);
6. ``bev_pool`` forward + backward time and peak memory for 6 cameras at the tiny size (the
   PIIP config's geometry) and a full size (1600 x 640 input, stride 16, 118 depth bins of
   0.5 m, 80 channels, 128 x 128 BEV), with the default chunk bound and a 16x smaller one.
   Peak memory on CPU is the largest resident-set growth seen by a 1 ms sampler thread
   during the call (``/proc/self/statm``, glibc mmap threshold fixed at 128 KiB); on CUDA
   ``torch.cuda.max_memory_allocated``.

Prints both tables (PIIP / baseline ratios; depth on / off), writes every number to ``--out``
(JSON) and a chart to ``--plot`` (PNG).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_utils import (PeakRSS, build_detector, class_ap, elapsed_s,  # noqa: E402
                         interleaved_seconds, log, parse_test_output, run_tool, set_log_name)

set_log_name('bev_det_benchmark')
_CFG = osp.join(ROOT, 'configs', 'bev_det', 'bev_det_{}_tiny{}_synthetic.py')
PRESETS = {
    'tiny': dict(configs={'piip': _CFG.format('piip', ''), 'vit': _CFG.format('vit', ''),
                          'piip_no_depth': _CFG.format('piip', '')},
                 options={'piip_no_depth': ['model.depth_loss=None']},
                 world_size=(320, 180)),
    '512': dict(configs={'piip': _CFG.format('piip', '_512x256'),
                         'vit': _CFG.format('vit', '_512x256'),
                         'piip_no_depth': _CFG.format('piip', '_512x256')},
                options={'piip_no_depth': ['model.depth_loss=None', 'custom_hooks.1.start=0.0']},
                world_size=(640, 360)),
}
CONFIGS = dict(PRESETS['tiny']['configs'])        # the runs of the active preset
EXTRA_OPTIONS = dict(PRESETS['tiny']['options'])
WORLD_SIZE = list(PRESETS['tiny']['world_size'])


def use_preset(name):
    """Make ``name`` the active preset (the configs, options and world size of the runs)."""
    preset = PRESETS[name]
    CONFIGS.clear()
    CONFIGS.update(preset['configs'])
    EXTRA_OPTIONS.clear()
    EXTRA_OPTIONS.update(preset['options'])
    WORLD_SIZE[:] = preset['world_size']


FULL_POOL = dict(image_size=(640, 1600), downsample=16, depth_bins=(1.0, 60.0, 0.5),
                 channels=80, bev_grid=dict(x_range=(-51.2, 51.2), y_range=(-51.2, 51.2),
                                            resolution=0.8))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', help='a synthetic world with its info files (default: '
                   'generate one under WORK/world)')
    p.add_argument('--num-scenes', type=int, default=20, help='scenes of a generated world')
    p.add_argument('--work-dir', default='work_dirs/bev_det_benchmark')
    p.add_argument('--runs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument('--preset', default='tiny', choices=list(PRESETS),
                   help='the configs of the runs: tiny (256 x 128) or 512 (512 x 256)')
    p.add_argument('--epochs', type=int, default=None,
                   help='training epochs of every run (default: the config\'s)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--repeats', type=int, default=5, help='timed rounds per measurement')
    p.add_argument('--depth-samples', type=int, default=None,
                   help='val samples of the depth evaluation (default: all)')
    p.add_argument('--reuse', action='store_true',
                   help='reuse checkpoints and metrics already in the work dir')
    p.add_argument('--pool-only', action='store_true', help='only stage 6 (bev_pool)')
    p.add_argument('--out', help='JSON of all numbers (default WORK/bev_det_benchmark.json)')
    p.add_argument('--plot', help='chart PNG (default: the JSON path with .png)')
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- data
def info_files(root):
    return [osp.join(root, f'nuscenes_infos_{s}.pkl') for s in ('train', 'val')]


def ensure_world(data_root, work_dir, num_scenes, seed=0):
    """The world's root: ``data_root`` (checked) or one generated under ``WORK/world``."""
    from holodrive.engine.cli import UserFileNotFoundError
    if data_root:
        missing = [f for f in info_files(data_root) if not osp.isfile(f)]
        if missing:
            raise UserFileNotFoundError(
                f'--data-root {data_root}: {missing[0]} not found; make a world with '
                f'tools/create_data.py synthetic --root-path {data_root}, or omit --data-root')
        return osp.abspath(data_root)
    root = osp.abspath(osp.join(work_dir, 'world'))
    if all(osp.isfile(f) for f in info_files(root)):
        log(f'data: reusing the synthetic world {root}')
        return root
    w, h = WORLD_SIZE
    log(f'data: generating a synthetic world in {root} ({num_scenes} scenes, {w} x {h})')
    run_tool('create_data', ['synthetic', '--root-path', root, '--num-scenes', str(num_scenes),
                             '--seed', str(seed), '--image-size', str(w), str(h)],
             osp.join(work_dir, 'create_data.log'))
    return root


# ----------------------------------------------------------------------------- train / test
def epoch_overrides(cfg, epochs):
    """``--cfg-options`` giving ``cfg`` ``epochs`` epochs without validation: every scheduler
    that ends at the config's ``max_epochs`` (and its ``T_max``) ends at ``epochs``."""
    old = cfg.train_cfg.max_epochs
    opts = [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs + 1}']
    for i, sched in enumerate(cfg.get('param_scheduler') or []):
        if sched.get('end') == old:
            opts.append(f'param_scheduler.{i}.end={epochs}')
            if sched.get('T_max') == old:
                opts.append(f'param_scheduler.{i}.T_max={epochs}')
    return opts


def headline(metrics):
    short = {k.rsplit('/', 1)[-1]: v for k, v in metrics.items()}
    return dict(mAP=short.get('mAP'), NDS=short.get('NDS'), car_AP=class_ap(metrics))


def children_cpu_s():
    """User + system CPU seconds of the finished child processes (and theirs)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def train_and_test(tag, root, work_dir, epochs, seed, reuse=False):
    """Train run ``tag`` and score it; ``(checkpoint, metrics, {'wall_s', 'cpu_s'} of the
    training, or None when it was neither run nor recorded)``."""
    from holodrive.engine.config_check import load_config
    config = CONFIGS[tag]
    cfg = load_config(config)
    epochs = epochs or cfg.train_cfg.max_epochs
    work = osp.join(work_dir, tag)
    data = [f'data_root={root}/', f'randomness.seed={seed}'] + EXTRA_OPTIONS.get(tag, [])
    ckpt = osp.join(work, f'epoch_{epochs}.pth')
    timing, timing_file, trained = None, osp.join(work, 'train_time.json'), False
    if not (reuse and osp.isfile(ckpt)):
        log(f'train {tag}: {osp.relpath(config, ROOT)} {" ".join(EXTRA_OPTIONS.get(tag, []))}'
            f' {epochs} epochs, seed {seed}')
        t, cpu = time.perf_counter(), children_cpu_s()
        run_tool('train', [config, '--work-dir', work, '--cfg-options'] + data +
                 epoch_overrides(cfg, epochs) + [f'visualizer.name=bev_bench_{tag}_train'],
                 osp.join(work, 'train.log'))
        timing = dict(wall_s=time.perf_counter() - t, cpu_s=children_cpu_s() - cpu,
                      epochs=epochs)
        with open(timing_file, 'w') as f:
            json.dump(timing, f)
        trained = True
        log(f'train {tag}: {timing["wall_s"] / 60:.1f} min wall, '
            f'{timing["cpu_s"] / 60:.1f} CPU-min')
    elif osp.isfile(timing_file):
        with open(timing_file) as f:
            timing = json.load(f)
    metrics_log = osp.join(work, 'test', 'test.log')
    if reuse and not trained and osp.isfile(metrics_log):
        with open(metrics_log) as f:
            text = f.read()
    else:
        log(f'test {tag}: tools/test.py {osp.basename(ckpt)} (devkit NuScenesMetric)')
        argv = [config, ckpt, '--work-dir', osp.join(work, 'test'), '--cfg-options'] + data
        text = run_tool('test', argv + [f'visualizer.name=bev_bench_{tag}_test'], metrics_log)
    metrics = parse_test_output(text)
    log(f'test {tag}: ' + '  '.join(
        f'{k} {v:.4f}' for k, v in headline(metrics).items() if v is not None))
    return ckpt, metrics, timing


# ----------------------------------------------------------------------------- depth
def depth_dataset(cfg, root):
    """The val split with the test pipeline plus the LiDAR depth at the transform's stride."""
    from holodrive.registry import DATASETS
    stride = cfg.model.view_transform.downsample
    pipeline = [t for t in cfg.test_pipeline if t['type'] != 'PackSceneInputs']
    pipeline.insert(1, dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5))
    pipeline += [dict(type='ProjectLidarDepth', strides=(stride,), full_res=False),
                 dict(type='PackSceneInputs', keys=['img', f'depth_s{stride}'])]
    ds_cfg = cfg.val_dataloader.dataset.copy()
    ds_cfg.update(data_root=f'{root}/', pipeline=pipeline)
    return DATASETS.build(ds_cfg), stride


def depth_quality(model, cfg, root, max_samples=None):
    """AbsRel / RMSE / delta1 of the expected depth over all val cells with LiDAR points."""
    import torch
    from mmengine.dataset import pseudo_collate

    from holodrive.models.view_transforms.depth_loss import depth_metrics, expected_depth
    dataset, stride = depth_dataset(cfg, root)
    n = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    preds, gts = [], []
    with torch.no_grad():
        for i in range(n):
            data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
            out = model.camera_bev(data['inputs'], data['data_samples'])
            preds.append(expected_depth(out['depth_probs'],
                                        model.view_transform.depth_centres).flatten())
            gts.append(torch.as_tensor(data['inputs'][f'depth_s{stride}']).flatten())
    return depth_metrics(torch.cat(preds), torch.cat(gts))


# ----------------------------------------------------------------------------- speed / pool
def backbone_gmacs(cfg):
    """Image-backbone GMACs of one ``1 x 3 x H x W`` network input (``piip_det.flops``):
    ``macs_paper`` (the paper's convention) and ``macs_as_built``."""
    import piip_det.models  # noqa: F401
    import piip_det.models.vit_baseline  # noqa: F401  (registers ViTBaseline)
    from piip_det.flops import build_backbone, count_backbone
    h, w = cfg.model.view_transform.image_size
    report = count_backbone(build_backbone(cfg.model.img_backbone.to_dict()), (1, 3, h, w))
    return dict(macs_paper=report.paper_total / 1e9, macs_as_built=report.as_built / 1e9)


def inference_speed(models, root, repeats):
    """``{tag: images/s}`` of ``test_step`` on the first val sample (6 views), interleaved."""
    import torch
    from mmengine.dataset import pseudo_collate
    from holodrive.registry import DATASETS
    fns, views = {}, None
    for tag, (model, cfg) in models.items():
        ds_cfg = cfg.val_dataloader.dataset.copy()
        ds_cfg.update(data_root=f'{root}/')
        batch = pseudo_collate([DATASETS.build(ds_cfg)[0]])
        views = batch['inputs']['img'][0].shape[0]

        def step(model=model, batch=batch):
            with torch.no_grad():
                model.test_step(batch)
        fns[tag] = step
    secs = interleaved_seconds(fns, warmup=1, repeats=repeats)
    return {tag: views / s for tag, s in secs.items()}


def pool_case(image_size, downsample, depth_bins, channels, bev_grid, max_elements,
              device='cpu', repeats=3):
    """Time (median s) and peak memory (bytes) of ``bev_pool`` forward + backward for one
    sample of 6 cameras with random geometry-consistent ranks."""
    import torch

    from holodrive.datasets.transforms.bev import BEVGrid
    from holodrive.models.view_transforms.bev_pool import bev_pool, compute_ranks
    from holodrive.models.view_transforms.frustum import feature_size, make_frustum
    h, w = feature_size(image_size, downsample)
    frustum = make_frustum(image_size, downsample, depth_bins).float()   # (D, h, w, 3) u, v, d
    d = frustum.shape[0]
    grid = BEVGrid(**bev_grid)
    # six cameras 60 deg apart, pinhole with a 70 deg horizontal field of view
    fx = image_size[1] / 2 / torch.tan(torch.deg2rad(torch.tensor(35.0)))
    u, v, z = frustum[..., 0], frustum[..., 1], frustum[..., 2]
    x_cam = (u - image_size[1] / 2) * z / fx
    y_cam = (v - image_size[0] / 2) * z / fx
    points = []
    for k in range(6):
        yaw = torch.tensor(k * torch.pi / 3)
        fwd = z * torch.cos(yaw) + x_cam * torch.sin(yaw)
        left = z * torch.sin(yaw) - x_cam * torch.cos(yaw)
        points.append(torch.stack([fwd, left, 1.6 - y_cam], -1))
    points = torch.stack(points)[None].to(device)                       # (1, 6, D, h, w, 3)
    ranks = compute_ranks(points, grid, (-5.0, 3.0))
    depth = torch.rand(1, 6, d, h, w, device=device).softmax(2).requires_grad_()
    feats = torch.randn(1, 6, channels, h, w, device=device, requires_grad=True)

    def run():
        bev_pool(depth, feats, ranks, max_elements).sum().backward()
        if device != 'cpu':
            torch.cuda.synchronize()
    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    if device == 'cpu':
        with PeakRSS() as mem:
            run()
        peak = mem.growth
    else:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        peak = torch.cuda.max_memory_allocated() - base
    return dict(cameras=6, depth_bins=d, feature_hw=[h, w], channels=channels,
                bev_hw=list(grid.shape), points_in_grid=int(len(ranks.ranks_bev)),
                max_elements=int(max_elements), seconds=sorted(times)[len(times) // 2],
                peak_mb=peak / 2 ** 20, device=device)


def pool_benchmark(piip_cfg):
    import torch

    from holodrive.models.view_transforms.bev_pool import DEFAULT_MAX_ELEMENTS
    vt = piip_cfg.model.view_transform
    tiny = dict(image_size=tuple(vt.image_size), downsample=vt.downsample,
                depth_bins=tuple(vt.depth_bins), channels=vt.out_channels,
                bev_grid=dict(vt.bev_grid))
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    out = []
    for name, geo in (('tiny', tiny), ('full', FULL_POOL)):
        for max_el in (DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_ELEMENTS // 16):
            for dev in devices:
                log(f'pool: {name} size, max_elements {max_el}, {dev}')
                out.append(dict(size=name, **pool_case(max_elements=max_el, device=dev, **geo)))
    return out


# ----------------------------------------------------------------------------- report
def _fmt(v, digits=4):
    return '-' if v is None else (f'{v:.{digits}f}' if isinstance(v, float) else str(v))


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def print_tables(res):
    runs = res.get('runs', {})
    if 'piip' in runs and 'vit' in runs:
        p, v = runs['piip'], runs['vit']
        print(f'\nTable 1 ({res.get("preset", "tiny")} preset): tiny PIIP vs tiny ViT baseline '
              '(same data, epochs, seed)')
        print(f'{"":28s} {"PIIP":>10s} {"ViT":>10s} {"PIIP/ViT":>9s}')
        for key, label in (('mAP', 'val mAP'), ('NDS', 'val NDS'), ('car_AP', 'val car AP'),
                           ('macs_paper', 'backbone GMACs (paper)'),
                           ('macs_as_built', 'backbone GMACs (as built)'),
                           ('images_per_s', 'images/s (CPU, full model)'),
                           ('train_min', 'train wall (min)'),
                           ('train_cpu_min', 'train CPU (min)')):
            a, b = p.get(key), v.get(key)
            print(f'{label:28s} {_fmt(a):>10s} {_fmt(b):>10s} {_fmt(ratio(a, b), 3):>9s}')
    if 'piip' in runs and 'piip_no_depth' in runs:
        print(f'\nTable 2 ({res.get("preset", "tiny")} preset): tiny PIIP with and without '
              'depth supervision (val split)')
        print(f'{"":16s} {"AbsRel":>8s} {"RMSE m":>8s} {"d<1.25":>8s} {"mAP":>8s} '
              f'{"NDS":>8s} {"car AP":>8s}')
        for tag, label in (('piip', 'with depth loss'), ('piip_no_depth', 'without')):
            r = runs[tag]
            dm = r.get('depth', {})
            print(f'{label:16s} {_fmt(dm.get("abs_rel"), 3):>8s} {_fmt(dm.get("rmse"), 2):>8s} '
                  f'{_fmt(dm.get("delta1"), 3):>8s} {_fmt(r.get("mAP")):>8s} '
                  f'{_fmt(r.get("NDS")):>8s} {_fmt(r.get("car_AP")):>8s}')
    if res.get('pool'):
        print('\nTable 3: bev_pool forward + backward, one sample of 6 cameras')
        print(f'{"size":5s} {"device":6s} {"D x h x w":>12s} {"C":>4s} {"BEV":>8s} '
              f'{"points":>9s} {"max_elem":>9s} {"ms":>8s} {"peak MB":>8s}')
        for r in res['pool']:
            dhw = f'{r["depth_bins"]}x{r["feature_hw"][0]}x{r["feature_hw"][1]}'
            bev = f'{r["bev_hw"][0]}x{r["bev_hw"][1]}'
            print(f'{r["size"]:5s} {r["device"]:6s} {dhw:>12s} {r["channels"]:>4d} {bev:>8s} '
                  f'{r["points_in_grid"]:>9d} {r["max_elements"]:>9d} '
                  f'{r["seconds"] * 1e3:>8.1f} {r["peak_mb"]:>8.1f}')


def plot(res, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = res.get('runs', {})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    keys = ('mAP', 'NDS', 'car_AP')
    for ax, tags in zip(axes, (('piip', 'vit'), ('piip', 'piip_no_depth'))):
        tags = [t for t in tags if t in runs]
        for k, tag in enumerate(tags):
            vals = [runs[tag].get(key) or 0.0 for key in keys]
            ax.bar([i + 0.4 * k for i in range(len(keys))], vals, width=0.4, label=tag)
        ax.set_xticks([i + 0.2 for i in range(len(keys))], keys)
        ax.set_ylabel('val (devkit)')
        ax.legend()
    axes[0].set_title('PIIP vs ViT baseline')
    axes[1].set_title('depth supervision on / off')
    tags = [t for t in runs if runs[t].get('depth')]
    axes[2].bar(tags, [runs[t]['depth']['abs_rel'] for t in tags])
    axes[2].set_title('depth AbsRel vs LiDAR (val, lower is better)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    use_preset(args.preset)
    from holodrive.engine.cli import import_project
    from holodrive.engine.config_check import load_config
    import_project()
    os.makedirs(args.work_dir, exist_ok=True)
    out_json = args.out or osp.join(args.work_dir, 'bev_det_benchmark.json')
    res = dict(command=' '.join(sys.argv), preset=args.preset, runs={})
    if not args.pool_only:
        root = ensure_world(args.data_root, args.work_dir, args.num_scenes, args.seed)
        res['data_root'] = root
        models = {}
        for tag in args.runs:
            ckpt, metrics, timing = train_and_test(tag, root, args.work_dir, args.epochs,
                                                   args.seed, args.reuse)
            run = dict(headline(metrics), checkpoint=ckpt, metrics=metrics,
                       config=osp.relpath(CONFIGS[tag], ROOT),
                       train_min=timing and timing['wall_s'] / 60,
                       train_cpu_min=timing and timing['cpu_s'] / 60)
            model, cfg = build_detector(CONFIGS[tag], root, ckpt)
            run['options'] = EXTRA_OPTIONS.get(tag, [])
            log(f'depth {tag}: expected depth vs LiDAR on the val split')
            run['depth'] = depth_quality(model, cfg, root, args.depth_samples)
            log(f'depth {tag}: AbsRel {run["depth"]["abs_rel"]:.3f} RMSE '
                f'{run["depth"]["rmse"]:.2f} m over {run["depth"]["count"]} cells')
            run.update(backbone_gmacs(cfg))
            res['runs'][tag] = run
            if tag in ('piip', 'vit'):
                models[tag] = (model, cfg)
        if len(models) == 2:
            log(f'speed: test_step, 1 sample x 6 views, {args.repeats} interleaved rounds')
            for tag, ips in inference_speed(models, root, args.repeats).items():
                res['runs'][tag]['images_per_s'] = ips
    res['pool'] = pool_benchmark(load_config(CONFIGS['piip']))
    res['wall_s'] = elapsed_s()
    with open(out_json, 'w') as f:
        json.dump(res, f, indent=1, default=float)
    png = args.plot or osp.splitext(out_json)[0] + '.png'
    if res['runs']:
        plot(res, png)
    print_tables(res)
    print(f'\nall numbers: {out_json}' + (f'\nchart: {png}' if res['runs'] else ''))
    return res


if __name__ == '__main__':
    main()
