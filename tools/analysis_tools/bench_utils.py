"""Helpers shared by the benchmarks in ``tools/analysis_tools/`` (train / test through the
tools in a subprocess, parse their output, count backbone MACs, time callables interleaved,
build a detector from a config, mirror a world with some sensor folders replaced, measure
the peak resident memory of a block)."""
import contextlib
import io
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:          # the tools import the project from the checkout
    sys.path.insert(0, ROOT)
_T0 = time.perf_counter()
_NAME = ['benchmark']


def set_log_name(name):
    """Prefix of :func:`log` lines (the benchmark's name)."""
    _NAME[0] = name


def elapsed_s():
    """Seconds since the benchmark started (this module's import)."""
    return time.perf_counter() - _T0


def log(msg):
    """One progress line ``[NAME  T s] msg`` (seconds since the import)."""
    print(f'[{_NAME[0]} {time.perf_counter() - _T0:7.1f} s] {msg}', flush=True)


def run_tool(name, argv, log_path, in_process=False):
    """Run ``tools/NAME.py argv``; its output goes to ``log_path``, training progress to the
    screen every 10 %; returns the output text. ``in_process`` calls its ``main(argv)``."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    progress = re.compile(r'Iter\(train\) \[\s*(\d+)/(\d+)\].*?loss: ([\d.]+)')
    epochs = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\].*?loss: ([\d.]+)')

    def echo(line):
        name = osp.basename(osp.dirname(log_path))
        m = progress.search(line)
        if m and int(m.group(1)) % max(1, int(m.group(2)) // 10) == 0:
            log(f'  {name}: iter {m.group(1)}/{m.group(2)} loss {m.group(3)}')
        m = epochs.search(line)
        if m and m.group(2) == m.group(3):                       # the epoch's last log line
            log(f'  {name}: epoch {m.group(1)} done, loss {m.group(4)}')
    if in_process:
        import importlib.util
        spec = importlib.util.spec_from_file_location(f'_bench_{name}',
                                                      osp.join(ROOT, 'tools', f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            module.main(argv)
        text = buf.getvalue()
        for line in text.splitlines():
            echo(line)
    else:
        cmd = [sys.executable, osp.join(ROOT, 'tools', f'{name}.py')] + argv
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            echo(line)
        text = ''.join(lines)
    with open(log_path, 'w') as f:
        f.write(text)
    if not in_process and proc.wait():
        raise RuntimeError(f'tools/{name}.py failed (exit {proc.returncode}); see {log_path}:\n'
                           + ''.join(lines[-15:]))
    return text


def run_test_logged(argv, log_path, tag, reuse=False):
    """``tools/test.py argv`` in process, its output kept in ``log_path``; with ``reuse`` an
    earlier run's ``log_path`` is read back instead (and said so). Returns the output text."""
    if reuse and osp.isfile(log_path):
        with open(log_path) as f:
            text = f.read()
        log(f'{tag}: reusing {log_path}')
        return text
    return run_tool('test', argv, log_path, in_process=True)


def parse_test_output(text):
    """The metrics of a ``tools/test.py`` output: the ``metrics.json`` named on its
    ``all N metrics: PATH`` line, else the numbers of its ``result:`` line."""
    m = re.search(r'^all \d+ metrics: (.+)$', text, re.M)
    if m and osp.isfile(m.group(1).strip()):
        with open(m.group(1).strip()) as f:
            return json.load(f)
    m = re.search(r'^result: (.+)$', text, re.M)
    if not m:
        raise ValueError('tools/test.py output has neither a metrics.json path nor a result line')
    pairs = re.findall(r'(\S+) (-?[\d.]+(?:e-?\d+)?)', m.group(1))
    return {f'coco/{k}': float(v) for k, v in pairs}


def class_ap(metrics, name='car'):
    """Mean AP of class ``name`` over the devkit's distance thresholds (None if absent)."""
    vals = [v for k, v in metrics.items() if k.rsplit('/', 1)[-1].startswith(f'{name}_AP_dist_')]
    return sum(vals) / len(vals) if vals else None


def backbone_macs(backbone_cfg, shape=None):
    """``dict(side, paper, as_built[, as_built_at_shape])``: MACs of a backbone dict on the meta
    device, paper convention and as built at batch 1, square top resolution ``side``; as built
    also at ``shape`` ``(B, 3, H, W)`` when given."""
    import piip_det.models  # noqa: F401
    import piip_det.models.vit_baseline  # noqa: F401  (registers ViTBaseline)
    from piip_det.flops import build_backbone, count_backbone, top_resolution
    cfg = backbone_cfg.to_dict() if hasattr(backbone_cfg, 'to_dict') else dict(backbone_cfg)
    side = top_resolution(cfg)
    report = count_backbone(build_backbone(cfg), (side, side))
    out = dict(side=side, paper=report.paper_total, as_built=report.as_built)
    if shape is not None:
        out['as_built_at_shape'] = count_backbone(build_backbone(cfg), shape).as_built
    return out


def _seconds(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def interleaved_seconds(fns, warmup=3, repeats=10):
    """``{name: median seconds}`` of each callable, rounds alternating between them."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(_seconds(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def build_detector(config, root, ckpt=None):
    """``(model, cfg)``: the config's detector on CPU (eval), the checkpoint loaded."""
    from mmengine.registry import MODELS as REGISTRY, DefaultScope
    from mmengine.runner import load_checkpoint

    from holodrive.engine.cli import import_project, prepare_config
    import mmdet.utils
    import_project()
    mmdet.utils.register_all_modules(init_default_scope=False)
    cfg = prepare_config(config, cfg_options={'data_root': f'{root}/'}, check_paths=False)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = REGISTRY.build(cfg.model)
    if ckpt:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            load_checkpoint(model, ckpt, map_location='cpu')
    return model.eval(), cfg


def mirror_world(src, dst, own=()):
    """``dst``: symlinks to everything of the world ``src`` except ``samples/NAME`` for the
    names in ``own`` (e.g. ``LIDAR_TOP``, ``CAM_FRONT``), which are made empty directories for
    the caller to fill with generated files of the same names. Returns ``dst``."""
    os.makedirs(osp.join(dst, 'samples'), exist_ok=True)
    for name in os.listdir(src):
        if name != 'samples' and not osp.lexists(osp.join(dst, name)):
            os.symlink(osp.abspath(osp.join(src, name)), osp.join(dst, name))
    for name in os.listdir(osp.join(src, 'samples')):
        target = osp.join(dst, 'samples', name)
        if name in own:
            if osp.islink(target):
                os.unlink(target)
            os.makedirs(target, exist_ok=True)
        elif not osp.lexists(target):
            os.symlink(osp.abspath(osp.join(src, 'samples', name)), target)
    return dst


class PeakRSS:
    """Largest growth of this process's resident set while the block runs (bytes).

    glibc's mmap threshold is fixed at 128 KiB first (``mallopt``), so large tensors are
    mapped and unmapped on free instead of being recycled inside the heap, where the resident
    set would not show them."""

    def __enter__(self):
        try:
            import ctypes
            ctypes.CDLL('libc.so.6').mallopt(-3, 128 * 1024)   # M_MMAP_THRESHOLD
        except (OSError, AttributeError):
            pass
        self.page = os.sysconf('SC_PAGE_SIZE')
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _rss(self):
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * self.page

    def _poll(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.growth = self.peak - self.start
