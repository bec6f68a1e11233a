"""Load and check configs before anything is built, with one-line errors.

OpenMMLab reports a typo deep inside a build, after a long traceback. ``load_config``
and ``check_config`` walk the config first and fail with one line that names the config
file, the dotted key and a fix, e.g.::

    configs/x.py: model.pts_bbox_head.num_heatmap_conv: CenterHead has no argument
    'num_heatmap_conv' (did you mean 'num_heatmap_convs'?)
"""
import difflib
import inspect
import os.path as osp

from mmengine.config import Config, DictAction  # noqa: F401  (DictAction used by tools)
from mmengine.registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, FUNCTIONS, HOOKS, LOOPS, METRICS,
                               MODELS, OPTIM_WRAPPERS, OPTIMIZERS, PARAM_SCHEDULERS,
                               TASK_UTILS, TRANSFORMS, VISBACKENDS, VISUALIZERS,
                               init_default_scope)


class ConfigError(Exception):
    """A config problem, reported as one line naming the file, key and fix."""


#: Top-level config key -> registries its ``type`` entries may live in.
_SECTION_REGISTRIES = {
    'model': (MODELS, TASK_UTILS),
    'train_dataloader': (DATASETS, TRANSFORMS, DATA_SAMPLERS, TASK_UTILS, FUNCTIONS),
    'val_dataloader': (DATASETS, TRANSFORMS, DATA_SAMPLERS, TASK_UTILS, FUNCTIONS),
    'test_dataloader': (DATASETS, TRANSFORMS, DATA_SAMPLERS, TASK_UTILS, FUNCTIONS),
    'val_evaluator': (METRICS, EVALUATOR),
    'test_evaluator': (METRICS, EVALUATOR),
    'optim_wrapper': (OPTIM_WRAPPERS, OPTIMIZERS),
    'param_scheduler': (PARAM_SCHEDULERS,),
    'default_hooks': (HOOKS,),
    'custom_hooks': (HOOKS,),
    'visualizer': (VISUALIZERS, VISBACKENDS),
    'train_cfg': (LOOPS,),
    'val_cfg': (LOOPS,),
    'test_cfg': (LOOPS,),
}
#: Keys whose values are passed through to a parent class; never flagged as unknown.
_PASSTHROUGH = {'type', '_scope_', 'init_cfg',
                # consumed by mmengine's builders, not by the class
                'convert_to_iter_based', 'paramwise_cfg', 'constructor'}
#: Keys whose ``type`` mmdet looks up by name in ``mmcv.ops`` (not in a registry), and the
#: extra argument mmcv's ``build_norm_layer`` consumes itself.
_MMCV_OPS_KEYS = ('roi_layer', 'nms')
_NORM_EXTRA = 'requires_grad'


def load_config(path, cfg_options=None) -> Config:
    """``Config.fromfile`` with one-line errors for missing files and syntax errors."""
    if not osp.isfile(path):
        raise ConfigError(f'{path}: config file not found (check the path; configs live in configs/)')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as e:
        where = e.filename if e.filename and e.filename != '<unknown>' else path
        raise ConfigError(f'{where}:{e.lineno}: syntax error: {e.msg}') from None
    except FileNotFoundError as e:
        raise ConfigError(f'{path}: a _base_ file was not found: {e.filename or e}') from None
    except Exception as e:  # mmengine wraps errors of base files in various types
        raise ConfigError(f'{path}: cannot load config: {type(e).__name__}: {e}'.splitlines()[0]) from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _suggest(word, choices):
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ''


def _lookup(type_name, registries):
    for registry in registries:
        try:
            cls = registry.get(type_name)
        except KeyError:
            cls = None
        if cls is not None:
            return cls
    return None


def _signature_params(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None, True
    names = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names - {'self'}, any(p.kind is p.VAR_KEYWORD for p in params)


def _forwards_to_super(fn):
    """Whether ``fn`` calls ``super()`` (read from its code object, not its source text).

    ``super()`` without arguments needs the ``__class__`` cell; ``super(C, self)`` names
    ``super`` as a global. Either way ``fn`` hands its ``**kwargs`` to the parent class.
    """
    code = getattr(fn, '__code__', None)
    if code is None:
        return False
    return 'super' in code.co_names and '__init__' in code.co_names


def _accepted_args(obj):
    """Names ``obj`` accepts, or None when that cannot be known (then anything is accepted).

    A class whose ``__init__`` takes ``**kwargs`` and passes them on through
    ``super().__init__`` also accepts its parent's arguments: we follow the MRO and union
    the parameters until a class without ``**kwargs``. When a class takes ``**kwargs`` but
    does not call ``super().__init__`` we cannot tell which names it reads, so we accept all.
    """
    if not inspect.isclass(obj):
        names, var_kw = _signature_params(obj)
        return None if var_kw else names
    accepted = set()
    for klass in obj.__mro__:
        if '__init__' not in vars(klass):
            continue
        init = vars(klass)['__init__']
        names, var_kw = _signature_params(init)
        if names is None:
            return None
        accepted |= names
        if not var_kw:
            return accepted
        if not _forwards_to_super(init):
            return None
    return None


def _walk(node, key, registries, filename):
    if isinstance(node, dict):
        type_name = node.get('type')
        leaf = key.rsplit('.', 1)[-1]
        if isinstance(type_name, str) and leaf in _MMCV_OPS_KEYS:
            import mmcv.ops
            if not hasattr(mmcv.ops, type_name):
                raise ConfigError(f"{filename}: {key}.type: '{type_name}' is not an mmcv.ops "
                                  'operator (e.g. RoIAlign, nms)')
        elif isinstance(type_name, str):
            obj = _lookup(type_name, registries)
            if obj is None:
                names = set()
                for registry in registries:
                    for reg in (registry, *_ancestors(registry)):
                        names.update(reg.module_dict)
                raise ConfigError(
                    f"{filename}: {key}.type: '{type_name}' is not registered in "
                    f"{'/'.join(r.name for r in registries)}{_suggest(type_name, names)}; "
                    'import the module that defines it (custom_imports) or fix the name')
            accepted = _accepted_args(obj)
            if accepted is not None:
                for arg in node:
                    if arg == _NORM_EXTRA and leaf.endswith('norm_cfg'):
                        continue
                    if arg not in accepted and arg not in _PASSTHROUGH:
                        raise ConfigError(
                            f"{filename}: {key}.{arg}: {getattr(obj, '__name__', type_name)} has "
                            f"no argument '{arg}'{_suggest(arg, accepted)}")
        for k, v in node.items():
            _walk(v, f'{key}.{k}', registries, filename)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            _walk(v, f'{key}[{i}]', registries, filename)


def _scoped(registry, scope):
    """The registry of ``scope`` in ``registry``'s tree (falls back to mmdet3d's, then root)."""
    registry.import_from_location()
    root = registry._get_root_registry()
    for name in (scope, 'mmdet3d'):
        child = root if root.scope == name else root._search_child(name)
        if child is not None:
            for reg in (child, *_ancestors(child)):
                reg.import_from_location()
            return child
    return root


def _ancestors(registry):
    parent = registry.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _check_paths(cfg, filename):
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(split)
        if not loader or 'dataset' not in loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset:  # wrappers such as CBGSDataset / RepeatDataset
            dataset = dataset['dataset']
        data_root = dataset.get('data_root') or ''
        if data_root and not osp.isdir(data_root):
            raise ConfigError(
                f"{filename}: {split}.dataset.data_root: folder '{data_root}' does not exist "
                '(create the data with tools/create_data.py or pass '
                f'--cfg-options {split}.dataset.data_root=DIR)')
        ann_file = dataset.get('ann_file')
        if ann_file:
            path = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
            if not osp.isfile(path):
                raise ConfigError(
                    f"{filename}: {split}.dataset.ann_file: '{path}' not found "
                    '(run tools/create_data.py to write the info files)')


def _check_evaluator_paths(cfg, filename):
    for split in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(split)
        if isinstance(evaluators, dict):
            evaluators = evaluators.get('metrics', [evaluators])
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for i, ev in enumerate(evaluators or ()):
            if not isinstance(ev, dict):
                continue
            key = split if len(evaluators) == 1 else f'{split}[{i}]'
            data_root = ev.get('data_root')
            if isinstance(data_root, str) and data_root and not osp.isdir(data_root):
                raise ConfigError(
                    f"{filename}: {key}.data_root: folder '{data_root}' does not exist "
                    '(pass --cfg-options data_root=DIR to switch every path)')
            ann_file = ev.get('ann_file')
            if isinstance(ann_file, str) and ann_file and not osp.isfile(ann_file):
                raise ConfigError(
                    f"{filename}: {key}.ann_file: '{ann_file}' not found "
                    '(run tools/create_data.py to write the info files, or pass '
                    '--cfg-options data_root=DIR)')


def check_config(cfg: Config, filename: str = None, check_paths: bool = True) -> None:
    """Raise :class:`ConfigError` on unknown types, unknown arguments or missing data."""
    filename = filename or cfg.filename or '<config>'
    scope = cfg.get('default_scope') or 'mmengine'
    init_default_scope(scope)
    for section, registries in _SECTION_REGISTRIES.items():
        if section not in cfg or cfg[section] is None:
            continue
        _walk(cfg[section], section, [_scoped(r, scope) for r in registries], filename)
    if check_paths:
        _check_paths(cfg, filename)
        _check_evaluator_paths(cfg, filename)
