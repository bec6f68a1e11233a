"""First-token latency and decode speed: the monolithic driving-QA head vs a modular baseline.

    python tools/analysis_tools/qa_latency_benchmark.py (--config PY | --pretrained DIR)
        [--image-size W H] [--views 6] [--repeats 5] [--warmup 1] [--new-tokens 16]
        [--threads N] [--device cpu|cuda] [--dtype float32|bfloat16] [--out FILE.json]

Models (the same six-view input, the same ``<IMG_CONTEXT>`` slots, the same prompt):

- monolithic: ``MonoDriveForCausalLM`` as is: patch embedding + pixel shuffle 0.5 + ``mlp1``,
  the visual FFN experts inside the LLM on the visual tokens;
- modular: a transformers ``ViTModel`` (patch 14, exact position embeddings for the image size,
  no pooler) + pixel shuffle 0.5 + an ``mlp1``-shaped projector, then the SAME LLM weights as a
  plain LLM (text experts for every token). The ViT's width / depth / MLP size are chosen so
  that the baseline's total parameters (ViT + projector + LLM without visual experts) match the
  monolithic total (:mod:`holodrive.models.drive_qa.modular_baseline`); both counts are printed.

``--config PY``: a random model from the config's ``model.llm`` (the tokenizer of
``model.tokenizer`` when that directory exists, else ``--vocab-size`` and a hand-built prompt of
the same layout); ``--pretrained DIR``: ``MonoDriveForCausalLM.from_pretrained(DIR)`` and its
tokenizer (the baseline's ViT and projector are random: timing does not depend on weights).

Measured under ``torch.no_grad()`` after ``--warmup`` untimed runs, the median of ``--repeats``
(the two models alternate, one log line per repeat), batch 1:

- first-token latency: pixels + prompt -> the first greedy token (vision + prefill + one
  lm_head row + argmax);
- decode tokens/s: ``--new-tokens`` further greedy tokens with the KV cache (EOS ignored).

Prints one table and the latency ratio (goal: monolithic <= 0.5x the modular baseline's,
Mono-InternVL's "first-token latency reduced by up to 67 %"); ``--out`` gets the same numbers
and the command line as JSON.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import statistics
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_utils import log, set_log_name  # noqa: E402

set_log_name('qa_latency_benchmark')

QUESTION = ('Is it safe for the ego vehicle to turn left at the next intersection? '
            'Answer briefly and name the objects that matter.')
GOAL_RATIO = 0.5
MODELS = ('monolithic', 'modular')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--config', help='config whose model.llm builds a random head')
    src.add_argument('--pretrained', help='a save_pretrained directory of the head')
    p.add_argument('--image-size', type=int, nargs=2, default=(224, 112), metavar=('W', 'H'),
                   help='camera image size, multiples of 28 (default 224 112)')
    p.add_argument('--views', type=int, default=6, help='camera views (default 6)')
    p.add_argument('--repeats', type=int, default=5, help='timed runs per model (median)')
    p.add_argument('--warmup', type=int, default=1, help='untimed runs per model first')
    p.add_argument('--new-tokens', type=int, default=16,
                   help='greedy tokens decoded after the first one')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch)')
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
    p.add_argument('--vocab-size', type=int, default=4096,
                   help='vocabulary of a --config model without a tokenizer directory')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='JSON of all numbers')
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- models
def load_head_config(args):
    """``(MonoDriveConfig, tokenizer or None, source)`` without building any weights."""
    from holodrive.engine.cli import UserFileNotFoundError
    from holodrive.engine.config_check import ConfigError, load_config
    from holodrive.models.drive_qa import MonoDriveConfig, load_drive_tokenizer
    if args.pretrained:
        if not osp.isfile(osp.join(args.pretrained, 'config.json')):
            raise UserFileNotFoundError(
                f'--pretrained {args.pretrained}: no save_pretrained directory (config.json not '
                'found); write the SmolLM2 head with tools/convert/smollm2_gguf.py, or use '
                '--config for a random model')
        return (MonoDriveConfig.from_pretrained(args.pretrained),
                load_drive_tokenizer(args.pretrained), f'pretrained {args.pretrained}')
    cfg = load_config(args.config)
    llm = cfg.get('model', {}).get('llm')
    if not llm:
        raise ConfigError(f'{args.config}: model.llm is not set (a model.pretrained config: use '
                          '--pretrained DIR instead)')
    llm = llm.to_dict() if hasattr(llm, 'to_dict') else dict(llm)
    tok_dir = cfg.model.get('tokenizer')
    tokenizer = load_drive_tokenizer(tok_dir) if tok_dir and osp.isdir(tok_dir) else None
    if tokenizer is not None:
        llm.setdefault('vocab_size', len(tokenizer))
        llm.setdefault('pad_token_id', tokenizer.pad_token_id)
        llm.setdefault('image_token_id', tokenizer.convert_tokens_to_ids('<IMG_CONTEXT>'))
    else:
        llm.setdefault('vocab_size', args.vocab_size)
        llm.setdefault('pad_token_id', 0)
        llm.setdefault('image_token_id', llm['vocab_size'] - 1)
    llm.setdefault('bos_token_id', None)
    llm.setdefault('eos_token_id', 1)
    source = f'random init from {args.config} model.llm' + (
        f' (tokenizer {tok_dir})' if tokenizer is not None else
        f' (no tokenizer at {tok_dir}: vocab {llm["vocab_size"]}, hand-built prompt)')
    return MonoDriveConfig(**llm), tokenizer, source


def check_args(args, config):
    from holodrive.datasets.constants import CAMERA_NAMES
    from holodrive.engine.config_check import ConfigError
    side = config.pixels_per_visual_token
    width, height = args.image_size
    if width <= 0 or height <= 0 or width % side or height % side:
        raise ConfigError(f'--image-size {width} {height}: W and H must be positive multiples of '
                          f'{side} (patch {config.vision_patch_size} / pixel shuffle '
                          f'{config.downsample_ratio}), e.g. 224 112')
    if not 1 <= args.views <= len(CAMERA_NAMES):
        raise ConfigError(f'--views {args.views}: between 1 and {len(CAMERA_NAMES)} cameras')
    if args.repeats < 1 or args.warmup < 0 or args.new_tokens < 0:
        raise ConfigError('--repeats must be >= 1, --warmup and --new-tokens >= 0')
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise ConfigError('--device cuda: no CUDA device is available (use --device cpu)')


def build_prompt(config, tokenizer, views, tokens_per_view, seed=0):
    """``input_ids (1, T)``: the driving-QA prompt of ``views`` cameras and :data:`QUESTION`
    (``DriveQAProcessor``), or, without a tokenizer, the same layout with arbitrary text ids:
    ChatML start, per view ``<CAM> <img> <IMG_CONTEXT> x n </img>``, ~24 question tokens,
    ChatML end + assistant start."""
    import torch
    from holodrive.datasets.constants import CAMERA_NAMES
    from holodrive.models.drive_qa import DriveQAProcessor
    if tokenizer is not None:
        processor = DriveQAProcessor(tokenizer, tokens_per_view=tokens_per_view,
                                     cameras=CAMERA_NAMES[:views])
        return processor.collate([QUESTION])['input_ids']
    gen = torch.Generator().manual_seed(seed)
    image = config.image_token_id

    def text(n):
        ids = torch.randint(2, config.vocab_size, (n,), generator=gen)
        return torch.where(ids == image, torch.full_like(ids, 2), ids).tolist()
    ids = text(3)                                            # <|im_start|>user\n
    for _ in range(views):
        tag, start, end = text(3)
        ids += [tag, start] + [image] * tokens_per_view + [end]
    ids += text(1) + text(24) + text(5)                      # \n question <|im_end|> assistant
    return torch.tensor([ids])


def build_models(args, config):
    """``(head, baseline)`` in eval mode on ``args.device`` / ``args.dtype``."""
    import torch
    from holodrive.models.drive_qa import MonoDriveForCausalLM
    from holodrive.models.drive_qa.modular_baseline import ModularDriveBaseline
    torch.manual_seed(args.seed)
    if args.pretrained:
        head = MonoDriveForCausalLM.from_pretrained(args.pretrained, dtype=torch.float32)
    else:
        head = MonoDriveForCausalLM(config)
    width, height = args.image_size
    baseline = ModularDriveBaseline(head, (height, width))
    dtype = getattr(torch, args.dtype)
    baseline.to(device=args.device, dtype=dtype).eval()      # moves the shared head too
    return head.eval(), baseline


# ----------------------------------------------------------------------------- timing
def _sync(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def generate_timed(step, input_ids, pixel_values, new_tokens, device, banned=None):
    """``(first_token_s, decode_s, tokens)``: one greedy generation with the KV cache.

    ``step(input_ids, pixel_values, **kw)`` returns a ``CausalLMOutputWithPast``; ``banned``:
    a token id never generated (``<IMG_CONTEXT>``, which would need pixels)."""
    import torch

    def greedy(logits):
        logits = logits[:, -1]
        if banned is not None:
            logits = logits.index_fill(-1, torch.tensor([banned], device=logits.device),
                                       float('-inf'))
        return logits.argmax(-1, keepdim=True)
    with torch.no_grad():
        _sync(device)
        t0 = time.perf_counter()
        out = step(input_ids, pixel_values, use_cache=True, logits_to_keep=1)
        token = greedy(out.logits)
        _sync(device)
        t1 = time.perf_counter()
        tokens = [token]
        cache = out.past_key_values
        for _ in range(new_tokens):
            out = step(token, None, past_key_values=cache, use_cache=True, logits_to_keep=1)
            token = greedy(out.logits)
            cache = out.past_key_values
            tokens.append(token)
        _sync(device)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, torch.cat(tokens, dim=1)


def measure(steps, input_ids, pixel_values, args, banned=None):
    """``{model: {'first_token_s': [..], 'decode_s': [..]}}``; warm-up, then the models
    alternate (the first one swaps each repeat), one log line per repeat."""
    times = {k: dict(first_token_s=[], decode_s=[]) for k in steps}
    names = list(steps)
    for i in range(args.warmup):
        for k in names:
            generate_timed(steps[k], input_ids, pixel_values, args.new_tokens, args.device,
                           banned)
        log(f'warm-up {i + 1}/{args.warmup} done')
    for i in range(args.repeats):
        order = names if i % 2 == 0 else names[::-1]
        line = []
        for k in order:
            first, decode, _ = generate_timed(steps[k], input_ids, pixel_values,
                                              args.new_tokens, args.device, banned)
            times[k]['first_token_s'].append(first)
            times[k]['decode_s'].append(decode)
            line.append(f'{k} first {first * 1e3:.1f} ms, decode {decode * 1e3:.1f} ms')
        log(f'repeat {i + 1}/{args.repeats}: ' + '; '.join(line))
    return times


# ----------------------------------------------------------------------------- report
def summarise(times, new_tokens):
    first = statistics.median(times['first_token_s'])
    decode = statistics.median(times['decode_s'])
    return dict(first_token_ms=first * 1e3,
                decode_tokens_per_s=new_tokens / decode if new_tokens and decode > 0 else None)


def print_table(res):
    head = (f'{"model":<11} {"params total":>14} {"params active":>14} {"visual tokens":>13} '
            f'{"first-token ms":>14} {"decode tok/s":>12}')
    print(head)
    print('-' * len(head))
    for k in MODELS:
        m = res['models'][k]
        tps = m['decode_tokens_per_s']
        print(f'{k:<11} {m["params_total"]:>14,} {m["params_active"]:>14,} '
              f'{m["visual_tokens"]:>13} {m["first_token_ms"]:>14.1f} '
              f'{"n/a" if tps is None else f"{tps:.1f}":>12}')
    r = res['ratio']
    print(f'first-token latency monolithic / modular = {r["first_token"]:.3f}x '
          f'(goal <= {GOAL_RATIO}x: {"met" if r["goal_met"] else "NOT met"})'
          + ('' if r['decode_tokens_per_s'] is None else
             f'; decode tok/s monolithic / modular = {r["decode_tokens_per_s"]:.3f}x'))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    config, tokenizer, source = load_head_config(args)
    check_args(args, config)
    width, height = args.image_size
    side = config.pixels_per_visual_token
    tokens_per_view = (width // side) * (height // side)
    log(f'models: {source}; {args.views} views {width}x{height}, {args.device} {args.dtype}, '
        f'{torch.get_num_threads()} thread(s)')
    head, baseline = build_models(args, config)
    input_ids = build_prompt(head.config, tokenizer, args.views, tokens_per_view,
                             args.seed).to(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    pixel_values = torch.randn(1, args.views, 3, height, width, generator=gen).to(
        device=args.device, dtype=getattr(torch, args.dtype))

    from holodrive.models.drive_qa.modular_baseline import mono_parameter_counts
    with torch.no_grad():
        visual = {'monolithic': head.camera_tokens(pixel_values).shape[1],
                  'modular': baseline.camera_tokens(pixel_values).shape[1]}
    slots = int((input_ids == head.config.image_token_id).sum())
    counts = {'monolithic': mono_parameter_counts(head), 'modular': baseline.parameter_counts()}
    vit = dict(width=baseline.width, depth=baseline.depth,
               heads=baseline.vit.config.num_attention_heads, intermediate=baseline.intermediate,
               patch=baseline.vit.config.patch_size, image_hw=[height, width])
    log(f'prompt {input_ids.shape[1]} tokens ({slots} <IMG_CONTEXT>); baseline ViT width '
        f'{vit["width"]} depth {vit["depth"]} heads {vit["heads"]} MLP {vit["intermediate"]}; '
        f'params monolithic {counts["monolithic"]["total"]:,} vs modular '
        f'{counts["modular"]["total"]:,}')

    steps = {'monolithic': lambda ids, px, **kw: head(input_ids=ids, pixel_values=px, **kw),
             'modular': lambda ids, px, **kw: baseline(ids, px, **kw)}
    times = measure(steps, input_ids, pixel_values, args, banned=head.config.image_token_id)

    models = {}
    for k in MODELS:
        models[k] = dict(params_total=counts[k]['total'], params_active=counts[k]['active'],
                         param_breakdown=counts[k], visual_tokens=visual[k],
                         **summarise(times[k], args.new_tokens), times_s=times[k])
    models['modular']['vit'] = vit
    ratio = models['monolithic']['first_token_ms'] / models['modular']['first_token_ms']
    tps = [models[k]['decode_tokens_per_s'] for k in MODELS]
    res = dict(
        command=shlex.join(['python', 'tools/analysis_tools/qa_latency_benchmark.py'] + argv),
        source=source, image_size=[width, height], views=args.views,
        tokens_per_view=tokens_per_view, prompt_tokens=int(input_ids.shape[1]),
        image_context_slots=slots, repeats=args.repeats, warmup=args.warmup,
        new_tokens=args.new_tokens, threads=torch.get_num_threads(), device=args.device,
        dtype=args.dtype, torch=torch.__version__, models=models,
        params_relative_difference=(counts['modular']['total'] - counts['monolithic']['total'])
        / counts['monolithic']['total'],
        ratio=dict(first_token=ratio, goal=GOAL_RATIO, goal_met=ratio <= GOAL_RATIO,
                   decode_tokens_per_s=None if None in tps else tps[0] / tps[1]))
    print_table(res)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=1)
        print(f'numbers: {args.out}')
    return res


if __name__ == '__main__':
    from holodrive.engine.cli import run_cli
    run_cli(main)
