"""Checkpoint checks for tools/train.py and tools/test.py, with one-line errors.

- :func:`load_weights_only`: ``torch.load(weights_only=True)``; a refused pickled global
  becomes one line saying what the file is and how to convert it.
- :func:`check_checkpoint_matches`: missing / unexpected keys and shape mismatches against
  the built model; a checkpoint of another model fails unless ``--allow-partial``. A model
  that renames keys while loading (a ``load_state_dict`` pre-hook, e.g. the driving-QA head
  under LoRA) exposes the same renaming as ``model.rename_checkpoint_keys(state_dict)``,
  which is applied before the comparison.
- :func:`check_resume_schedule`: ``--resume`` refuses a changed schedule or dataset.
"""
import pickle

import torch

from .config_check import ConfigError

#: More than this fraction of missing or unexpected keys means "another model".
MAX_PARTIAL_FRACTION = 0.05


def load_weights_only(path):
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).replace('\n', ' ')
        glob = detail[detail.find('GLOBAL'):].split(' was not')[0] if 'GLOBAL' in detail \
            else detail[:120]
        raise ConfigError(
            f'checkpoint {path} contains pickled objects that weights_only loading refuses '
            f"({glob}); re-save its state_dict with torch.save({{'state_dict': ...}}) or "
            'convert it with tools/convert/') from None


def _state_dict(ckpt):
    if isinstance(ckpt, dict):
        for key in ('state_dict', 'model'):
            if isinstance(ckpt.get(key), dict):
                return ckpt[key]
    return ckpt


def check_checkpoint_matches(model, path, allow_partial=False):
    """Report key / shape differences; raise :class:`ConfigError` for another model's file."""
    model = getattr(model, 'module', model)
    ours = model.state_dict()
    theirs = {k[len('module.'):] if k.startswith('module.') else k: v
              for k, v in _state_dict(load_weights_only(path)).items()}
    if hasattr(model, 'rename_checkpoint_keys'):
        model.rename_checkpoint_keys(theirs)
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    shapes = sorted(k for k in set(ours) & set(theirs)
                    if hasattr(theirs[k], 'shape') and tuple(theirs[k].shape) != tuple(ours[k].shape))
    report = (f'checkpoint {path}: {len(missing)} missing, {len(unexpected)} unexpected, '
              f'{len(shapes)} shape-mismatched keys of {len(ours)}')
    bad = (shapes or len(missing) > MAX_PARTIAL_FRACTION * len(ours)
           or len(unexpected) > MAX_PARTIAL_FRACTION * max(len(theirs), 1))
    if bad and not allow_partial:
        first = (shapes or missing or unexpected)[0]
        raise ConfigError(f'{report} (e.g. {first}): it was saved by a different model; '
                          'pass --allow-partial to load what matches')
    return report, missing, unexpected, shapes


def _schedule(cfg):
    loader = cfg.get('train_dataloader') or {}
    dataset = dict(loader.get('dataset') or {})
    dataset.pop('pipeline', None)
    return {
        'train_cfg.max_epochs': (cfg.get('train_cfg') or {}).get('max_epochs'),
        'train_cfg.max_iters': (cfg.get('train_cfg') or {}).get('max_iters'),
        'param_scheduler': cfg.get('param_scheduler'),
        'train_dataloader.batch_size': loader.get('batch_size'),
        'train_dataloader.dataset': dataset,
    }


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def check_resume_schedule(cfg, path):
    """Raise :class:`ConfigError` naming the first schedule key that differs from ``path``'s."""
    from mmengine.config import Config
    saved = (load_weights_only(path).get('meta') or {}).get('cfg')
    if not saved:
        return
    try:
        old = Config.fromstring(saved, '.py')
    except Exception:  # an unreadable saved config: nothing to compare
        return
    now, before = _schedule(cfg), _schedule(old)
    for key in now:
        if _plain(now[key]) != _plain(before[key]):
            raise ConfigError(
                f'--resume {path}: {key} changed since the checkpoint was saved '
                f'({before[key]!r} -> {now[key]!r}); use a new --work-dir, or --cfg-options '
                f'{key}=... to match the checkpoint'.replace('\n', ' '))
