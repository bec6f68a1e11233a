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
   mid-save leaves a truncated ``.pth``. ``LocalBackend.put``/``put_text`` now write a
   temporary file in the same folder, fsync it and ``os.replace`` it.
3. DDP on CPU: mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally;
   without CUDA we initialise the (gloo) process group directly. tools/train.py also wraps
   the model with ``device_ids=None`` on CPU.
4. spconv on CPU: the CUDA spconv wheels (spconv-cu120) pick implicit-GEMM kernels that
   exist only on GPU. Our sparse-conv classes use ``ConvAlgo.Native`` whenever their input
   lives on the CPU, and spconv's stream lookup returns 0 without CUDA (fixes backward).
"""
import os
import tempfile
import warnings

_APPLIED = set()


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

    safe = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype,
            np.core.multiarray.scalar, np.core.multiarray._reconstruct]
    # numpy >= 1.25 pickles dtypes through their concrete classes (np.dtypes.Float64DType...).
    safe += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    torch.serialization.add_safe_globals(safe)

    def getstate_without_functions(self):
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)
        return state

    HistoryBuffer.__getstate__ = getstate_without_functions


def _atomic_write(path, data: bytes):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@_once
def atomic_local_writes():
    """Make mmengine's local file backend (checkpoints, ``last_checkpoint``) write atomically."""
    from mmengine.fileio.backends.local_backend import LocalBackend

    def put(self, obj, filepath):
        _atomic_write(str(filepath), obj)

    def put_text(self, obj, filepath, encoding='utf-8'):
        _atomic_write(str(filepath), obj.encode(encoding))

    LocalBackend.put = put
    LocalBackend.put_text = put_text


@_once
def cpu_distributed_launch():
    """Let mmengine's ``init_dist('pytorch')`` run on machines without CUDA (gloo)."""
    import torch
    import torch.distributed as dist
    from mmengine.dist import utils as dist_utils

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
    import torch
    from mmengine.registry import MODELS
    import mmdet3d.models.layers.spconv  # noqa: F401  (registers spconv first; we override)

    def current_stream():
        return torch.cuda.current_stream().cuda_stream if torch.cuda.is_available() else 0

    ops.get_current_stream = current_stream
    cppcore.get_current_stream = current_stream

    def cpu_safe(cls):
        class CpuSafe(cls):
            __doc__ = f'{cls.__name__} that runs ``ConvAlgo.Native`` on CPU tensors.'

            def __init__(self, *args, **kwargs):
                if kwargs.get('algo') is None and not torch.cuda.is_available():
                    kwargs['algo'] = spconv.ConvAlgo.Native
                super().__init__(*args, **kwargs)

            def forward(self, input, *args, **kwargs):
                if not input.features.is_cuda:
                    self.algo = spconv.ConvAlgo.Native
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


def apply_runtime_fixes():
    """Apply every fix above (safe to call many times)."""
    quiet_known_warnings()
    allow_mmengine_checkpoint_globals()
    atomic_local_writes()
    cpu_distributed_launch()
    spconv_native_on_cpu()
