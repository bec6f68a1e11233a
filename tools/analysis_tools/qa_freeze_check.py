"""Does the visual stage keep the LLM's language ability? Before / after a few visual-stage steps.

    python tools/analysis_tools/qa_freeze_check.py CONFIG --data-root DIR [--steps 20]
        [--text-file /usr/share/common-licenses/Apache-2.0] [--max-words 400] [--threads 2]

CONFIG: a visual-stage ``DriveQAModel`` config (e.g. configs/drive_qa/mono_smollm2_visual_synthetic.py).
The model is built, its text-only perplexity on ``--text-file`` (English prose that is not our
corpus; the first ``--max-words`` words, scored in 256-token windows) and its greedy answers to
a few general questions are recorded; then ``--steps`` optimiser steps of the config's stage run
on its training batches (AdamW at the config's learning rate, batches from its train dataloader),
and both are measured again. Prints the two perplexities, whether every answer is identical,
the largest change of any text-expert weight (0 when frozen) and of the visual experts, and
writes the JSON to ``--out``.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from holodrive.engine.cli import UserFileNotFoundError, run_cli  # noqa: E402

QUESTIONS = ('What should a driver do at a red traffic light?',
             'What is the capital of France?',
             'Give me one tip for driving safely in the rain.')


def perplexity(llm, tokenizer, text: str, window: int = 256) -> float:
    import torch
    ids = tokenizer(text, add_special_tokens=False, return_tensors='pt')['input_ids'][0]
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start:start + window + 1].unsqueeze(0)
            if chunk.shape[1] < 2:
                break
            out = llm(chunk, labels=chunk)
            nll += float(out.loss) * (chunk.shape[1] - 1)
            count += chunk.shape[1] - 1
    return math.exp(nll / count)


def answers(llm, tokenizer, max_new_tokens: int = 24):
    import torch
    out = []
    with torch.no_grad():
        for q in QUESTIONS:
            batch = tokenizer.apply_chat_template([{'role': 'user', 'content': q}],
                                                  add_generation_prompt=True,
                                                  return_tensors='pt', return_dict=True)
            gen = llm.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                               pad_token_id=tokenizer.pad_token_id)
            out.append(tokenizer.decode(gen[0, batch['input_ids'].shape[1]:],
                                        skip_special_tokens=True))
    return out


def main(argv=None):
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from holodrive.engine.cli import import_project, prepare_config
    import_project()
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--data-root', required=True)
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--text-file', default='/usr/share/common-licenses/Apache-2.0')
    p.add_argument('--max-words', type=int, default=400)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default='work_dirs/qa_freeze_check/freeze_check.json')
    args = p.parse_args(argv)
    if not osp.isfile(args.text_file):
        raise UserFileNotFoundError(f'{args.text_file}: text file not found (--text-file)')
    torch.set_num_threads(args.threads)
    with open(args.text_file, encoding='utf-8', errors='replace') as f:
        text = ' '.join(f.read().split()[:args.max_words])
    init_default_scope('holodrive')
    cfg = prepare_config(args.config, cfg_options={'data_root': args.data_root.rstrip('/') + '/'},
                         check_paths=False)
    from holodrive.registry import MODELS
    model = MODELS.build(cfg.model)
    llm, tok = model.llm, model.tokenizer
    text_params = {n: p.detach().clone() for n, p in llm.named_parameters()
                   if '.mlp.' in n or 'self_attn' in n}
    vis_params = {n: p.detach().clone() for n, p in llm.named_parameters() if '.mlp_vis.' in n}
    llm.eval()
    t0 = time.time()
    before = dict(perplexity=perplexity(llm, tok, text), answers=answers(llm, tok))
    print(f'before: perplexity {before["perplexity"]:.3f} ({time.time() - t0:.0f} s)')
    loader = Runner.build_dataloader(cfg.train_dataloader)
    lr = cfg.optim_wrapper.optimizer.lr
    optim = torch.optim.AdamW([q for q in llm.parameters() if q.requires_grad], lr=lr)
    model.train()
    step = 0
    while step < args.steps:
        for data in loader:
            data = model.data_preprocessor(data, training=True)
            loss = model.loss(**data)['loss']
            optim.zero_grad()
            loss.backward()
            optim.step()
            step += 1
            print(f'step {step}/{args.steps}: loss {float(loss):.4f} ({time.time() - t0:.0f} s)',
                  flush=True)
            if step >= args.steps:
                break
    llm.eval()
    after = dict(perplexity=perplexity(llm, tok, text), answers=answers(llm, tok))
    drift_text = max(float((p - text_params[n]).abs().max()) for n, p in llm.named_parameters()
                     if n in text_params)
    drift_vis = max(float((p - vis_params[n]).abs().max()) for n, p in llm.named_parameters()
                    if n in vis_params)
    same = [a == b for a, b in zip(before['answers'], after['answers'])]
    print(f'after {args.steps} steps: perplexity {after["perplexity"]:.3f} (before '
          f'{before["perplexity"]:.3f}); answers identical: {sum(same)}/{len(same)}; max weight '
          f'change: text experts + attention {drift_text:.3g}, visual experts {drift_vis:.3g}')
    for q, a, b in zip(QUESTIONS, before['answers'], after['answers']):
        print(f'  Q: {q}\n    before: {a!r}\n    after:  {b!r}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(before=before, after=after, steps=args.steps, text_file=args.text_file,
                       max_words=args.max_words, text_weight_change=drift_text,
                       visual_weight_change=drift_vis, command=sys.argv), f, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    run_cli(main)
