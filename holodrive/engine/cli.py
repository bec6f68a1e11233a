"""Shared plumbing for tools/train.py and tools/test.py."""
import glob
import os
import os.path as osp
import re
import sys
from typing import Optional

from .config_check import ConfigError, check_config, load_config


def add_runner_args(parser):
    """The arguments train.py and test.py share: ``--cfg-options``, ``--launcher``, local rank."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=None,
                        help='set by torch.distributed.launch (torchrun sets LOCAL_RANK)')
    return parser


def parse_runner_args(parser, argv=None):
    """Parse, and export ``LOCAL_RANK`` for launchers that pass ``--local-rank`` (only then: a
    single-process run must not leave ``LOCAL_RANK`` in the environment of what it starts)."""
    args = parser.parse_args(argv)
    if args.local_rank is not None:
        os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def import_project():
    """Register every HoloDrive / PIIP module and apply the runtime fixes."""
    from holodrive.compat import apply_runtime_fixes
    apply_runtime_fixes()
    import holodrive.registry  # noqa: F401
    import holodrive.engine.hooks  # noqa: F401
    import holodrive.engine.optim_wrappers  # noqa: F401
    import holodrive.datasets.scene_dataset  # noqa: F401
    import holodrive.datasets.qa_dataset  # noqa: F401
    import holodrive.datasets.transforms  # noqa: F401
    import holodrive.models  # noqa: F401
    import piip_det.registry  # noqa: F401


def prepare_config(config_path, work_dir=None, cfg_options=None, launcher='none',
                   amp=False, check_paths=True):
    """Load, override and check a config; fill work_dir and the distributed backend."""
    import torch
    cfg = load_config(config_path, cfg_options)
    if cfg_options and 'data_root' in cfg_options:
        original = load_config(config_path).get('data_root')
        if original:
            switch_data_root(cfg, original, cfg_options['data_root'])
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(config_path))[0])
    if launcher != 'none' and not torch.cuda.is_available():
        # nccl needs GPUs; gloo runs DDP on CPU processes.
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        if cfg.get('runner_type') == 'FlexibleRunner' and cfg.get('strategy'):
            # FSDPStrategy passes device_id=LOCAL_RANK (a CUDA index); FSDP runs on CPU with gloo
            wrapper = cfg.strategy.setdefault('model_wrapper', {})
            wrapper.setdefault('device_id', 'cpu')
            for key in ('state_dict_config', 'optim_state_dict_config'):
                sub = (cfg.strategy.get('state_dict_cfg') or {})
                if isinstance(sub, dict) and isinstance(sub.get(key), dict):
                    sub[key]['offload_to_cpu'] = False   # torch segfaults offloading CPU tensors
        elif cfg.get('model_wrapper_cfg') is None:  # CPU modules take no device_ids
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
    if amp:
        optim = cfg.optim_wrapper
        if optim.get('type', 'OptimWrapper') != 'OptimWrapper':
            raise ConfigError(f'{config_path}: --amp needs optim_wrapper.type=OptimWrapper, '
                              f"got '{optim.type}'")
        optim.type = 'AmpOptimWrapper'
        optim.loss_scale = 'dynamic'
        if not torch.cuda.is_available():
            optim.dtype = 'bfloat16'  # CPU autocast supports bf16 only
    optim = cfg.get('optim_wrapper')
    if optim and optim.get('type') == 'AmpOptimWrapper' and not torch.cuda.is_available():
        if optim.get('dtype') not in ('bfloat16', 'bf16', None):
            raise ConfigError(f"{config_path}: optim_wrapper.dtype='{optim.dtype}' needs a GPU; "
                              "use dtype='bfloat16' (or no AMP) on CPU")
        # mmengine's AmpOptimWrapper refuses CPUs; bf16 needs no loss scale
        optim.type = 'Bf16AutocastOptimWrapper'
        for key in ('dtype', 'loss_scale', 'use_fsdp'):
            optim.pop(key, None)
    check_config(cfg, config_path, check_paths=check_paths)
    return cfg


def cpu_has_native_bf16(cpuinfo: str = '/proc/cpuinfo') -> Optional[bool]:
    """Whether the CPU multiplies bf16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag);
    None when ``cpuinfo`` cannot be read (not Linux)."""
    try:
        with open(cpuinfo, encoding='utf-8', errors='replace') as f:
            flags = set(' '.join(line.split(':', 1)[1] for line in f
                                 if line.startswith('flags')).split())
    except OSError:
        return None
    return bool(flags & {'avx512_bf16', 'amx_bf16'})


def amp_warnings(cfg, cpuinfo: str = '/proc/cpuinfo') -> list:
    """One line when bf16 autocast on CPU (``--amp``) runs on a CPU without native bf16: torch
    then emulates it and a step gets several times slower (docs/drive_qa.md, 'bf16')."""
    optim = cfg.get('optim_wrapper') or {}
    if optim.get('type') != 'Bf16AutocastOptimWrapper' or cpu_has_native_bf16(cpuinfo) is not False:
        return []
    return ['warning: --amp on a CPU without AVX512-BF16 / AMX: bf16 is emulated and training '
            'will be several times slower than fp32; drop --amp on this machine']


def schedule_warnings(cfg) -> list:
    """One line per way the lr schedule stops before training does.

    Epoch-based schedulers are fixed when the config is read: ``--cfg-options
    train_cfg.max_epochs=N`` does not stretch them, so past the last scheduler's ``end`` the lr
    stays at its final value. Warn when every epoch-based scheduler ends before
    ``train_cfg.max_epochs`` (iteration-based ones, e.g. a warm-up, are not counted).
    """
    train_cfg = cfg.get('train_cfg') or {}
    max_epochs = train_cfg.get('max_epochs')
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    ends = [s.get('end') for s in schedulers if s.get('by_epoch', True)]
    if not max_epochs or not ends or any(e is None for e in ends):
        return []
    last = max(ends)
    if last >= max_epochs:
        return []
    return [f'warning: param_scheduler ends at epoch {last} but train_cfg.max_epochs='
            f'{max_epochs}: the lr stays at its final value for the last {max_epochs - last} '
            'epochs (--cfg-options train_cfg.max_epochs does not stretch the schedule; set '
            'max_epochs in a derived config that rebuilds param_scheduler)']


_DATA_SECTIONS = ('train_dataloader', 'val_dataloader', 'test_dataloader',
                  'val_evaluator', 'test_evaluator', 'model')


def switch_data_root(cfg, old_root, new_root):
    """Rewrite every path under ``old_root`` in the dataloaders, evaluators and the model
    (files kept in the data root, e.g. the caption tokenizer) to ``new_root``.

    ``--cfg-options data_root=DIR`` sets only the top-level variable; the sections were
    filled from it when the config was read, so their strings still start with the old
    root (``data_root``, the evaluator's absolute ``ann_file`` ...). Paths that do not
    start with it (relative ``ann_file`` of a dataset) are left alone.
    """
    old = old_root.rstrip('/') + '/'

    def rewrite(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str) and (v == old_root or v.startswith(old)):
                    rest = v[len(old):] if v.startswith(old) else ''
                    node[k] = osp.join(new_root, rest) if rest else new_root.rstrip('/') + '/'
                else:
                    rewrite(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                rewrite(v)

    for section in _DATA_SECTIONS:
        if cfg.get(section) is not None:
            rewrite(cfg[section])
    cfg.data_root = new_root.rstrip('/') + '/'
    return cfg


_CKPT = re.compile(r'(epoch|iter)_(\d+)\.pth$')


def find_resume_checkpoint(work_dir):
    """The newest complete checkpoint in ``work_dir`` (None if there is none).

    Prefers the file named in ``last_checkpoint``; falls back to the highest
    ``epoch_N.pth`` / ``iter_N.pth`` when that file is missing or unreadable.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if path and osp.isfile(path) and osp.getsize(path) > 0:
            return path
    candidates = [(int(m.group(2)), p) for p in glob.glob(osp.join(work_dir, '*.pth'))
                  if (m := _CKPT.search(p)) and osp.getsize(p) > 0]
    return max(candidates)[1] if candidates else None


class UserFileNotFoundError(ConfigError, FileNotFoundError):
    """A file the user named (command line or config) does not exist: one-line error."""


def run_cli(main):
    """Run ``main()``; expected user errors exit with one line instead of a traceback.

    User errors are :class:`ConfigError` (bad config, a path named in the config or on the
    command line that does not exist: :class:`UserFileNotFoundError`) and the data errors
    of :mod:`holodrive.datasets.errors`. A bare ``FileNotFoundError`` raised inside library
    code is a bug or an environment problem and keeps its traceback.
    """
    from holodrive.compat import quiet_known_warnings
    quiet_known_warnings()          # before the pinned libraries are imported
    try:
        from holodrive.datasets import errors as data_errors
        data_error_types = tuple(v for v in vars(data_errors).values()
                                 if isinstance(v, type) and issubclass(v, Exception))
    except ImportError:
        data_error_types = ()
    try:
        main()
        _close_process_group(barrier=True)
    except (ConfigError, *data_error_types) as e:
        rank = os.environ.get('RANK')
        prefix = f'[rank {rank}] ' if rank not in (None, '0') else ''
        print(f'{prefix}error: {e}', file=sys.stderr)
        sys.exit(2)
    finally:
        _close_process_group(barrier=False)


def _close_process_group(barrier):
    """Destroy the default process group before the interpreter exits.

    Left alive, gloo's worker threads are torn down during interpreter finalisation and a
    rank can abort with ``terminate called without an active exception`` (SIGABRT) after a
    run that succeeded. The barrier (normal exit only) keeps one rank from tearing down
    while another still finishes its last collective.
    """
    if 'torch' not in sys.modules:   # nothing imported torch: no process group to close
        return
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()
