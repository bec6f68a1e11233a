"""Can the driving-QA decoder read its visual tokens? A synthetic counting probe, with a control.

    python tools/analysis_tools/qa_reading_probe.py [--config CONFIG] [--grid 4] [--classes 4]
        [--fold 1] [--max-objects 4] [--steps 800] [--lr 5e-4] [--threads 1]
        [--out-dir work_dirs/qa_reading_probe]

The decoder of ``CONFIG`` (its ``model.llm``: width, layers, heads; default the tiny head of
``configs/drive_qa/mono_tiny_language_synthetic.py``) is built from scratch with one
``VisualAdapter`` (source ``map``, ``--classes`` channels, ``--fold``) and trained on a task
that only the visual tokens can answer: a ``(classes, grid, grid)`` map holds 0 ..
``--max-objects`` objects of random classes in distinct cells (a one-hot class per occupied
cell, as a detector's BEV map would mark them); the prompt is the map's
``(grid / fold)^2`` visual tokens, a question token and a class token, and the answer token
is the number of objects of that class. A **blind** control trains the same model on the same
questions with an all-zero map (what the question alone tells). Both are scored by exact match
on a fixed, seeded set of held-out maps every ``--eval-every`` steps, next to the majority
count. Reading works when the first is far above the control.

Prints one line per evaluation and the summary; writes ``probe.json`` and the learning curves
``probe_curve.png`` under ``--out-dir``. The vocabulary is synthetic (ids, no tokenizer).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from holodrive.engine.cli import ConfigError, run_cli  # noqa: E402

PAD, IMAGE, EOS, QUESTION = 0, 1, 2, 3
COUNT0 = 8                     # answer token of count k: COUNT0 + k
MAX_COUNT = 10


def class_token(c: int) -> int:
    return COUNT0 + MAX_COUNT + 1 + c


def make_batch(generator, num: int, grid: int, classes: int, max_objects: int):
    """``num`` random maps and questions.

    Returns ``maps (num, classes, grid, grid)`` float32 one-hot per occupied cell, the asked
    class ``(num,)`` and its object count ``(num,)`` (at most :data:`MAX_COUNT`)."""
    import torch
    maps = torch.zeros(num, classes, grid * grid)
    for i in range(num):
        count = int(torch.randint(0, max_objects + 1, (1,), generator=generator))
        cells = torch.randperm(grid * grid, generator=generator)[:count]
        labels = torch.randint(0, classes, (count,), generator=generator)
        maps[i, labels, cells] = 1.0
    asked = torch.randint(0, classes, (num,), generator=generator)
    counts = maps[torch.arange(num), asked].sum(1).long().clamp(max=MAX_COUNT)
    return maps.view(num, classes, grid, grid), asked, counts


def prompt_ids(asked, counts, num_tokens: int):
    """``[IMAGE] * num_tokens, QUESTION, class, answer, EOS`` per row: ids and labels ``(B, T)``
    (labels only on the answer and EOS)."""
    import torch
    num = asked.shape[0]
    ids = torch.cat([torch.full((num, num_tokens), IMAGE), torch.full((num, 1), QUESTION),
                     (class_token(0) + asked)[:, None], (COUNT0 + counts)[:, None],
                     torch.full((num, 1), EOS)], dim=1)
    labels = torch.full_like(ids, -100)
    labels[:, -2:] = ids[:, -2:]
    return ids, labels


def build_llm(llm_cfg: dict, classes: int, fold: int, seed: int):
    import torch

    from holodrive.models.drive_qa.configuration import MonoDriveConfig
    from holodrive.models.drive_qa.modeling import MonoDriveForCausalLM
    torch.manual_seed(seed)
    cfg = dict(llm_cfg)
    cfg.update(vocab_size=class_token(classes), pad_token_id=PAD, eos_token_id=EOS,
               bos_token_id=None, image_token_id=IMAGE, adapter_in_channels=dict(map=classes),
               adapter_fold=fold)
    return MonoDriveForCausalLM(MonoDriveConfig(**cfg))


def accuracy(llm, maps, asked, counts, num_tokens: int, blind: bool) -> float:
    import torch
    ids, _ = prompt_ids(asked, counts, num_tokens)
    with torch.no_grad():
        logits = llm(input_ids=ids, visual_features=dict(
            map=torch.zeros_like(maps) if blind else maps)).logits[:, -3]
    return float(((logits.argmax(-1) - COUNT0) == counts).float().mean())


def train(args, llm_cfg: dict, blind: bool, val) -> list:
    """Trains one model; returns ``[(step, val exact match), ...]``."""
    import torch
    llm = build_llm(llm_cfg, args.classes, args.fold, args.seed)
    optim = torch.optim.AdamW(llm.parameters(), lr=args.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(args.seed + 1)
    num_tokens = (args.grid // args.fold) ** 2
    curve, t0 = [], time.time()
    name = 'blind control' if blind else 'reading'
    for step in range(1, args.steps + 1):
        maps, asked, counts = make_batch(generator, args.batch_size, args.grid, args.classes,
                                         args.max_objects)
        ids, labels = prompt_ids(asked, counts, num_tokens)
        llm.train()
        loss = llm(input_ids=ids, labels=labels, visual_features=dict(
            map=torch.zeros_like(maps) if blind else maps)).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % args.eval_every == 0 or step == args.steps:
            llm.eval()
            acc = accuracy(llm, *val, num_tokens, blind)
            curve.append((step, acc))
            print(f'{name}: step {step}/{args.steps} loss {loss.item():.3f} val exact match '
                  f'{acc:.3f} ({time.time() - t0:.0f} s)', flush=True)
    return curve


def plot(curves: dict, majority: float, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, curve in curves.items():
        ax.plot([s for s, _ in curve], [a for _, a in curve], marker='o', label=name)
    ax.axhline(majority, color='gray', linestyle='--', label='majority count')
    ax.set_xlabel('training step')
    ax.set_ylabel('val exact match')
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default='configs/drive_qa/mono_tiny_language_synthetic.py',
                   help='a DriveQAModel config whose model.llm gives the decoder shape')
    p.add_argument('--grid', type=int, default=4, help='map side in cells')
    p.add_argument('--classes', type=int, default=4)
    p.add_argument('--fold', type=int, default=1, help='VisualAdapter k x k fold')
    p.add_argument('--max-objects', type=int, default=4)
    p.add_argument('--steps', type=int, default=800)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--lr', type=float, default=5e-4)
    p.add_argument('--eval-every', type=int, default=100)
    p.add_argument('--val-size', type=int, default=512)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out-dir', default='work_dirs/qa_reading_probe')
    return p.parse_args(argv)


def main(argv=None):
    import torch

    from holodrive.engine.cli import import_project, prepare_config
    args = parse_args(argv)
    if args.grid % args.fold:
        raise ConfigError(f'--grid {args.grid} is not divisible by --fold {args.fold}')
    if not 0 <= args.max_objects <= args.grid * args.grid:
        raise ConfigError(f'--max-objects {args.max_objects}: 0 .. grid^2 = {args.grid ** 2}')
    torch.set_num_threads(args.threads)
    import_project()
    cfg = prepare_config(args.config, check_paths=False)
    llm_cfg = cfg.model.get('llm')
    if not llm_cfg:
        raise ConfigError(f'{args.config}: model.llm is missing (the probe builds the decoder '
                          'from scratch; a model.pretrained config has no shape to copy)')
    llm_cfg = {k: v for k, v in llm_cfg.items()
               if k not in ('adapter_in_channels', 'adapter_fold')}
    val = make_batch(torch.Generator().manual_seed(10_000 + args.seed), args.val_size,
                     args.grid, args.classes, args.max_objects)
    majority = max(float((val[2] == k).float().mean()) for k in range(MAX_COUNT + 1))
    print(f'probe: {args.grid} x {args.grid} map, {args.classes} classes, fold {args.fold} -> '
          f'{(args.grid // args.fold) ** 2} visual tokens, 0..{args.max_objects} objects; '
          f'majority count {majority:.3f} on {args.val_size} held-out maps')
    curves = {'reading': train(args, llm_cfg, False, val),
              'blind control': train(args, llm_cfg, True, val)}
    final = {name: curve[-1][1] for name, curve in curves.items()}
    print(f'after {args.steps} steps: reading {final["reading"]:.3f}, blind control '
          f'{final["blind control"]:.3f}, majority {majority:.3f}')
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'probe.json'), 'w') as f:
        json.dump(dict(args=vars(args), majority=majority, final=final, curves=curves,
                       command=sys.argv), f, indent=1)
    plot(curves, majority, osp.join(args.out_dir, 'probe_curve.png'),
         f'{args.grid}x{args.grid} map, {args.classes} classes, fold {args.fold}, '
         f'0..{args.max_objects} objects')
    print(f'wrote {args.out_dir}/probe.json and probe_curve.png')
    return final, majority


if __name__ == '__main__':
    run_cli(main)
