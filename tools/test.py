"""Evaluate a checkpoint with the config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options ...]
                         [--launcher {none,pytorch}]
    python tools/test.py CONFIG --random-init     # the untrained baseline row


For nuScenes-format data the evaluator is mmdet3d's NuScenesMetric, i.e. the official
nuscenes-devkit DetectionEval (mAP, NDS and the TP errors).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from holodrive.engine.cli import (add_runner_args, ConfigError, import_project,  # noqa: E402
                                  parse_runner_args, prepare_config, run_cli,
                                  UserFileNotFoundError)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test (evaluate) a HoloDrive Suite model')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', nargs='?',
                   help='checkpoint file (.pth, loaded with weights_only=True)')
    p.add_argument('--random-init', action='store_true',
                   help='evaluate the freshly initialised model (seed from the config): the '
                        'untrained baseline')
    p.add_argument('--work-dir', help='where logs and results go')
    p.add_argument('--allow-partial', action='store_true',
                   help='evaluate a checkpoint of another model (matching keys only)')
    return parse_runner_args(add_runner_args(p), argv)


def main(argv=None):
    args = parse_args(argv)
    import_project()
    from mmengine.runner import Runner

    if (args.checkpoint is None) == (not args.random_init):
        raise ConfigError('give either a CHECKPOINT or --random-init (the untrained baseline)')
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        raise UserFileNotFoundError(f'{args.checkpoint}: checkpoint not found')
    cfg = prepare_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    if args.checkpoint:
        from holodrive.engine.checkpoint import check_checkpoint_matches
        print(check_checkpoint_matches(runner.model, args.checkpoint, args.allow_partial)[0],
              file=sys.stderr)
    else:
        print('evaluating the untrained model (--random-init)', file=sys.stderr)
    metrics = {k: float(v) for k, v in runner.test().items()}
    out = os.path.join(runner.log_dir, 'metrics.json')
    with open(out, 'w') as f:
        json.dump(metrics, f, indent=1)
    print(summarize_metrics(metrics))
    print(f'all {len(metrics)} metrics: {out}')


def summarize_metrics(metrics):
    """Headline metrics in two short lines: mAP / NDS (or the 2D ones) and, for nuScenes,
    each class's AP averaged over the four distance thresholds (the devkit's class AP)."""
    names = ('mAP', 'NDS', 'mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE', 'bbox_mAP', 'segm_mAP', 'mIoU',
             'aAcc', 'accuracy')
    short = {k.rsplit('/', 1)[-1]: v for k, v in metrics.items()}
    head = {k: short[k] for k in names if k in short}
    per_class = {}
    for key, value in metrics.items():
        name = key.rsplit('/', 1)[-1]
        if '_AP_dist_' in name:
            per_class.setdefault(name.split('_AP_dist_')[0], []).append(value)
    text = 'result: ' + '  '.join(f'{k} {v:.4f}' for k, v in (head or metrics).items())
    if per_class:
        text += '\nresult: class AP  ' + '  '.join(
            f'{k}: {sum(v) / len(v):.3f}' for k, v in per_class.items())
    return text


if __name__ == '__main__':
    run_cli(main)
