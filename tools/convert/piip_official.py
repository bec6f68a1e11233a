"""Convert an official PIIP checkpoint (or a plain ViT into one branch) to our PIIP, in one pass.

    python tools/convert/piip_official.py SRC DST [--official-config JSON | --config PY]
           [--out-config PY] [--branch N] [--backbone-only] [--allow-partial] [--dtype D]
    python tools/convert/piip_official.py --official-config JSON --out-config PY

SRC: an official mmdet 2.x / mmseg 0.x PIIP checkpoint (``state_dict`` with ``backbone.``
names, as on huggingface.co/OpenGVLab/PIIP), a DeepSpeed ``{'module': ...}`` file, or with
``--branch N`` a plain DeiT / DeiT III / MAE ViT-H / InternViT-6B checkpoint (timm or HF
names) for branch N (1 = the largest model). Read with ``torch.load(weights_only=True)`` or
from ``.safetensors``; a pickle needing arbitrary objects is refused with a one-line recipe.

DST: a safetensors file of ``{name: tensor}``: ``backbone.<our name>`` plus the neck / head
tensors passed through unchanged (mmdet 2.x Mask R-CNN / FPN and mmseg UperNet names equal
the 3.x ones; the DINO head of the official fork does not: use ``--backbone-only``); with
``--backbone-only`` only the backbone, without the prefix (loads into ``PIIP`` directly).
Written atomically, and only when nothing is left unmatched unless ``--allow-partial``.

The target our names and shapes are checked against is our PIIP built (on the meta device)
from ``--config`` (a Python file with ``backbone = dict(...)`` or ``model.backbone``), else from
``--official-config`` (the official backbone keyword arguments as JSON: a file or a string),
else from the official config saved in SRC's ``meta['config']``; with none, names are
checked against our layout only. Every unmatched, missing or shape-mismatched key is printed;
the exit status is 1 when any remain (0 with ``--allow-partial``, which writes what matches),
2 for unusable input. ``--out-config PY`` writes the translated official definition as our
config (a Python file defining ``backbone = dict(type='piip_det.PIIP', ...)``).
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from piip_det.convert import (ConversionError, atomic_path, build_target, compare,  # noqa: E402
                              convert_piip, convert_plain_vit, load_checkpoint, save_safetensors)
from piip_det.convert_config import (format_config, official_config_from_meta,  # noqa: E402
                                     translate_official_config)

DTYPES = {'keep': None, 'float32': torch.float32, 'bfloat16': torch.bfloat16,
          'float16': torch.float16}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('src', nargs='?', help='official checkpoint (.pth / .safetensors)')
    p.add_argument('dst', nargs='?', help='output .safetensors file')
    p.add_argument('--official-config', metavar='JSON',
                   help='official backbone kwargs as JSON (a file, or a string starting with {)')
    p.add_argument('--config', metavar='PY', help='our config with backbone = dict(...)')
    p.add_argument('--out-config', metavar='PY', help='write the translated config here')
    p.add_argument('--branch', type=int, metavar='N', help='SRC is a plain ViT for branch N')
    p.add_argument('--backbone-only', action='store_true',
                   help='write only the backbone, without the backbone. prefix')
    p.add_argument('--allow-partial', action='store_true',
                   help='write what matches and exit 0 despite unmatched keys')
    p.add_argument('--dtype', choices=sorted(DTYPES), default='keep',
                   help='cast floating tensors (default: keep)')
    args = p.parse_args(argv)
    if (args.src is None) != (args.dst is None):
        p.error('give both SRC and DST')
    if args.src is None and not (args.official_config and args.out_config):
        p.error('give SRC DST, or --official-config JSON --out-config PY')
    if args.config and args.official_config:
        p.error('give --config or --official-config, not both')
    return args


def _read_official(spec):
    try:
        if spec.lstrip().startswith('{'):
            return json.loads(spec)
        with open(spec) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise ConversionError(f'--official-config {spec}: {err}') from None


def _read_ours(path):
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path).to_dict()
    except Exception as err:  # a config that does not load: one line
        raise ConversionError(f'--config {path}: {" ".join(str(err).split())[:200]}') from None
    backbone = cfg.get('backbone') or (cfg.get('model') or {}).get('backbone')
    if not isinstance(backbone, dict):
        raise ConversionError(f'--config {path} defines neither backbone nor model.backbone')
    return backbone


def _target_config(args, meta):
    """``(our backbone config | None, where it came from, translation notes)``."""
    if args.config:
        return _read_ours(args.config), f'--config {args.config}', []
    official, where = None, None
    if args.official_config:
        official = _read_official(args.official_config)
        inline = args.official_config.lstrip().startswith('{')
        where = '--official-config ' + ('(inline JSON)' if inline else args.official_config)
    elif meta is not None and args.branch is None:
        official = official_config_from_meta(meta)
        where = f"the official config in {args.src} meta['config']" if official else None
    if official is None:
        return None, None, []
    cfg, notes = translate_official_config(official)
    return cfg, where, notes


def _split(tensors, src):
    """Official tensors -> ``(backbone names without the prefix, the rest, prefix)``."""
    backbone = {k[len('backbone.'):]: v for k, v in tensors.items() if k.startswith('backbone.')}
    if backbone:
        return backbone, {k: v for k, v in tensors.items() if not k.startswith('backbone.')}, \
            'backbone.'
    if not any(k.startswith('branch1.') for k in tensors) and \
            any(re.match(r'(blocks|encoder\.layers|vision_model)\.', k) for k in tensors):
        raise ConversionError(f'{src} looks like a plain ViT checkpoint (no backbone.branch* '
                              'names): give --branch N and --config PY or --official-config JSON')
    return tensors, {}, ''   # a bare PIIP backbone state dict


def run(args):
    tensors = meta = None
    if args.src:
        tensors, meta = load_checkpoint(args.src)
    cfg, where, notes = _target_config(args, meta)
    for note in notes:
        print(f'config: {note}')
    if args.out_config:
        if cfg is None or args.config:
            raise ConversionError('--out-config needs an official definition: --official-config '
                                  'JSON (or SRC with one in its meta)')
        with atomic_path(args.out_config) as tmp, open(tmp, 'w') as f:
            f.write(format_config(cfg, notes, source=where))
        print(f'wrote {args.out_config}')
    if tensors is None:
        return 0
    if args.branch is not None and cfg is None:
        raise ConversionError('--branch needs the target config: --config PY or '
                              '--official-config JSON')
    target = build_target(cfg) if cfg else None
    print('target: ' + (f'our PIIP from {where}' if target else 'none (names checked against '
                        'our layout only; --config or --official-config also checks shapes)'))
    extra, passthrough = [], {}
    if args.branch is not None:
        if not 1 <= args.branch <= target.num_branches:
            raise ConversionError(f'--branch {args.branch}: the target has branches 1..'
                                  f'{target.num_branches}')
        branch_cfg = cfg['branches'][args.branch - 1] if 'branches' in cfg else cfg  # ViTBaseline
        ours, dropped, extra = convert_plain_vit(tensors, target, args.branch, branch_cfg)
        src_prefix, scope = '', f'branch{args.branch}.'
    else:
        backbone, passthrough, src_prefix = _split(tensors, args.src)
        ours, dropped = convert_piip(backbone, target)
        scope = ''
    print(f'{args.src}: {len(tensors)} tensors, {len(ours)} for the backbone, '
          f'{len(passthrough)} neck/head ' + ('(not written)' if args.backbone_only
                                              else '(passed through unchanged)'))
    if any('transformer.' in k for k in passthrough) and not args.backbone_only:
        print('note: the official DINO head (bbox_head.transformer.*) does not map to mmdet '
              "3.x DINO's names; --backbone-only writes the backbone alone")
    by_reason = {}
    for name, why in dropped:
        by_reason.setdefault(why, []).append(src_prefix + name)
    for why, names in by_reason.items():
        print(f'dropped {len(names)} ({why}): e.g. {names[0]}')
    for note in extra:
        print(f'note: {note}')
    out_prefix = '' if args.backbone_only else 'backbone.'
    problems = compare(ours, target, scope)
    for kind, name, src, detail in problems:
        shown = out_prefix + name if src is None or src == '(filled)' else src_prefix + src
        renamed = f' (ours: {out_prefix}{name})' if src not in (None, name, '(filled)') else ''
        print(f'{kind}: {shown}{renamed}: {detail}')
    if problems and not args.allow_partial:
        print(f'{len(problems)} unmatched / missing / shape-mismatched keys: {args.dst} not '
              'written (--allow-partial writes what matches)')
        return 1
    bad = {name for kind, name, _, _ in problems if kind != 'missing'}
    dtype = DTYPES[args.dtype]
    out = {out_prefix + k: t for k, (_, t) in ours.items() if k not in bad}
    if not args.backbone_only:
        out.update(passthrough)
    if dtype is not None:
        out = {k: t.to(dtype) if t.is_floating_point() else t for k, t in out.items()}
    save_safetensors(out, args.dst, metadata=dict(
        format='pt', converter='tools/convert/piip_official.py', source=args.src,
        target=where or 'none', layout='piip_det.PIIP backbone' + (
            '' if args.backbone_only else " under 'backbone.', neck/head as in the source")))
    status = f'{len(problems)} problems left out (--allow-partial)' if problems else \
        ('all backbone keys match our PIIP' if target else 'all names follow our layout')
    print(f'wrote {args.dst}: {len(out)} tensors; {status}')
    return 0


def main(argv=None):
    """Run the CLI; returns the exit status (0 ok, 1 unmatched keys left, 2 unusable input)."""
    args = parse_args(argv)
    try:
        return run(args)
    except ConversionError as err:
        print(f'piip_official.py: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
