"""Runtime fixes the pinned OpenMMLab stack needs on torch 2.13 (one place, idempotent).

Each fix is a small, documented patch of library *behaviour at run time*; nothing in
site-packages is edited. See docs/install.md for the pitfalls behind them.

1. ``weights_only`` checkpoints: torch >= 2.6 loads with ``weights_only=True``; mmengine
   0.10.7 writes numpy scalars and ``HistoryBuffer`` objects into checkpoint ``meta`` and
   then cannot read its own checkpoints (resume fails). We allow-list exactly those
   harmless types with ``torch.serialization.add_safe_globals`` so untrusted pickles stay
   blocked (we never set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``). ``HistoryBuffer`` also
   pickled its class-level statistics functions through ``getattr`` (never safe to allow);
   it now leaves them out (they are registered again at import).
2. Atomic checkpoint writes: mmengine's local backend writes files in place, so a kill
   mid-save leaves a truncated ``.pth``. ``LocalBackend.put``/``put_text`` now write through
   :func:`holodrive.utils.io.atomic_write_bytes` (umask permissions, fsynced file and folder).
3. DDP on CPU: mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally;
   without CUDA we initialise the (gloo) process group directly. tools/train.py also wraps
   the model with ``device_ids=None`` on CPU.
4. spconv on CPU: the CUDA spconv wheels (spconv-cu120) pick implicit-GEMM kernels that
   exist only on GPU. Our sparse-conv classes choose the algorithm per forward from the input
   device (``ConvAlgo.Native`` on CPU, the GPU algorithm on CUDA), and spconv's stream lookup returns 0 without CUDA (fixes backward).
5. Explicit ``weights_only=True`` for mmengine's own local checkpoint loading (``load_from``,
   ``resume``): its loader calls ``torch.load`` without the argument, i.e. relies on torch's
   default, which the ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` environment variable turns off.
   The same loader reads ``.safetensors`` files (``load_from`` / ``init_cfg=Pretrained`` on
   a converted checkpoint) as ``{'state_dict': tensors}``.
6. Config formatting cost: ``Config.pretty_text`` runs yapf over the whole config every
   time (the Runner calls it about five times per start: log, dump, checkpoint meta), about
   2 s each on these machines. The formatter is memoised on its input text, so the output
   is unchanged and each distinct config is formatted once per process.
7. ``np.long``: mmdet3d 1.4.0's ``DataBaseSampler.sample_all`` (GT-paste augmentation) and
   mmdet 3.3.0's text transforms use ``np.long``, which numpy 1.24-1.26 removed (numpy 2
   has it again, as C ``long``). On numpy 1.x we define it as ``np.int64`` (C ``long`` on
   64-bit Linux, what numpy 2 gives).

Nothing here runs at import: the entry points (tools/*.py through
``holodrive.engine.cli.import_project``) and ``import holodrive.models`` call
:func:`apply_runtime_fixes`. Each patch checks the library version it was written for.
"""
import warnings

_APPLIED = set()

#: Library versions each patch was written for; another version is skipped with a warning.
PATCHED_VERSIONS = {'mmengine': ('0.10.',), 'spconv': ('2.3.',), 'mmdet3d': ('1.4.',)}


def _version_ok(lib, patch):
    """True when the installed ``lib`` is a version ``patch`` was written for."""
    try:
        version = __import__(lib).__version__
    except ImportError:
        return False
    if version.startswith(PATCHED_VERSIONS[lib]):
        return True
    warnings.warn(f'holodrive.compat: skipping {patch}: written for {lib} '
                  f'{"/".join(PATCHED_VERSIONS[lib])}x, found {version}', RuntimeWarning)
    return False


def _once(fn):
    def wrapper():
        if fn.__name__ not in _APPLIED:
            fn()
            _APPLIED.add(fn.__name__)
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_once
def allow_mmengine_checkpoint_globals():
    """Let ``torch.load(weights_only=True)`` read mmengine Runner checkpoints."""
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer
    from mmengine.config import ConfigDict

    if not _version_ok('mmengine', 'allow_mmengine_checkpoint_globals'):
        return
    safe = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype]
    # numpy 1 pickles ``numpy.core.multiarray.scalar``, numpy 2 ``numpy._core.multiarray``:
    # allow both names so checkpoints written under either load under either.
    import importlib
    try:
        multiarray = importlib.import_module('numpy._core.multiarray')  # numpy 2
    except ImportError:
        multiarray = importlib.import_module('numpy.core.multiarray')  # numpy 1
    safe += [multiarray.scalar, multiarray._reconstruct]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        safe += [(multiarray.scalar, f'{module}.scalar'),
                 (multiarray._reconstruct, f'{module}._reconstruct')]
    # numpy >= 1.25 pickles dtypes through their concrete classes (np.dtypes.Float64DType...).
    safe += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    torch.serialization.add_safe_globals(safe)

    def getstate_without_functions(self):
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)
        return state

    HistoryBuffer.__getstate__ = getstate_without_functions


@_once
def atomic_local_writes():
    """Make mmengine's local file backend (checkpoints, ``last_checkpoint``) write atomically."""
    if not _version_ok('mmengine', 'atomic_local_writes'):
        return
    from mmengine.fileio.backends.local_backend import LocalBackend

    from holodrive.utils.io import atomic_write_bytes

    def put(self, obj, filepath):
        atomic_write_bytes(str(filepath), obj)

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write_bytes(str(filepath), obj.encode(encoding))

    LocalBackend.put = put
    LocalBackend.put_text = put_text


@_once
def weights_only_local_checkpoints():
    """mmengine's loader for local paths passes ``weights_only=True`` explicitly."""
    if not _version_ok('mmengine', 'weights_only_local_checkpoints'):
        return
    import os.path as osp

    import torch
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_local(filename, map_location):
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        if filename.endswith('.safetensors'):   # e.g. tools/convert/piip_official.py output
            from safetensors.torch import load_file
            device = map_location if isinstance(map_location, str) else 'cpu'
            return {'state_dict': load_file(filename, device=device)}
        return torch.load(filename, map_location=map_location, weights_only=True)

    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)


@_once
def memoise_config_formatting():
    """Format each distinct config text with yapf once per process (same output)."""
    if not _version_ok('mmengine', 'memoise_config_formatting'):
        return
    import mmengine.config.config as config_module

    format_code = config_module.FormatCode
    cache = {}

    def memoised(unformatted_source, **kwargs):
        key = (unformatted_source, repr(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = format_code(unformatted_source, **kwargs)
        return cache[key]

    memoised.cache = cache            # inspectable (tests)
    config_module.FormatCode = memoised


@_once
def cpu_distributed_launch():
    """Let mmengine's ``init_dist('pytorch')`` run on machines without CUDA (gloo)."""
    import torch
    import torch.distributed as dist
    from mmengine.dist import utils as dist_utils

    if not _version_ok('mmengine', 'cpu_distributed_launch'):
        return
    original = dist_utils._init_dist_pytorch

    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        dist.init_process_group(backend='gloo' if backend == 'nccl' else backend, **kwargs)

    dist_utils._init_dist_pytorch = init_dist_pytorch


@_once
def spconv_native_on_cpu():
    """Register CPU-safe spconv conv classes under mmdet3d's names (``SubMConv3d`` ...)."""
    try:
        import spconv.pytorch as spconv
        from spconv.pytorch import cppcore, ops
    except ImportError:  # spconv is optional for modules that do not use sparse conv
        return
    if not _version_ok('spconv', 'spconv_native_on_cpu'):
        return
    import torch
    from mmengine.registry import MODELS
    import mmdet3d.models.layers.spconv  # noqa: F401  (registers spconv first; we override)

    def current_stream():
        return torch.cuda.current_stream().cuda_stream if torch.cuda.is_available() else 0

    ops.get_current_stream = current_stream
    cppcore.get_current_stream = current_stream

    def cpu_safe(cls):
        class CpuSafe(cls):
            __doc__ = (f'{cls.__name__} that runs ``ConvAlgo.Native`` on CPU tensors and its '
                       'GPU algorithm on CUDA tensors (chosen per forward).')

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.device_algo = self.algo  # spconv's (or the config's) GPU choice

            def forward(self, input, *args, **kwargs):
                self.algo = (self.device_algo if input.features.is_cuda
                             else spconv.ConvAlgo.Native)
                return super().forward(input, *args, **kwargs)

        CpuSafe.__name__ = CpuSafe.__qualname__ = cls.__name__
        return CpuSafe

    for name in ('SubMConv2d', 'SubMConv3d', 'SparseConv2d', 'SparseConv3d',
                 'SparseInverseConv2d', 'SparseInverseConv3d',
                 'SparseConvTranspose2d', 'SparseConvTranspose3d'):
        MODELS.register_module(name=name, module=cpu_safe(getattr(spconv, name)), force=True)


@_once
def quiet_known_warnings():
    """Silence deprecation noise from pinned libraries that we cannot change."""
    for msg in (r'.*torch\.cuda\.amp\..*is deprecated.*',
                r'.*torch\.meshgrid: in an upcoming release.*'):
        warnings.filterwarnings('ignore', message=msg, category=FutureWarning)
        warnings.filterwarnings('ignore', message=msg, category=UserWarning)


@_once
def numpy_long_alias():
    """Fix 7: ``np.long`` for mmdet3d's GT-paste sampler on numpy 1.24-1.26."""
    import numpy as np
    if int(np.__version__.split('.')[0]) >= 2 or 'long' in np.__dict__:
        return
    if _version_ok('mmdet3d', 'numpy_long_alias'):
        np.long = np.int64


def apply_runtime_fixes():
    """Apply every fix above (safe to call many times)."""
    quiet_known_warnings()
    allow_mmengine_checkpoint_globals()
    atomic_local_writes()
    weights_only_local_checkpoints()
    memoise_config_formatting()
    cpu_distributed_launch()
    spconv_native_on_cpu()
    numpy_long_alias()
