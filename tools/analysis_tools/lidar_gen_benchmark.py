"""LiDAR generation benchmark: reconstruction, generation and layout fidelity on the val split.

    python tools/analysis_tools/lidar_gen_benchmark.py --data-root DIR \
        --tokenizer WORK_TOK/epoch_8.pth --generator WORK_GEN/epoch_12.pth \
        --centerpoint WORK_CP/epoch_8.pth [--work-dir work_dirs/lidar_gen_bench] [--limit N]

The checkpoints come from ``tools/train.py`` with the tiny configs (commands in
docs/lidar_gen.md). Three tables:

1. Tokenizer reconstruction (``tools/test.py`` tokenizer config): voxel IoU, Chamfer, MMD, JSD.
2. Conditional generation, trained vs untrained generator (``tools/test.py`` generator config
   with the checkpoint, and with ``--random-init`` + the same trained tokenizer): the same
   metrics against the real sweep of each layout, and the ratios.
3. Layout fidelity: a copy of the world whose val keyframe sweeps are the generated ones (one
   per keyframe, from its layout, seed = sample index) and one with the real sweeps, both with
   the sweep history removed from the infos (CenterPoint then pads with the keyframe, so no real
   past sweep leaks in; a generated sweep without any return is written as one point under the
   ground, at (0, 0, -4.9) m, so the detector runs on it and sees nothing). The tiny CenterPoint scores both with ``tools/test.py`` (devkit mAP)
   (whole split only: skipped with ``--limit``) and, in-process, the recall of the conditioned boxes at 2 m (BEV centre distance, greedy by
   score, predictions with score >= ``--score-thr``; GT boxes with at least one LiDAR point
   within 50 m) per class.

``--split train`` is the tuning mode for the sampling knobs (``--guidance-scale``,
``--blank-logit-offset``, ``--num-steps``): it runs table 3's recall only, on the first
``--limit`` train keyframes, so that the knobs are chosen without looking at val; the chosen
ones are then measured once on val.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))   # bench_utils (puts ROOT on the path)

from bench_utils import (ROOT, build_detector, log, mirror_world,  # noqa: E402
                         parse_test_output, run_test_logged, run_tool,
                         set_log_name)

TOKENIZER = osp.join(ROOT, 'configs/holodrive/lidar/lidar_tokenizer_tiny_synthetic.py')
GENERATOR = osp.join(ROOT, 'configs/holodrive/lidar/lidar_generator_tiny_synthetic.py')
CENTERPOINT = osp.join(ROOT, 'configs/centerpoint/centerpoint_tiny_synthetic.py')
METRIC_KEYS = ('voxel_iou', 'chamfer', 'mmd', 'jsd')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-root', required=True)
    p.add_argument('--tokenizer', required=True, help='tiny tokenizer checkpoint')
    p.add_argument('--generator', required=True, help='tiny generator checkpoint')
    p.add_argument('--centerpoint', help='tiny CenterPoint checkpoint (skip table 3 without)')
    p.add_argument('--work-dir', default='work_dirs/lidar_gen_bench')
    p.add_argument('--limit', type=int, help='only the first N val keyframes (smoke runs)')
    p.add_argument('--num-steps', type=int, help='MaskGIT steps (default: the config\'s)')
    p.add_argument('--score-thr', type=float, default=0.1)
    p.add_argument('--guidance-scale', type=float,
                   help='sampling guidance of the generated world (default: the config\'s)')
    p.add_argument('--blank-logit-offset', type=float,
                   help='blank-code logit offset of the generated world (default: the config\'s)')
    p.add_argument('--split', choices=('val', 'train'), default='val',
                   help='train: tuning mode, table 3 recall only on the first --limit train '
                        'keyframes (pick the sampling knobs here, then measure them on val)')
    p.add_argument('--reuse', action='store_true',
                   help='reuse the scores of tables 1-2 logged by an earlier run in --work-dir')
    return p.parse_args(argv)


def _fmt(value):
    return 'n/a (--limit)' if value is None else f'{value:.4f}'


def _short(metrics):
    return {k.rsplit('/', 1)[-1]: v for k, v in metrics.items()}


def _limit_opts(args, generator):
    opts = []
    if args.limit:
        opts.append(f'test_dataloader.dataset.indices={args.limit}')
    if args.num_steps and generator:
        opts.append(f'model.num_steps={args.num_steps}')
    return opts


def lidar_scores(config, ckpt, args, tag, extra=()):
    argv = [config] + ([ckpt] if ckpt else ['--random-init']) + [
        '--work-dir', osp.join(args.work_dir, tag), '--cfg-options',
        f'data_root={args.data_root}/', *_limit_opts(args, config == GENERATOR), *extra]
    text = run_test_logged(argv, osp.join(args.work_dir, tag, 'test.log'), tag, args.reuse)
    scores = _short(parse_test_output(text))
    log(f'{tag}: ' + ', '.join(f'{k} {scores[k]:.4f}' for k in METRIC_KEYS if k in scores))
    return scores


# ----------------------------------------------------------------------------- fidelity
def _write_sweepless_infos(src_root, dst_root, limit, split='val'):
    """``split``'s infos without the sweep history (and only the first ``limit`` keyframes),
    written as ``dst_root``'s val infos (what the test configs read)."""
    import mmengine
    infos = mmengine.load(osp.join(src_root, f'nuscenes_infos_{split}.pkl'))  # create_data.py
    if limit:
        infos['data_list'] = infos['data_list'][:limit]
    for rec in infos['data_list']:
        rec['lidar_sweeps'] = []
    path = osp.join(dst_root, 'nuscenes_infos_val.pkl')
    if osp.islink(path):
        os.unlink(path)
    mmengine.dump(infos, path)
    return infos['data_list']


def generated_world(args):
    """A world whose val keyframe sweeps are generated from their layouts."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from tqdm import tqdm

    from holodrive.engine.cli import prepare_config
    from holodrive.models.lidar_gen import write_pcd_bin
    from holodrive.registry import DATASETS, MODELS
    root = osp.join(args.work_dir, 'generated_world')
    lidar_dir = osp.join(root, 'samples', 'LIDAR_TOP')
    mirror_world(args.data_root, root, own=('LIDAR_TOP',))
    recs = _write_sweepless_infos(args.data_root, root, args.limit, args.split)
    init_default_scope('holodrive')
    cfg = prepare_config(GENERATOR, cfg_options={'data_root': f'{args.data_root}/'},
                         check_paths=False)
    cfg.test_dataloader.dataset.ann_file = osp.join(root, 'nuscenes_infos_val.pkl')
    cfg.model.tokenizer_checkpoint = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.generator, map_location='cpu', logger='silent')
    model.eval()
    if args.blank_logit_offset is not None:
        model.blank_logit_offset = args.blank_logit_offset
    log(f'generated world: guidance {args.guidance_scale or model.guidance_scale}, blank logit '
        f'offset {model.blank_logit_offset}, steps {args.num_steps or model.num_steps}')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    empty = 0
    for idx in tqdm(range(len(recs)), desc=f'generating {args.split} sweeps', unit='sweep'):
        data = model.data_preprocessor(pseudo_collate([dataset[idx]]), training=False)
        gen = torch.Generator().manual_seed(idx)
        tokens = model.sample(model.layout(data['inputs']), num_steps=args.num_steps,
                              guidance_scale=args.guidance_scale, generator=gen)
        points = model.generate_points(tokens)[0]
        if len(points) == 0:   # no return at all: one point under the ground so the detector runs
            points = torch.tensor([[0.0, 0.0, -4.9, 0.0, 0.0]])
            empty += 1
        name = osp.basename(recs[idx]['lidar_points']['lidar_path'])
        write_pcd_bin(osp.join(lidar_dir, name), points)
    log(f'generated {len(recs)} {args.split} sweeps into {lidar_dir} ({empty} without any return)')
    return root


def real_world(args):
    root = osp.join(args.work_dir, 'real_world')
    mirror_world(args.data_root, root)
    _write_sweepless_infos(args.data_root, root, args.limit, args.split)
    return root


def recall_at_2m(root, args):
    """Per-class recall of the val GT boxes at 2 m by the CenterPoint on ``root``'s sweeps."""
    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate

    from holodrive.registry import DATASETS
    model, cfg = build_detector(CENTERPOINT, root, args.centerpoint)
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.update(data_root=f'{root}/', ann_file=osp.join(root, 'nuscenes_infos_val.pkl'))
    dataset = DATASETS.build(ds_cfg)
    classes = list(cfg.class_names)
    hits = {c: 0 for c in classes}
    totals = {c: 0 for c in classes}
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        with torch.no_grad():
            (out,) = model.test_step(pseudo_collate([dataset[idx]]))
        pred = out.pred_instances_3d
        keep = pred.scores_3d >= args.score_thr
        p_xy = pred.bboxes_3d.tensor[keep, :2].numpy()
        p_lab, p_score = pred.labels_3d[keep].numpy(), pred.scores_3d[keep].numpy()
        gts = [i for i in info['instances'] if i['bbox_label_3d'] >= 0
               and i.get('num_lidar_pts', 1) > 0 and np.hypot(*i['bbox_3d'][:2]) <= 50.0]
        for c_idx, c in enumerate(classes):
            g_xy = np.asarray([g['bbox_3d'][:2] for g in gts if g['bbox_label_3d'] == c_idx],
                              np.float64).reshape(-1, 2)
            totals[c] += len(g_xy)
            taken = np.zeros(len(g_xy), bool)
            for j in np.argsort(-p_score[p_lab == c_idx]):           # greedy by score
                if not len(g_xy):
                    break
                d = np.linalg.norm(g_xy - p_xy[p_lab == c_idx][j], axis=1)
                d[taken] = np.inf
                k = int(np.argmin(d))
                if d[k] <= 2.0:
                    taken[k] = True
            hits[c] += int(taken.sum())
    return {c: (hits[c] / totals[c] if totals[c] else float('nan'), totals[c]) for c in classes}


def fidelity(args):
    rows = {}
    for tag, make in (('real', real_world), ('generated', generated_world)):
        root = make(args)
        scores = {}
        if not args.limit and args.split == 'val':   # the devkit scores whole val splits only
            text = run_tool('test', [CENTERPOINT, args.centerpoint, '--work-dir',
                                     osp.join(args.work_dir, f'centerpoint_{tag}'),
                                     '--cfg-options', f'data_root={root}/'],
                            osp.join(args.work_dir, f'centerpoint_{tag}', 'test.log'),
                            in_process=True)
            scores = _short(parse_test_output(text))
        recall = recall_at_2m(root, args)
        rows[tag] = dict(mAP=scores.get('mAP'), NDS=scores.get('NDS'),
                         car_AP_2m=scores.get('car_AP_dist_2.0'), recall_2m=recall)
        log(f'CenterPoint on {tag} sweeps: mAP {_fmt(rows[tag]["mAP"])}, car recall@2m '
            f'{recall["car"][0]:.3f} ({recall["car"][1]} cars)')
    return rows


def tune(args):
    """Tuning mode: CenterPoint recall at 2 m on real and generated train keyframes."""
    if not args.centerpoint:
        raise SystemExit('error: --split train (tuning) needs --centerpoint CHECKPOINT')
    fid = fidelity(args)
    classes = list(fid['real']['recall_2m'])
    print(f'\n| train keyframes ({args.limit or "all"}) | ' + ' | '.join(
        f'{c} recall@2m' for c in classes) + ' |')
    print('|---' * (1 + len(classes)) + '|')
    for tag in ('real', 'generated'):
        print(f'| {tag} sweeps | ' + ' | '.join(
            f'{fid[tag]["recall_2m"][c][0]:.3f}' for c in classes) + ' |')
    results = dict(split='train', limit=args.limit, guidance_scale=args.guidance_scale,
                   blank_logit_offset=args.blank_logit_offset, num_steps=args.num_steps,
                   fidelity=fid)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, default=str)
    log(f'results: {osp.join(args.work_dir, "results.json")}')
    return results


def main(argv=None):
    args = parse_args(argv)
    set_log_name('lidar_gen_benchmark')
    args.data_root = osp.abspath(args.data_root.rstrip('/'))
    os.makedirs(args.work_dir, exist_ok=True)
    if args.split == 'train':
        return tune(args)
    results = dict(tokenizer=lidar_scores(TOKENIZER, args.tokenizer, args, 'tokenizer'))
    results['generator'] = lidar_scores(GENERATOR, args.generator, args, 'generator')
    results['untrained'] = lidar_scores(
        GENERATOR, None, args, 'generator_untrained',
        extra=[f'model.tokenizer_checkpoint={osp.abspath(args.tokenizer)}'])
    if args.centerpoint:
        results['fidelity'] = fidelity(args)
    print('\n| val split | voxel IoU | Chamfer (m) | MMD | JSD |\n|---|---|---|---|---|')
    for tag in ('tokenizer', 'generator', 'untrained'):
        r = results[tag]
        print(f'| {tag} | {r["voxel_iou"]:.4f} | {r["chamfer"]:.3f} | {r["mmd"]:.5f} | '
              f'{r["jsd"]:.4f} |')
    g, u = results['generator'], results['untrained']
    print(f'| trained / untrained | {g["voxel_iou"] / max(u["voxel_iou"], 1e-9):.2f} | '
          f'{g["chamfer"] / u["chamfer"]:.3f} | {g["mmd"] / max(u["mmd"], 1e-12):.3f} | '
          f'{g["jsd"] / max(u["jsd"], 1e-9):.3f} |')
    if 'fidelity' in results:
        fid = results['fidelity']
        classes = list(fid['real']['recall_2m'])
        print('\n| CenterPoint on | mAP | NDS | car AP@2m | ' + ' | '.join(
            f'{c} recall@2m' for c in classes) + ' |')
        print('|---' * (4 + len(classes)) + '|')
        for tag in ('real', 'generated'):
            r = fid[tag]
            print(f'| {tag} sweeps | {_fmt(r["mAP"])} | {_fmt(r["NDS"])} | {_fmt(r["car_AP_2m"])} | '
                  + ' | '.join(f'{r["recall_2m"][c][0]:.3f}' for c in classes) + ' |')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, default=str)
    log(f'results: {osp.join(args.work_dir, "results.json")}')
    return results


if __name__ == '__main__':
    main()
