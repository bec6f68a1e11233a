"""Camera generation benchmark: quality on the val split and sampling cost per frame.

    python tools/analysis_tools/camera_gen_benchmark.py --data-root DIR \
        --vae WORK_VAE/epoch_2.pth --generator WORK_GEN/epoch_3.pth \
        [--work-dir work_dirs/camera_gen_bench] [--limit N] [--steps 10] \
        [--time-schedulers ddim dpm euler unipc] [--time-steps 10 25] [--skip-quality] \
        [--detector WORK_DET/epoch_12.pth [--detector-config CONFIG]]

The checkpoints come from ``tools/train.py`` with the tiny configs (docs/camera_gen.md).

1. Quality (``tools/test.py`` with configs/holodrive/camera/camera_gen_tiny_synthetic.py:
   ``CameraGenMetric``), trained vs untrained denoiser (``--random-init`` with the same trained
   VAE), and their ratios: FID / KID (the seeded InceptionV3 file, sha256 in the protocol
   line), multi-view consistency (epipolar-consistent SIFT matches per neighbour pair,
   generated / real) and the depth branch's AbsRel against LiDAR.
2. Layout fidelity (with ``--detector``): the trained row's test run also saves every val
   keyframe's generated and real views (``CameraGenMetric(save_dir=...)``); each set is warped
   back into the original image frame (inverse ``img_aug_matrix``, the cropped-off border
   mid-grey) and written over the val keyframe images of a copy of the world (symlinks for
   the rest), where the camera 3D detector (default the tiny PIIP BEVDet of
   configs/bev_det/) is scored by ``tools/test.py`` (devkit): mAP, NDS, car AP (mean over the
   4 distance thresholds) on generated vs real views of the same samples, and their ratio.
   The real views make the same round trip, so only the content differs.
3. Sampling one frame (six views) of the first val keyframe per scheduler and step count
   (``MultiViewDrivePipeline``, the config's guidance): wall seconds (median of
   ``--repeats``), the fraction spent outside the denoiser (caption encoder, layout adapter,
   scheduler steps, VAE decode), and the peak resident-memory growth (``PeakRSS``), on this
   machine's CPU with its current thread count.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))   # bench_utils (puts ROOT on the path)

from bench_utils import (ROOT, PeakRSS, class_ap, log, mirror_world,  # noqa: E402
                         parse_test_output, run_test_logged, run_tool,
                         set_log_name)

GENERATOR = osp.join(ROOT, 'configs/holodrive/camera/camera_gen_tiny_synthetic.py')
DETECTOR = osp.join(ROOT, 'configs/bev_det/bev_det_piip_tiny_synthetic.py')
KEYS = ('fid', 'kid_mean', 'mv_gen', 'mv_real', 'mv_ratio', 'depth_abs_rel_real',
        'depth_abs_rel_gen')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-root', required=True)
    p.add_argument('--vae', required=True, help='tiny VAE checkpoint (the untrained row uses it)')
    p.add_argument('--generator', required=True, help='tiny denoiser checkpoint')
    p.add_argument('--work-dir', default='work_dirs/camera_gen_bench')
    p.add_argument('--limit', type=int, help='only the first N val keyframes (smoke runs)')
    p.add_argument('--steps', type=int, help='sampling steps of table 1 (default: the config\'s)')
    p.add_argument('--time-schedulers', nargs='+', default=['ddim', 'dpm', 'euler', 'unipc'])
    p.add_argument('--time-steps', nargs='+', type=int, default=[10, 25])
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--detector', help='camera detector checkpoint: layout fidelity (table 2)')
    p.add_argument('--detector-config', default=DETECTOR)
    p.add_argument('--skip-quality', action='store_true', help='the timing table only')
    p.add_argument('--reuse', action='store_true',
                   help='reuse the scores of table 1 logged by an earlier run in --work-dir')
    return p.parse_args(argv)


def quality(args, tag, ckpt):
    opts = [f'data_root={args.data_root}/', f'model.vae_checkpoint={args.vae}']
    if args.limit:
        opts.append(f'test_dataloader.dataset.indices={args.limit}')
    if args.steps:
        opts.append(f'model.sample_cfg.steps={args.steps}')
    if ckpt and args.detector:
        opts.append(f'test_evaluator.save_dir={_views_dir(args)}')
    argv = [GENERATOR] + ([ckpt] if ckpt else ['--random-init']) + [
        '--work-dir', osp.join(args.work_dir, tag), '--cfg-options', *opts]
    text = run_test_logged(argv, osp.join(args.work_dir, tag, 'test.log'), tag, args.reuse)
    scores = {k.rsplit('/', 1)[-1]: v for k, v in parse_test_output(text).items()}
    protocol = [line.split('CameraGenMetric protocol: ', 1)[1] for line in text.splitlines()
                if 'CameraGenMetric protocol: ' in line]
    log(f'{tag}: ' + ', '.join(f'{k} {scores[k]:.4g}' for k in KEYS if k in scores))
    return scores, protocol[-1] if protocol else ''


def _views_dir(args):
    return osp.abspath(osp.join(args.work_dir, 'trained', 'views'))


def views_world(args, kind):
    """A copy of the world whose val keyframe images are the saved ``kind`` views (``gen`` or
    ``real``), warped back into the original image frame; returns its root."""
    import cv2
    import mmengine
    import numpy as np
    recs = mmengine.load(osp.join(args.data_root, 'nuscenes_infos_val.pkl'))['data_list']
    cams = sorted({cam for rec in recs for cam in rec['images']})
    root = mirror_world(args.data_root, osp.join(args.work_dir, f'world_{kind}'), own=cams)
    for rec in recs:
        path = osp.join(_views_dir(args), f'{rec["token"]}.npz')
        if not osp.isfile(path):
            raise SystemExit(f'error: {path} is missing: the trained test run saves the views '
                             'of every val keyframe (run --detector without --limit / --reuse)')
        with np.load(path, allow_pickle=False) as saved:
            views, augs, names = saved[kind], saved['img_aug_matrix'], list(saved['camera_names'])
        for view, aug, cam in zip(views, augs, names):
            info = rec['images'][cam]
            bgr = cv2.cvtColor(np.ascontiguousarray(view.transpose(1, 2, 0)), cv2.COLOR_RGB2BGR)
            # aug[:2, :3]: original pixel (u, v, 1) -> augmented pixel (no perspective part)
            img = cv2.warpAffine(bgr, aug[:2, :3], (int(info['width']), int(info['height'])),
                                 flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
            cv2.imwrite(osp.join(root, 'samples', cam, info['img_path']), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
    log(f'world_{kind}: {len(recs)} val keyframes x {len(cams)} views written into {root}')
    return root


def fidelity(args):
    """``{kind: dict(mAP, NDS, car_AP)}`` of the detector on the ``real`` / ``gen`` views."""
    rows = {}
    for kind in ('real', 'gen'):
        root = views_world(args, kind)
        work = osp.join(args.work_dir, f'detector_{kind}')
        text = run_tool('test', [args.detector_config, args.detector, '--work-dir', work,
                                 '--cfg-options', f'data_root={osp.abspath(root)}/'],
                        osp.join(work, 'test.log'), in_process=True)
        metrics = parse_test_output(text)
        short = {k.rsplit('/', 1)[-1]: v for k, v in metrics.items()}
        rows[kind] = dict(mAP=short.get('mAP'), NDS=short.get('NDS'), car_AP=class_ap(metrics))
        shown = [f'{k} {v:.4f}' for k, v in rows[kind].items() if v is not None]
        log(f'detector on {kind} views: ' + ', '.join(shown))
    return rows


def timing(args):
    """``{scheduler: {steps: dict(seconds, outside_fraction, peak_rss_mib)}}``."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from holodrive.engine.cli import prepare_config
    from holodrive.models.camera_gen import neighbour_views
    from holodrive.pipelines import MultiViewDrivePipeline, make_scheduler
    from holodrive.registry import DATASETS, MODELS
    init_default_scope('holodrive')
    cfg = prepare_config(GENERATOR, cfg_options={'data_root': f'{args.data_root}/'},
                         check_paths=False)
    cfg.model.vae_checkpoint = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.generator, map_location='cpu', logger='silent')
    model.eval()
    data = model.data_preprocessor(pseudo_collate([DATASETS.build(
        cfg.test_dataloader.dataset)[0]]), training=False)
    inp = data['inputs']
    kw = dict(cam2img=inp['cam2img'], cam2lidar=inp['cam2lidar'],
              img_aug_matrix=inp['img_aug_matrix'], layout_images=inp['layout_images'],
              captions=[data['data_samples'][0].metainfo.get('caption', '')],
              neighbours=neighbour_views(inp['camera_ring'], inp['camera_adjacency']),
              guidance_scale=float(model.sample_cfg['guidance_scale']))
    spent = [0.0]

    def pre(*_):
        spent.append(time.perf_counter())

    def post(*_):
        spent[0] += time.perf_counter() - spent.pop()
    hooks = [model.denoiser.register_forward_pre_hook(pre),
             model.denoiser.register_forward_hook(post)]
    table = {}
    for name in args.time_schedulers:
        for steps in args.time_steps:
            pipe = MultiViewDrivePipeline.from_model(
                model, scheduler=make_scheduler(name, model.scheduler.config))
            runs = []
            for _ in range(args.repeats):
                spent[0] = 0.0
                with PeakRSS() as mem, torch.no_grad():
                    t0 = time.perf_counter()
                    pipe(num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
                         **kw)
                    wall = time.perf_counter() - t0
                runs.append((wall, 1 - spent[0] / wall, mem.growth / 2 ** 20))
            row = dict(seconds=statistics.median(r[0] for r in runs),
                       outside_fraction=statistics.median(r[1] for r in runs),
                       peak_rss_mib=max(r[2] for r in runs))
            table.setdefault(name, {})[steps] = row
            log(f'timing {name} {steps} steps: {row["seconds"]:.2f} s/frame, '
                f'{100 * row["outside_fraction"]:.1f} % outside the denoiser, peak RSS '
                f'+{row["peak_rss_mib"]:.0f} MiB')
    for h in hooks:
        h.remove()
    return table


def main(argv=None):
    args = parse_args(argv)
    set_log_name('camera_gen_bench')
    import torch
    os.makedirs(args.work_dir, exist_ok=True)
    res = dict(threads=torch.get_num_threads())
    if not args.skip_quality:
        trained, protocol = quality(args, 'trained', args.generator)
        untrained, _ = quality(args, 'untrained', None)
        res.update(trained=trained, untrained=untrained, protocol=protocol)
        if args.detector:
            if args.limit:
                raise SystemExit('error: --detector scores the whole val split (the devkit '
                                 'needs every keyframe): drop --limit')
            res['fidelity'] = fidelity(args)
    res['timing'] = timing(args)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(res, f, indent=1)
    if not args.skip_quality:
        print(f'\nprotocol: {res["protocol"]}\n')
        print('| val split | FID | KID | multi-view gen / real | depth AbsRel real / gen |')
        print('|---|---|---|---|---|')
        for tag in ('trained', 'untrained'):
            s = res[tag]
            print(f'| {tag} | {s["fid"]:.4g} | {s["kid_mean"]:.4g} | {s.get("mv_gen", 0):.2f} / '
                  f'{s.get("mv_real", 0):.2f} | {s.get("depth_abs_rel_real", float("nan")):.3f} '
                  f'/ {s.get("depth_abs_rel_gen", float("nan")):.3f} |')
        t, u = res['trained'], res['untrained']
        print(f'| trained / untrained | {t["fid"] / max(u["fid"], 1e-12):.3f} | '
              f'{t["kid_mean"] / max(u["kid_mean"], 1e-12):.3f} | '
              f'{t.get("mv_ratio", 0):.3f} vs {u.get("mv_ratio", 0):.3f} (gen / real) | |')
    if res.get('fidelity'):
        real, gen = res['fidelity']['real'], res['fidelity']['gen']
        print(f'\n| detector ({osp.basename(args.detector_config)}) on val | mAP | NDS | car AP |')
        print('|---|---|---|---|')
        for tag, row in (('real views', real), ('generated views', gen)):
            print(f'| {tag} | ' + ' | '.join(f'{row[k]:.4f}' for k in ('mAP', 'NDS', 'car_AP'))
                  + ' |')
        print('| generated / real | ' + ' | '.join(
            f'{gen[k] / real[k]:.3f}' if real[k] else 'n/a (real 0)'
            for k in ('mAP', 'NDS', 'car_AP')) + ' |')
    print(f'\n| scheduler | steps | s / frame ({res["threads"]} threads) | outside the '
          'denoiser | peak RSS growth |')
    print('|---|---|---|---|---|')
    for name, rows in res['timing'].items():
        for steps, row in rows.items():
            print(f'| {name} | {steps} | {row["seconds"]:.2f} | '
                  f'{100 * row["outside_fraction"]:.1f} % | {row["peak_rss_mib"]:.0f} MiB |')
    log(f'results: {osp.join(args.work_dir, "results.json")}')


if __name__ == '__main__':
    main()
