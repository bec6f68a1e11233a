"""Closed-question accuracy table of driving-QA runs against the majority baseline.

    python tools/analysis_tools/drive_qa_benchmark.py --data-root DIR \
        --run "tiny=WORK/test_tiny/.../metrics.json" --run "tiny, no vision=..." \
        [--out-dir work_dirs/drive_qa_benchmark]

Each ``--run NAME=FILE`` is the ``metrics.json`` that ``tools/test.py`` wrote for a
``DriveQAModel`` on the val closed questions (``DriveQAMetric``). The majority baseline answers
every val question with the most frequent train answer of its template type (computed here from
``DATA_ROOT/drive_qa/nuscenes_qa_{train,val}.json``, the same questions the runs answered).
Prints a Markdown table (exact match per template type, per hop, overall, question counts) and
writes it with a JSON copy and a bar chart (``drive_qa_accuracy.png``) to ``--out-dir``.
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import Counter, defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from holodrive.engine.cli import UserFileNotFoundError, run_cli  # noqa: E402

ROWS = ('exist', 'count', 'object', 'status', 'comparison', 'hop0', 'hop1', 'overall')


def majority_baseline(train: list, val: list) -> dict:
    """``{row: accuracy}`` of the per-type majority answer (train) on ``val`` records."""
    from holodrive.evaluation.drive_qa_metric import normalize_answer
    by_type = defaultdict(Counter)
    for r in train:
        by_type[r['template_type']][normalize_answer(r['answer'])] += 1
    hits = defaultdict(list)
    for r in val:
        counts = by_type.get(r['template_type'])
        guess = counts.most_common(1)[0][0] if counts else ''
        hit = float(guess == normalize_answer(r['answer']))
        for row in (r['template_type'], f"hop{r['num_hop']}", 'overall'):
            hits[row].append(hit)
    return {row: sum(v) / len(v) for row, v in hits.items()}, {
        row: len(v) for row, v in hits.items()}


def run_rows(path: str) -> dict:
    if not osp.isfile(path):
        raise UserFileNotFoundError(f'{path}: metrics.json not found (run tools/test.py first)')
    with open(path) as f:
        metrics = json.load(f)
    out = {}
    for row in ROWS:
        key = f'drive_qa/closed/{row}'
        if key in metrics:
            out[row] = metrics[key]
    return out


def main(argv=None):
    from holodrive.datasets.drive_qa import load_qa_records
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', required=True)
    p.add_argument('--run', action='append', default=[], help='NAME=metrics.json')
    p.add_argument('--out-dir', default='work_dirs/drive_qa_benchmark')
    args = p.parse_args(argv)
    qa_dir = osp.join(args.data_root, 'drive_qa')
    train = [r for r in load_qa_records(osp.join(qa_dir, 'nuscenes_qa_train.json'))
             if r['qa_type'] == 'closed']
    val = [r for r in load_qa_records(osp.join(qa_dir, 'nuscenes_qa_val.json'))
           if r['qa_type'] == 'closed']
    majority, counts = majority_baseline(train, val)
    columns = {'majority answer per type': majority}
    for spec in args.run:
        name, _, path = spec.partition('=')
        columns[name] = run_rows(path)
    header = '| question type | n | ' + ' | '.join(columns) + ' |'
    lines = [header, '|' + '---|' * (len(columns) + 2)]
    for row in ROWS:
        cells = [f'{col[row] * 100:.1f}' if row in col else '-' for col in columns.values()]
        lines.append(f'| {row} | {counts.get(row, 0)} | ' + ' | '.join(cells) + ' |')
    table = '\n'.join(lines)
    print(f'exact-match accuracy (%) on the {len(val)} val closed questions '
          f'({len({r["scene_token"] for r in val})} held-out scenes)\n{table}')
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'drive_qa_accuracy.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.out_dir, 'drive_qa_accuracy.json'), 'w') as f:
        json.dump(dict(columns=columns, counts=counts, command=sys.argv), f, indent=1)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(columns)
    for i, (name, col) in enumerate(columns.items()):
        ax.bar(np.arange(len(ROWS)) + i * width, [col.get(r, 0) * 100 for r in ROWS], width,
               label=name)
    ax.set_xticks(np.arange(len(ROWS)) + 0.4 - width / 2, ROWS)
    ax.set_ylabel('exact match (%)')
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title('driving QA, val closed questions (held-out scenes)')
    fig.tight_layout()
    png = osp.join(args.out_dir, 'drive_qa_accuracy.png')
    fig.savefig(png, dpi=100)
    print(f'wrote {args.out_dir}/drive_qa_accuracy.{{md,json,png}}')


if __name__ == '__main__':
    run_cli(main)
