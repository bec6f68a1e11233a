"""Tiny PIIP vs its single-branch ViT baseline, trained and evaluated in one run (issue 6).

    python tools/analysis_tools/piip_benchmark.py [--data-root DIR] [--iters 3000] [--seed 0]
        [--work-dir work_dirs/piip_benchmark] [--out FILE.json] [--plot FILE.png]
        [--no-full-size] [--reuse]

Stages (one log line each, ``[piip_benchmark  T s]``):

1. data: ``--data-root DIR`` must hold the synthetic world's COCO export
   (``DIR/coco/annotations/instances_{train,val}.json``, ``tools/create_data.py synthetic``);
   without ``--data-root`` a small world (5 scenes x 10 keyframes, 320 x 180 cameras: 240 train
   / 60 val images) is generated, or reused, under ``WORK/world``;
2. train both configs with ``tools/train.py`` (same ``--iters``, seed, data; the schedule's
   ``end`` / ``milestones`` scaled to ``--iters``), each in a subprocess;
3. evaluate both with ``tools/test.py`` (mmdet ``CocoMetric``, bbox + segm); the AP numbers
   are read from the ``metrics.json`` it names in its output;
4. backbone MACs of both (:mod:`piip_det.flops`): the paper convention (batch 1, square input
   at the top resolution, backbone up to the light merge) and as built;
5. CPU images/s, interleaved (warm-up, then ``--repeats`` rounds alternating the two models,
   median): backbone forward (fp32 and bf16 autocast, batch ``--batch``, square top
   resolution) and full-model inference (``test_step`` on the first val images);
6. a dense ``torch.mm`` of two ``n x n`` matrices (fp32 and bf16, same thread count) as the
   machine's practical peak; each backbone's achieved GFLOP/s = 2 x as-built MACs / time
   (FLOPs = 2 MACs) as a fraction of it, at the tiny size and (unless ``--no-full-size``) at
   full size: PIIP-TSB 1120/896/448 and ViT-B @1024, batch 1, random weights.

Prints a table (PIIP / baseline ratios), writes every number to ``--out`` (JSON) and a bar
chart of the ratios to ``--plot`` (PNG).
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_utils import (_seconds, backbone_macs, build_detector, elapsed_s,  # noqa: E402
                         interleaved_seconds, log, parse_test_output, run_tool, set_log_name)

set_log_name('piip_benchmark')

_CFG = osp.join(ROOT, 'configs', 'piip', 'mask_rcnn', 'mask_rcnn_{}.py')
PIIP_CONFIG, BASELINE_CONFIG = _CFG.format('piip_tiny_bench_synthetic'), _CFG.format(
    'vit_tiny_synthetic')
FULL_SIZE = {'piip': _CFG.format('piip_tsb_1120_896_448_fpn_1x_coco'),
             'baseline': _CFG.format('vit_b_fpn_1x_coco')}
MODELS, DTYPES = ('piip', 'baseline'), ('float32', 'bfloat16')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', help='a synthetic world with its COCO export (default: '
                   'generate one under WORK/world)')
    p.add_argument('--work-dir', default='work_dirs/piip_benchmark')
    p.add_argument('--piip-config', default=PIIP_CONFIG)
    p.add_argument('--baseline-config', default=BASELINE_CONFIG)
    p.add_argument('--iters', type=int, default=3000, help='training iterations of both')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch', type=int, default=8, help='batch of the backbone timing')
    p.add_argument('--repeats', type=int, default=10, help='timed rounds per measurement')
    p.add_argument('--warmup', type=int, default=3, help='untimed rounds first')
    p.add_argument('--matmul-size', type=int, default=2048, help='n of the n x n peak matmul')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch)')
    p.add_argument('--no-full-size', action='store_true', help='skip the full-size timing')
    p.add_argument('--reuse', action='store_true',
                   help='reuse checkpoints and metrics already in the work dir')
    p.add_argument('--out', help='JSON of all numbers (default WORK/piip_benchmark.json)')
    p.add_argument('--plot', help='bar chart PNG (default: the JSON path with .png)')
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- data
def coco_files(root):
    return [osp.join(root, 'coco', 'annotations', f'instances_{s}.json') for s in ('train', 'val')]


def ensure_world(data_root, work_dir, seed=0):
    """The world's root: ``data_root`` (checked) or one generated under ``WORK/world``."""
    from holodrive.engine.cli import UserFileNotFoundError
    if data_root:
        missing = [f for f in coco_files(data_root) if not osp.isfile(f)]
        if missing:
            raise UserFileNotFoundError(
                f'--data-root {data_root}: no COCO export ({missing[0]} not found); make one with '
                f'tools/create_data.py synthetic --root-path {data_root}, or omit --data-root')
        return osp.abspath(data_root)
    root = osp.abspath(osp.join(work_dir, 'world'))
    if all(osp.isfile(f) for f in coco_files(root)):
        log(f'data: reusing the synthetic world {root}')
        return root
    from holodrive.datasets.synthetic import generate_world
    log(f'data: generating a synthetic world in {root} (5 scenes x 10 keyframes, 320 x 180)')
    generate_world(root, num_scenes=5, seed=seed, samples_per_scene=10, image_size=(320, 180),
                   progress=False, save_aux=False)
    return root


def dataset_sizes(root):
    sizes = {}
    for split, path in zip(('train', 'val'), coco_files(root)):
        with open(path) as f:
            d = json.load(f)
        sizes[split] = dict(images=len(d['images']), annotations=len(d['annotations']))
    return sizes


# ----------------------------------------------------------------------------- train / test
def schedule_overrides(cfg, iters):
    """``--cfg-options`` strings giving ``cfg`` a schedule of ``iters`` iterations: max_iters,
    no validation, one checkpoint at the end, and each scheduler that ends at the config's
    max_iters ends at ``iters`` with its milestones scaled (warm-ups are left alone)."""
    old = cfg.train_cfg.max_iters
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_begin={iters + 1}',
            f'default_hooks.checkpoint.interval={iters}']
    for i, sched in enumerate(cfg.get('param_scheduler') or []):
        if sched.get('end') == old:
            opts.append(f'param_scheduler.{i}.end={iters}')
            if 'milestones' in sched:
                ms = ','.join(str(round(m * iters / old)) for m in sched['milestones'])
                opts.append(f'param_scheduler.{i}.milestones=[{ms}]')
    return opts


def ap_numbers(metrics):
    """``{box_ap, box_ap50, mask_ap, mask_ap50}`` (0-1) from CocoMetric keys."""
    keys = dict(box_ap='bbox_mAP', box_ap50='bbox_mAP_50', mask_ap='segm_mAP',
                mask_ap50='segm_mAP_50')
    short = {k.rsplit('/', 1)[-1]: v for k, v in metrics.items()}
    return {name: short.get(key) for name, key in keys.items()}


def train_and_test(tag, config, root, work_dir, iters, seed, in_process=False, reuse=False):
    """Train ``config`` for ``iters`` and evaluate it; ``(checkpoint, metrics dict)``."""
    from holodrive.engine.config_check import load_config
    work = osp.join(work_dir, tag)
    data = [f'data_root={root}/', f'randomness.seed={seed}']
    ckpt = osp.join(work, f'iter_{iters}.pth')
    reuse = reuse and osp.isfile(ckpt)
    if not reuse:
        log(f'train {tag}: {config}, {iters} iterations, seed {seed}')
        opts = data + schedule_overrides(load_config(config), iters) + [
            f'visualizer.name=bench_{tag}_train']
        run_tool('train', [config, '--work-dir', work, '--cfg-options'] + opts,
                 osp.join(work, 'train.log'), in_process)
    metrics_log = osp.join(work, 'test', 'test.log')
    if reuse and osp.isfile(metrics_log):
        with open(metrics_log) as f:
            text = f.read()
    else:
        log(f'test {tag}: tools/test.py {osp.basename(ckpt)} (CocoMetric bbox + segm)')
        text = run_tool('test', [config, ckpt, '--work-dir', osp.join(work, 'test'),
                                 '--cfg-options'] + data + [f'visualizer.name=bench_{tag}_test'],
                        metrics_log, in_process)
    metrics = parse_test_output(text)
    ap = ap_numbers(metrics)
    log(f'test {tag}: box AP {ap["box_ap"]}, mask AP {ap["mask_ap"]}')
    return ckpt, metrics


# ----------------------------------------------------------------------------- FLOPs / timing
def matmul_peak(n=2048, dtype='float32', repeats=5):
    """Best GFLOP/s (2 n^3 / s) of ``torch.mm`` of two ``n x n`` matrices of ``dtype``."""
    import torch
    dt = getattr(torch, dtype)
    a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _speed(macs, seconds, images, peaks, dtype):
    """images/s, achieved GFLOP/s (2 x ``macs`` / s) and its fraction of the mm peak."""
    gflops = 2 * macs / seconds / 1e9
    return dict(images_per_s=images / seconds, gflops=gflops,
                fraction_of_peak=gflops / peaks[dtype])


def _forward(model, x, dtype):
    import torch

    def run():
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16,
                                             enabled=dtype == 'bfloat16'):
            model(x)
    return run


def val_batch(cfg, n):
    """The first ``n`` val images through the test pipeline, collated for ``test_step``."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')), \
            contextlib.redirect_stdout(io.StringIO()):            # pycocotools' index messages
        ds = DATASETS.build(cfg.test_dataloader.dataset)
    return pseudo_collate([ds[i] for i in range(min(n, len(ds)))])


def measure_tiny(configs, ckpts, root, args, peaks):
    """Backbone and full-model images/s of both trained tiny models, side by side."""
    import torch
    models = {k: build_detector(configs[k], root, ckpts.get(k)) for k in MODELS}
    side = max(backbone_macs(models[k][1].model.backbone)['side'] for k in MODELS)
    x = torch.randn(args.batch, 3, side, side)
    out = {}
    for k in MODELS:
        out[k] = backbone_macs(models[k][1].model.backbone, tuple(x.shape))
    for dtype in DTYPES:
        log(f'timing: tiny backbones, {dtype}, batch {args.batch} at {side} x {side}')
        secs = interleaved_seconds({k: _forward(models[k][0].backbone, x, dtype) for k in MODELS},
                                   args.warmup, args.repeats)
        for k in MODELS:
            out[k][dtype] = _speed(out[k]['as_built_at_shape'], secs[k], args.batch, peaks, dtype)
    n = models['piip'][1].test_dataloader.get('batch_size', 4)
    data = val_batch(models['piip'][1], n)
    log(f'timing: full models, test_step on {n} val images (fp32)')

    def step(model):
        def run():
            with torch.no_grad():
                model.test_step(data)
        return run
    secs = interleaved_seconds({k: step(models[k][0]) for k in MODELS}, 1,
                               max(3, args.repeats // 2))
    for k in MODELS:
        out[k]['full_model_images_per_s'] = n / secs[k]
    return out


def measure_full_size(args, peaks):
    """Full-size backbones (random weights), batch 1, square top resolution: one warm-up and
    one timed forward per dtype; as-built MACs, images/s, GFLOP/s and fraction of peak."""
    import torch
    from holodrive.engine.config_check import load_config
    from mmengine.registry import MODELS as REGISTRY, DefaultScope
    out = {}
    for k in MODELS:
        bcfg = load_config(FULL_SIZE[k]).model.backbone
        macs = backbone_macs(bcfg)
        side = macs['side']
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = REGISTRY.build(bcfg.to_dict()).eval()
        x = torch.randn(1, 3, side, side)
        out[k] = dict(config=FULL_SIZE[k], **macs)
        for dtype in DTYPES:
            log(f'timing: full size {k} ({osp.basename(FULL_SIZE[k])}) {dtype} at {side} x {side}')
            sec = interleaved_seconds({k: _forward(model, x, dtype)}, 1, 1)[k]
            out[k][dtype] = _speed(macs['as_built'], sec, 1, peaks, dtype)
        del model
    return out


# ----------------------------------------------------------------------------- report
def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def table_rows(res):
    """``[(label, piip, baseline, PIIP / baseline)]`` of the headline numbers."""
    ap, fl, tiny, full = res['ap'], res['flops'], res['tiny'], res.get('full_size')
    rows = [(f'{n} (COCO, 0-1)', lambda k, key=key: ap[k][key]) for n, key in (
        ('box AP', 'box_ap'), ('box AP50', 'box_ap50'), ('mask AP', 'mask_ap'),
        ('mask AP50', 'mask_ap50'))]
    kinds = (('paper conv.', 'paper'), ('as built', 'as_built'))
    rows += [(f'backbone GMACs, {n}', lambda k, c=c: fl[k][c] / 1e9) for n, c in kinds]
    for prefix, src in (('backbone', tiny), ('FULL SIZE', full or {})):
        if prefix == 'FULL SIZE' and src:
            rows += [(f'FULL SIZE GMACs, {n}', lambda k, c=c: full[k][c] / 1e9) for n, c in kinds]
        for dt in DTYPES if src else ():
            rows += [(f'{prefix} images/s {dt}', lambda k, s=src, dt=dt: s[k][dt]['images_per_s']),
                     (f'  GFLOP/s {dt} (% of mm peak)', lambda k, s=src, dt=dt: s[k][dt]['gflops'])]
        if prefix == 'backbone':
            rows.append(('full model images/s fp32', lambda k: tiny[k]['full_model_images_per_s']))
    return [(label, f('piip'), f('baseline'), ratio(f('piip'), f('baseline'))) for label, f in rows]


def _fmt(v):
    return '-' if v is None else (f'{v:.4g}' if abs(v) < 1000 else f'{v:.0f}')


def print_table(res):
    peaks = res['matmul_peak_gflops']
    print(f"\nPIIP benchmark: {res['data']}; {res['iters']} iterations, seed {res['seed']}; "
          f"{res['threads']} CPU threads")
    print(f"dense mm peak ({res['matmul_size']}^2): fp32 {peaks['float32']:.0f} GFLOP/s, "
          f"bf16 {peaks['bfloat16']:.0f} GFLOP/s")
    names = (osp.basename(res['configs']['piip']), osp.basename(res['configs']['baseline']))
    print(f'PIIP = {names[0]}, baseline = {names[1]}')
    if res.get('full_size'):
        print(f"FULL SIZE: PIIP = {osp.basename(FULL_SIZE['piip'])}, baseline = "
              f"{osp.basename(FULL_SIZE['baseline'])}, batch 1, random weights")
    print(f"{'':34s} {'PIIP':>15s} {'baseline':>15s} {'PIIP/base':>10s}")
    for label, a, b, r in table_rows(res):
        if label.strip().startswith('GFLOP/s'):
            dt = 'float32' if 'float32' in label else 'bfloat16'
            a_txt = f'{_fmt(a)} ({100 * a / peaks[dt]:.1f}%)'
            b_txt = f'{_fmt(b)} ({100 * b / peaks[dt]:.1f}%)'
        else:
            a_txt, b_txt = _fmt(a), _fmt(b)
        print(f'{label:34s} {a_txt:>15s} {b_txt:>15s} {_fmt(r):>10s}')
    print('[GMACs: paper convention = batch 1, square top resolution, backbone to the light '
          'merge; as built = every matmul/conv incl. conv merges + simple FPN; GFLOP/s = '
          '2 x as-built MACs / time]')
    acc = res['acceptance']
    verdict = acc['box_ap_at_least_baseline'] if acc.get('box_ap_learned', True) else \
        'not meaningful (both box APs are 0: train longer, --iters)'
    print(f"acceptance: PIIP box AP >= baseline: {verdict}; "
          f"backbone FLOPs ratio {acc['flops_ratio']:.3f} <= 0.6: {acc['flops_ratio_ok']}")


def plot(res, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in table_rows(res) if r[3] is not None and not r[0].startswith('  ')]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.5))
    ax.barh([r[0] for r in rows][::-1], [r[3] for r in rows][::-1], color='tab:blue')
    ax.axvline(1.0, color='k', lw=0.8)
    ax.set_xlabel('PIIP / ViT baseline')
    ax.set_title(f"tiny PIIP vs ViT baseline ({res['iters']} iterations)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    out_json = args.out or osp.join(args.work_dir, 'piip_benchmark.json')
    root = ensure_world(args.data_root, args.work_dir, args.seed)
    configs = {'piip': args.piip_config, 'baseline': args.baseline_config}
    res = dict(configs=configs, iters=args.iters, seed=args.seed, threads=torch.get_num_threads(),
               matmul_size=args.matmul_size, data_root=root, dataset=dataset_sizes(root))
    res['data'] = (f"synthetic COCO export {root} ({res['dataset']['train']['images']} train / "
                   f"{res['dataset']['val']['images']} val images)")
    ckpts, metrics = {}, {}
    for k in MODELS:
        ckpts[k], metrics[k] = train_and_test(k, configs[k], root, args.work_dir, args.iters,
                                              args.seed, reuse=args.reuse)
    res['metrics'], res['ap'] = metrics, {k: ap_numbers(metrics[k]) for k in MODELS}
    log(f'peak: torch.mm {args.matmul_size}^2 fp32 and bf16')
    res['matmul_peak_gflops'] = {dt: matmul_peak(args.matmul_size, dt)
                                 for dt in DTYPES}
    log('flops: backbones (paper convention and as built)')
    from holodrive.engine.config_check import load_config
    res['flops'] = {k: backbone_macs(load_config(configs[k]).model.backbone) for k in MODELS}
    res['tiny'] = measure_tiny(configs, ckpts, root, args, res['matmul_peak_gflops'])
    if not args.no_full_size:
        res['full_size'] = measure_full_size(args, res['matmul_peak_gflops'])
    flops_ratio = res['flops']['piip']['paper'] / res['flops']['baseline']['paper']
    box = res['ap']['piip']['box_ap'], res['ap']['baseline']['box_ap']
    res['acceptance'] = dict(flops_ratio=flops_ratio, flops_ratio_ok=flops_ratio <= 0.6,
                             box_ap_at_least_baseline=box[0] >= box[1],
                             box_ap_learned=max(box) > 0)
    res['wall_s'] = elapsed_s()
    with open(out_json, 'w') as f:
        json.dump(res, f, indent=1)
    png = args.plot or osp.splitext(out_json)[0] + '.png'
    plot(res, png)
    print_table(res)
    print(f'numbers: {out_json}; chart: {png}; wall time {res["wall_s"]:.0f} s')
    return res


if __name__ == '__main__':
    from holodrive.engine.cli import run_cli
    run_cli(main)
