"""Ask the driving-QA head about a scene.

    python tools/qa.py CONFIG CHECKPOINT --data-root DIR (--sample-idx N | --sample-token T) \
        --question "How many cars are there?" [--info DIR/nuscenes_infos_val.pkl]
    python tools/qa.py CONFIG CHECKPOINT --data-root DIR --questions-file QA.json \
        [--out answers.json] [--limit N] [--batch-size 16]

CONFIG: a ``DriveQAModel`` config (configs/drive_qa/). CHECKPOINT: a ``tools/train.py``
checkpoint (``epoch_N.pth``) or a ``save_pretrained`` directory of the head. The keyframe goes
through the config's test pipeline: the six camera images (resize / crop to
``model.image_size``) and the feature maps of ``model.features`` (e.g. the oracle
``bev_objects`` map). A questions file is a ``drivelm_*.json`` / ``nuscenes_qa_*.json`` of
``tools/create_data.py drive_qa`` (or any file in those schemas); the answers are written in
DriveLM's submission layout ``[{"id", "question", "answer"}]`` with ``id =
SCENE_SAMPLE_N``. Batch scoring of a split is ``tools/test.py CONFIG CHECKPOINT``
(``DriveQAMetric``).
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from holodrive.engine.cli import UserFileNotFoundError, run_cli  # noqa: E402
from holodrive.engine.config_check import ConfigError  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--data-root', required=True, help='the nuScenes-format root')
    p.add_argument('--info', help='info .pkl (default DATA_ROOT/nuscenes_infos_val.pkl)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--sample-idx', type=int)
    src.add_argument('--sample-token')
    src.add_argument('--questions-file')
    p.add_argument('--question', help='the question (with --sample-idx / --sample-token)')
    p.add_argument('--out', help='answers file (with --questions-file)')
    p.add_argument('--limit', type=int, help='answer the first N questions only')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--max-new-tokens', type=int)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config keys, e.g. model.max_new_tokens=8')
    args = p.parse_args(argv)
    if args.questions_file is None and not args.question:
        p.error('--sample-idx / --sample-token need --question')
    return args


def load_model(args):
    """``(DriveQAModel in eval mode, cfg)`` from CONFIG + a checkpoint file or HF directory."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from holodrive.engine.cli import import_project, prepare_config
    from holodrive.registry import MODELS
    import_project()   # a fresh process: register the datasets / transforms the config names
    if not osp.isfile(args.config):
        raise UserFileNotFoundError(f'{args.config}: config not found')
    if not osp.exists(args.checkpoint):
        raise UserFileNotFoundError(f'{args.checkpoint}: checkpoint not found')
    init_default_scope('holodrive')
    opts = dict(args.cfg_options, data_root=args.data_root.rstrip('/') + '/')
    cfg = prepare_config(args.config, cfg_options=opts, check_paths=False)
    if cfg.model.get('type') != 'DriveQAModel':
        raise ConfigError(f'{args.config}: tools/qa.py needs a DriveQAModel config '
                          f'(configs/drive_qa/), got model.type={cfg.model.get("type")!r}')
    if osp.isdir(args.checkpoint):
        # a saved directory holds the full (with LoRA: merged) model; nothing is frozen
        cfg.model.update(pretrained=args.checkpoint, llm=None, tokenizer=None, lora=None,
                         stage='instruction', trainable=None)
        model = MODELS.build(cfg.model)
    else:
        model = MODELS.build(cfg.model)
        load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent',
                        strict=True)
    return model.eval(), cfg


def scene_dataset(cfg, args):
    """The keyframes of ``--info`` through the config's test image pipeline."""
    from holodrive.registry import DATASETS
    info = args.info or osp.join(args.data_root, 'nuscenes_infos_val.pkl')
    if not osp.isfile(info):
        raise UserFileNotFoundError(f'{info}: info file not found (run tools/create_data.py)')
    qa_cfg = (cfg.get('test_dataloader') or cfg.val_dataloader).dataset
    return DATASETS.build(dict(
        type='NuScenesSceneDataset', data_root=args.data_root.rstrip('/') + '/',
        ann_file=osp.abspath(info), pipeline=qa_cfg.pipeline,
        modality=qa_cfg.get('modality'), test_mode=True, filter_empty_gt=False)), info


def token_rows(dataset) -> dict:
    return {dataset.get_data_info(i)['token']: i for i in range(len(dataset))}


def visual_inputs(model, dataset, idx) -> dict:
    """One keyframe through the pipeline and the data preprocessor: ``imgs (1, V, 3, H, W)``
    and the feature maps of ``model.features`` (``(1, C, H, W)`` each)."""
    from mmengine.dataset import pseudo_collate
    return model.data_preprocessor(pseudo_collate([dataset[idx]]), training=False)['inputs']


def answer_one(model, cfg, args):
    dataset, info = scene_dataset(cfg, args)
    if args.sample_token is not None:
        rows = token_rows(dataset)
        if args.sample_token not in rows:
            raise ConfigError(f'{info}: no sample with token {args.sample_token!r} '
                              f'({len(rows)} samples; pass --sample-idx or another --info)')
        idx = rows[args.sample_token]
    else:
        idx = args.sample_idx
        if not 0 <= idx < len(dataset):
            raise ConfigError(f'--sample-idx {idx} is outside {info} (0..{len(dataset) - 1})')
    answer = model.answer([args.question], max_new_tokens=args.max_new_tokens,
                          inputs=visual_inputs(model, dataset, idx))[0]
    print(f'sample {dataset.get_data_info(idx)["token"]}\nQ: {args.question}\nA: {answer}')


def answer_file(model, cfg, args):
    from tqdm import tqdm

    from holodrive.datasets.drive_qa import load_qa_records
    if not osp.isfile(args.questions_file):
        raise UserFileNotFoundError(f'{args.questions_file}: questions file not found')
    records = load_qa_records(args.questions_file)[:args.limit]
    dataset, info = scene_dataset(cfg, args)
    rows = token_rows(dataset)
    by_sample = defaultdict(list)
    for n, record in enumerate(records):
        if record['sample_token'] not in rows:
            raise ConfigError(f'{args.questions_file}: question {n} asks about sample '
                              f"{record['sample_token']!r}, which is not in {info} (pass the "
                              'info file of its split with --info)')
        by_sample[record['sample_token']].append((n, record))
    out = [None] * len(records)
    with tqdm(total=len(records), desc='answering', unit='question') as bar:
        for token, items in by_sample.items():
            inputs = visual_inputs(model, dataset, rows[token])
            for start in range(0, len(items), args.batch_size):
                chunk = items[start:start + args.batch_size]
                batch = {k: v.expand(len(chunk), *v.shape[1:]) for k, v in inputs.items()}
                answers = model.answer([r['question'] for _, r in chunk],
                                       max_new_tokens=args.max_new_tokens, inputs=batch)
                for (n, record), answer in zip(chunk, answers):
                    out[n] = dict(id=f"{record.get('scene_token')}_{token}_{n}",
                                  question=record['question'], answer=answer)
                bar.update(len(chunk))
    path = args.out or osp.splitext(args.questions_file)[0] + '_answers.json'
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, path)
    print(f'{len(out)} answers: {path}')


def main(argv=None):
    import torch
    args = parse_args(argv)
    model, cfg = load_model(args)
    with torch.no_grad():
        if args.questions_file:
            answer_file(model, cfg, args)
        else:
            answer_one(model, cfg, args)


if __name__ == '__main__':
    run_cli(main)
