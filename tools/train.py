"""Train a model from a config with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options key=value ...] [--launcher {none,pytorch}]

Multi-process: ``bash tools/dist_train.sh CONFIG NPROC`` (torchrun; gloo on CPU, nccl on GPU).
``--resume`` without a path continues from the newest complete checkpoint in the work dir; with
none there, training starts as without ``--resume`` (from the config's ``load_from`` weights, if
any), so a staged run such as ``--resume --cfg-options load_from=STAGE1.pth`` can be restarted.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from holodrive.engine.cli import (add_runner_args, amp_warnings,  # noqa: E402
                                  find_resume_checkpoint, import_project, parse_runner_args,
                                  prepare_config, run_cli, schedule_warnings,
                                  UserFileNotFoundError)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a HoloDrive Suite model')
    p.add_argument('config', help='config file path')
    p.add_argument('--work-dir', help='where logs and checkpoints go')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='resume from CKPT, or from the newest checkpoint in the work dir')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision')
    p.add_argument('--allow-partial', action='store_true',
                   help='load_from: load a checkpoint of another model (matching keys only)')
    return parse_runner_args(add_runner_args(p), argv)


def main(argv=None):
    args = parse_args(argv)
    import_project()
    from mmengine.runner import FlexibleRunner, Runner

    cfg = prepare_config(args.config, args.work_dir, args.cfg_options, args.launcher, args.amp)
    for line in schedule_warnings(cfg) + amp_warnings(cfg):
        print(line, file=sys.stderr)
    from holodrive.utils.io import clean_stale_tmp
    for tmp in clean_stale_tmp(cfg.work_dir):  # left by a save that was killed
        print(f'removed stale {tmp}', file=sys.stderr)
    if args.resume == 'auto':
        ckpt = find_resume_checkpoint(cfg.work_dir)
        if ckpt is not None:
            cfg.resume, cfg.load_from = True, ckpt
        else:   # a first run: the config's load_from (weights only), if any, still applies
            cfg.resume = False
            start = f"the weights of load_from {cfg.load_from}" if cfg.get('load_from') \
                else 'scratch'
            print(f'no checkpoint in {cfg.work_dir}; starting from {start}', file=sys.stderr)
    elif args.resume:
        if not os.path.isfile(args.resume):
            raise UserFileNotFoundError(f'--resume {args.resume}: checkpoint not found')
        cfg.resume, cfg.load_from = True, args.resume
    from holodrive.engine.checkpoint import check_checkpoint_matches, check_resume_schedule
    if cfg.get('resume') and cfg.get('load_from'):
        check_resume_schedule(cfg, cfg.load_from)
    # FlexibleRunner: sharded strategies (configs/piip/_base_/strategies/fsdp_cp.py)
    runner_cls = FlexibleRunner if cfg.get('runner_type') == 'FlexibleRunner' else Runner
    runner = runner_cls.from_cfg(cfg)
    if cfg.get('load_from') and not cfg.get('resume'):
        print(check_checkpoint_matches(runner.model, cfg.load_from, args.allow_partial)[0],
              file=sys.stderr)
    runner.train()


if __name__ == '__main__':
    run_cli(main)
