"""Memory-mapped info records: RSS does not grow with the number of scenes.

mmengine's ``BaseDataset`` unpickles the whole info list into Python objects and
then re-serialises it into one in-memory byte array. :class:`InfoStream` instead
keeps the serialised records in a file on disk and maps it with ``np.memmap``:
only the pages of the records actually read are paged in (and shared between
DataLoader workers through the page cache).

The cache file is built once next to the info ``.pkl`` (``nuscenes_infos_train.pkl``
-> ``nuscenes_infos_train.stream``) and rebuilt when the ``.pkl``'s size or
modification time changes. If that folder is read-only it goes to
``$HOLODRIVE_STREAM_CACHE`` (default ``~/.cache/holodrive/streams``).

File layout (all integers little-endian)::

    [0, 4096)            magic b'HDSTREAM' + uint32 header length + JSON header
    [data_offset, ...)   record 0 pickle, record 1 pickle, ...
    offsets              int64[n + 1]   record i = data[offsets[i]:offsets[i+1]]
    prev_index           int64[n]       row of the previous keyframe of the scene, -1
    next_index           int64[n]       row of the next keyframe of the scene, -1
    meta                 pickle of {'metainfo': ..., 'label_counts': {label: n}}
"""
import contextlib
import fcntl
import gc
import hashlib
import json
import os
import os.path as osp
import pickle
import struct
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np

from holodrive.utils.io import atomic_open
from .errors import InfoFileError

MAGIC = b'HDSTREAM'
FORMAT_VERSION = 1
HEADER_BYTES = 4096
_ALIGN = 64


def source_signature(pkl_path: str) -> dict:
    st = os.stat(pkl_path)
    return dict(size=st.st_size, mtime_ns=st.st_mtime_ns)


def default_stream_path(pkl_path, cache_dir=None) -> Path:
    """Where the ``.stream`` cache of ``pkl_path`` lives (see module docstring)."""
    pkl_path = Path(pkl_path)
    if cache_dir is None:
        return pkl_path.with_suffix('.stream')
    digest = hashlib.sha1(str(pkl_path.resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / f'{pkl_path.stem}-{digest}.stream'


def _fallback_cache_dir() -> Path:
    return Path(os.environ.get('HOLODRIVE_STREAM_CACHE',
                               Path.home() / '.cache' / 'holodrive' / 'streams'))


def load_info_file(pkl_path) -> dict:
    """Load an mmdet3d v2 info ``.pkl`` with one clear error for every problem."""
    pkl_path = str(pkl_path)
    fix = ('regenerate it with holodrive.datasets.create_nuscenes_infos '
           '(tools/create_data) from the nuScenes release')
    if not osp.isfile(pkl_path):
        raise InfoFileError('info file not found', pkl_path, fix)
    try:
        with open(pkl_path, 'rb') as f:
            data = pickle.load(f)
    except Exception as e:  # truncated, not a pickle, unknown class, ...
        raise InfoFileError(f'info file is not a readable pickle '
                            f'({type(e).__name__}: {e})', pkl_path, fix) from None
    if not isinstance(data, dict) or 'data_list' not in data or 'metainfo' not in data:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InfoFileError(
            f"info file is not in mmdet3d v2 format (a dict with 'metainfo' and "
            f"'data_list'; got {got})", pkl_path,
            fix + '; v1 infos can be updated with mmdet3d\'s update_infos_to_v2')
    if not isinstance(data['data_list'], list) or not all(
            isinstance(r, dict) for r in data['data_list']):
        raise InfoFileError("info file 'data_list' must be a list of dicts",
                            pkl_path, fix)
    return data


def _pad(f, align=_ALIGN):
    pos = f.tell()
    if pos % align:
        f.write(b'\0' * (align - pos % align))
    return f.tell()


class InfoStreamWriter:
    """Write a ``.stream`` file record by record (atomically, see :func:`atomic_open`).

    ``with InfoStreamWriter(path) as w: w.add(blob, token, prev, next, labels) ...;
    w.finish(metainfo, source_signature)``. ``blob`` is any standalone pickle of the
    record; ``labels`` its instances' ``bbox_label_3d``. Without ``finish`` (an
    exception) nothing is written.
    """

    def __init__(self, stream_path):
        self.path = Path(stream_path)
        self._ctx = atomic_open(str(self.path), 'wb')
        self._offsets = [0]
        self._links = []                 # (token, prev, next) per record
        self._labels = Counter()
        self._finished = False

    def __enter__(self):
        self.f = self._ctx.__enter__()
        self.f.write(b'\0' * HEADER_BYTES)
        self._data_offset = self.f.tell()
        return self

    def add(self, blob: bytes, token=None, prev=None, next=None, labels=()) -> None:
        self.f.write(blob)
        self._offsets.append(self._offsets[-1] + len(blob))
        self._links.append((token, prev, next))
        self._labels.update(int(v) for v in labels if v != -1)

    def finish(self, metainfo: dict, source: dict) -> None:
        f = self.f
        row_of = {tok: i for i, (tok, _, _) in enumerate(self._links) if tok is not None}
        prev_index = np.array([row_of.get(p or None, -1) for _, p, _ in self._links],
                              np.int64).reshape(-1)
        next_index = np.array([row_of.get(n or None, -1) for _, _, n in self._links],
                              np.int64).reshape(-1)
        sections = {}
        for name, arr in (('offsets', np.asarray(self._offsets, np.int64)),
                          ('prev_index', prev_index), ('next_index', next_index)):
            sections[name] = _pad(f)
            f.write(arr.tobytes())
        meta = pickle.dumps(dict(metainfo=metainfo, label_counts=dict(self._labels)),
                            protocol=4)
        sections['meta'] = _pad(f)
        f.write(meta)
        header = json.dumps(dict(
            format=FORMAT_VERSION, source=source, num_records=len(self._links),
            data_offset=self._data_offset, meta_nbytes=len(meta), **sections)).encode()
        if len(header) + 12 > HEADER_BYTES:
            raise InfoFileError('stream header too large', self.path)
        f.seek(0)
        f.write(MAGIC + struct.pack('<I', len(header)) + header)
        f.seek(0, os.SEEK_END)
        self._finished = True

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and not self._finished:   # abort: remove the temp file
            err = InfoFileError('stream writer closed without finish()', self.path)
            self._ctx.__exit__(InfoFileError, err, None)
            raise err
        return self._ctx.__exit__(exc_type, exc, tb)


def build_info_stream(pkl_path, stream_path) -> Path:
    """Serialise the records of ``pkl_path`` into ``stream_path`` (atomic replace)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()   # millions of small containers: the cyclic GC would dominate
    try:
        return _build_info_stream(str(pkl_path), Path(stream_path))
    finally:
        if gc_was_enabled:
            gc.enable()


def _build_info_stream(pkl_path: str, stream_path: Path) -> Path:
    signature = source_signature(pkl_path)
    data = load_info_file(pkl_path)
    with InfoStreamWriter(stream_path) as writer:
        for rec in data['data_list']:
            writer.add(pickle.dumps(rec, protocol=4), rec.get('token'), rec.get('prev'),
                       rec.get('next'), [inst.get('bbox_label_3d', -1)
                                         for inst in rec.get('instances', ())])
        writer.finish(data['metainfo'], signature)
    return stream_path


@contextlib.contextmanager
def build_lock(stream_path):
    """Exclusive ``fcntl.flock`` on ``<stream>.lock``: one builder per cache file."""
    lock_path = str(stream_path) + '.lock'
    os.makedirs(osp.dirname(osp.abspath(lock_path)), exist_ok=True)
    with open(lock_path, 'a') as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_header(stream_path) -> Optional[dict]:
    try:
        with open(stream_path, 'rb') as f:
            head = f.read(HEADER_BYTES)
        if head[:8] != MAGIC:
            return None
        (length,) = struct.unpack('<I', head[8:12])
        return json.loads(head[12:12 + length])
    except (OSError, ValueError, struct.error):
        return None


class InfoStream:
    """Read-only sequence of info records backed by a memory-mapped ``.stream`` file.

    ``stream[i]`` unpickles record ``i`` (a fresh dict each time). ``prev_index`` /
    ``next_index`` give the rows of the neighbouring keyframes of the same scene
    (-1 at the scene ends) without unpickling anything. The object pickles as
    its path, so DataLoader workers reopen the map instead of copying it.
    """

    def __init__(self, stream_path):
        self.path = str(stream_path)
        self._open()

    def _open(self):
        header = _read_header(self.path)
        if header is None or header.get('format') != FORMAT_VERSION:
            raise InfoFileError('not a HoloDrive info stream (or an old format)',
                                self.path, 'delete it; it is rebuilt from the .pkl')
        self.header = header
        n = header['num_records']
        self._mm = np.memmap(self.path, dtype=np.uint8, mode='r')
        self.offsets = self._view(header['offsets'], n + 1)
        self.prev_index = self._view(header['prev_index'], n)
        self.next_index = self._view(header['next_index'], n)
        meta = pickle.loads(self._mm[header['meta']:header['meta'] + header['meta_nbytes']])
        self.metainfo = meta['metainfo']
        self.label_counts = meta['label_counts']
        self._data_offset = header['data_offset']

    def _view(self, start: int, count: int) -> np.ndarray:
        return self._mm[start:start + 8 * count].view(np.int64)

    def __len__(self) -> int:
        return self.header['num_records']

    def record_bytes(self, i: int) -> memoryview:
        start = self._data_offset + int(self.offsets[i])
        end = self._data_offset + int(self.offsets[i + 1])
        return memoryview(self._mm[start:end])

    def __getitem__(self, i: int) -> dict:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f'record {i} out of range for {n} records')
        return pickle.loads(self.record_bytes(i % n))

    def __getstate__(self):
        return {'path': self.path}

    def __setstate__(self, state):
        self.path = state['path']
        self._open()


def _is_fresh(path, signature) -> bool:
    header = _read_header(path)
    return header is not None and header.get('format') == FORMAT_VERSION and \
        header.get('source') == signature


def _open_or_build(pkl_path: str, candidates, rebuild: bool) -> InfoStream:
    signature = source_signature(pkl_path)
    if not rebuild:
        for path in candidates:
            if _is_fresh(path, signature):
                return InfoStream(path)
    last_error = None
    for path in candidates:
        try:
            with build_lock(path):
                # another process may have built it while this one waited
                if not rebuild and _is_fresh(path, signature):
                    return InfoStream(path)
                return InfoStream(build_info_stream(pkl_path, path))
        except OSError as e:  # read-only dataset folder: try the next place
            last_error = e
    raise InfoFileError(f'cannot write the info stream cache ({last_error})',
                        candidates[-1], 'set HOLODRIVE_STREAM_CACHE to a writable folder')


def _dist_local_rank() -> Optional[int]:
    """This process's rank on its machine under an initialised torch.distributed
    group of more than one process, else None."""
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return int(os.environ.get('LOCAL_RANK', dist.get_rank()))


def open_info_stream(pkl_path, cache_dir=None, rebuild: bool = False) -> InfoStream:
    """Open (building or refreshing if needed) the ``.stream`` cache of an info pkl.

    The cache is built once per machine: under torch.distributed the local rank 0
    builds while the other ranks wait at a barrier; unrelated processes serialise on
    an ``fcntl.flock`` of ``<stream>.lock`` and reuse what the first one built.

    Args:
        pkl_path: the mmdet3d v2 info ``.pkl``; the source of truth.
        cache_dir: folder for the cache; default: next to the ``.pkl``, falling back
            to ``$HOLODRIVE_STREAM_CACHE`` when that folder is not writable.
        rebuild: force a rebuild (by the building rank only).
    """
    pkl_path = str(pkl_path)
    if not osp.isfile(pkl_path):
        raise InfoFileError('info file not found', pkl_path,
                            'create it with holodrive.datasets.create_nuscenes_infos')
    candidates = [default_stream_path(pkl_path, cache_dir)]
    if cache_dir is None:
        candidates.append(default_stream_path(pkl_path, _fallback_cache_dir()))
    local_rank = _dist_local_rank()
    if local_rank is None:
        return _open_or_build(pkl_path, candidates, rebuild)
    import torch.distributed as dist
    stream = _open_or_build(pkl_path, candidates, rebuild) if local_rank == 0 else None
    dist.barrier()
    return stream if stream is not None else _open_or_build(pkl_path, candidates, False)
