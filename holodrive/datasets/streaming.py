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

from .errors import InfoFileError

MAGIC = b'HDSTREAM'
FORMAT_VERSION = 1
HEADER_BYTES = 4096
_ALIGN = 64


def _source_signature(pkl_path: str) -> dict:
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


def _neighbour_rows(data_list: list):
    """prev/next row per record from the ``prev``/``next`` sample tokens."""
    n = len(data_list)
    prev_index = np.full(n, -1, dtype=np.int64)
    next_index = np.full(n, -1, dtype=np.int64)
    row_of = {rec.get('token'): i for i, rec in enumerate(data_list) if 'token' in rec}
    for i, rec in enumerate(data_list):
        prev_index[i] = row_of.get(rec.get('prev') or None, -1)
        next_index[i] = row_of.get(rec.get('next') or None, -1)
    return prev_index, next_index


def _pad(f, align=_ALIGN):
    pos = f.tell()
    if pos % align:
        f.write(b'\0' * (align - pos % align))
    return f.tell()


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
    signature = _source_signature(pkl_path)
    data = load_info_file(pkl_path)
    data_list = data['data_list']
    prev_index, next_index = _neighbour_rows(data_list)
    label_counts = Counter(
        inst.get('bbox_label_3d', -1) for rec in data_list
        for inst in rec.get('instances', ()))
    label_counts.pop(-1, None)

    stream_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stream_path.with_name(f'{stream_path.name}.tmp{os.getpid()}')
    offsets = np.zeros(len(data_list) + 1, dtype=np.int64)
    with open(tmp, 'wb') as f:
        f.write(b'\0' * HEADER_BYTES)
        data_offset = f.tell()
        for i, rec in enumerate(data_list):
            f.write(pickle.dumps(rec, protocol=4))
            offsets[i + 1] = f.tell() - data_offset
        sections = {}
        for name, arr in (('offsets', offsets), ('prev_index', prev_index),
                          ('next_index', next_index)):
            sections[name] = _pad(f)
            f.write(arr.tobytes())
        meta = pickle.dumps(dict(metainfo=data['metainfo'],
                                 label_counts=dict(label_counts)), protocol=4)
        sections['meta'] = _pad(f)
        f.write(meta)
        header = json.dumps(dict(
            format=FORMAT_VERSION, source=signature, num_records=len(data_list),
            data_offset=data_offset, meta_nbytes=len(meta), **sections)).encode()
        if len(header) + 12 > HEADER_BYTES:
            raise InfoFileError('stream header too large', stream_path)
        f.seek(0)
        f.write(MAGIC + struct.pack('<I', len(header)) + header)
    os.replace(tmp, stream_path)
    return stream_path


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


def open_info_stream(pkl_path, cache_dir=None, rebuild: bool = False) -> InfoStream:
    """Open (building or refreshing if needed) the ``.stream`` cache of an info pkl.

    Args:
        pkl_path: the mmdet3d v2 info ``.pkl``; the source of truth.
        cache_dir: folder for the cache; default: next to the ``.pkl``, falling back
            to ``$HOLODRIVE_STREAM_CACHE`` when that folder is not writable.
        rebuild: force a rebuild.
    """
    pkl_path = str(pkl_path)
    if not osp.isfile(pkl_path):
        raise InfoFileError('info file not found', pkl_path,
                            'create it with holodrive.datasets.create_nuscenes_infos')
    candidates = [default_stream_path(pkl_path, cache_dir)]
    if cache_dir is None:
        candidates.append(default_stream_path(pkl_path, _fallback_cache_dir()))
    signature = _source_signature(pkl_path)
    if not rebuild:
        for path in candidates:
            header = _read_header(path)
            if header is not None and header.get('format') == FORMAT_VERSION and \
                    header.get('source') == signature:
                return InfoStream(path)
    last_error = None
    for path in candidates:
        try:
            return InfoStream(build_info_stream(pkl_path, path))
        except OSError as e:  # read-only dataset folder: try the next place
            last_error = e
    raise InfoFileError(f'cannot write the info stream cache ({last_error})',
                        candidates[-1], 'set HOLODRIVE_STREAM_CACHE to a writable folder')
