"""Does a trained driving-QA head use its visual input? Answers with the real vs zeroed inputs.

    python tools/analysis_tools/qa_visual_ablation.py CONFIG CHECKPOINT --data-root DIR
        [--limit N] [--out ablation.json] [--cfg-options KEY=VALUE ...]

Every question of the config's test dataloader (the val closed questions) is answered twice,
greedily, by the head of ``CHECKPOINT``: once with the batch's visual inputs (camera images
and the ``model.features`` maps, after the data preprocessor) and once with all of them set to
zero (the prompt, with its visual tokens, is unchanged). Prints the share of identical answers
and the exact match (``DriveQAMetric``'s normalisation) of both, overall and per template type
and hop, and writes them as JSON. A head that reads its visual tokens changes many answers
and loses accuracy without them; one that ignores them answers the same.
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from holodrive.engine.cli import UserFileNotFoundError, run_cli  # noqa: E402
from holodrive.engine.config_check import ConfigError  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', help='a tools/train.py checkpoint file')
    p.add_argument('--data-root', required=True)
    p.add_argument('--limit', type=int, help='stop after about N questions (whole batches)')
    p.add_argument('--out', default='work_dirs/qa_visual_ablation/ablation.json')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p.parse_args(argv)


def main(argv=None):
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint

    from holodrive.engine.cli import import_project, prepare_config
    from holodrive.evaluation.drive_qa_metric import normalize_answer
    from holodrive.registry import MODELS
    args = parse_args(argv)
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise UserFileNotFoundError(f'{path}: {what} not found')
    import_project()
    init_default_scope('holodrive')
    opts = dict(args.cfg_options, data_root=args.data_root.rstrip('/') + '/')
    cfg = prepare_config(args.config, cfg_options=opts, check_paths=False)
    visual = cfg.model.get('use_images', True) or cfg.model.get('features')
    if cfg.model.get('type') != 'DriveQAModel' or not visual:
        raise ConfigError(f'{args.config}: needs a DriveQAModel config with visual input '
                          '(camera images or model.features)')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent', strict=True)
    model.eval()
    loader = Runner.build_dataloader(cfg.test_dataloader)
    groups = defaultdict(lambda: [0, 0, 0, 0])      # n, same answer, correct real, correct zero
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, training=False)
            qas = [s.metainfo['qa'] for s in data['data_samples']]
            questions = [q['question'] for q in qas]
            real = model.answer(questions, inputs=data['inputs'])
            zero = model.answer(questions, inputs={k: torch.zeros_like(v)
                                                   for k, v in data['inputs'].items()})
            for qa, a, b in zip(qas, real, zero):
                ref = normalize_answer(qa['answer'])
                keys = ['overall']
                if 'template_type' in qa:
                    keys += [qa['template_type'], f"hop{qa.get('num_hop', 0)}"]
                for key in keys:
                    g = groups[key]
                    g[0] += 1
                    g[1] += normalize_answer(a) == normalize_answer(b)
                    g[2] += normalize_answer(a) == ref
                    g[3] += normalize_answer(b) == ref
            if args.limit and groups['overall'][0] >= args.limit:
                break
    table = {key: dict(num=n, same_answer=s / n, exact_match=r / n, exact_match_zeroed=z / n)
             for key, (n, s, r, z) in groups.items()}
    for key, row in table.items():
        print(f"{key:>12}: n {row['num']:5d}  same answer {row['same_answer']:.3f}  exact match "
              f"{row['exact_match']:.3f} with the visual input, {row['exact_match_zeroed']:.3f} "
              'zeroed')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(table=table, config=args.config, checkpoint=args.checkpoint,
                       command=sys.argv), f, indent=1)
    print(f'wrote {args.out}')
    return table


if __name__ == '__main__':
    run_cli(main)
