"""Write an info ``.pkl`` record by record, never holding a split in RAM.

:class:`InfoPickleWriter` emits a valid pickle of ``{'metainfo': ..., 'data_list': [...]}``
from hand-written opcodes around the records' own opcode streams::

    PROTO 2, EMPTY_DICT, MARK,
      'metainfo', <metainfo>, 'data_list', EMPTY_LIST,
        (MARK, <record>, <record>, ..., APPENDS) per batch,
    SETITEMS, STOP

Every object is pickled with protocol 2 and memoization off (``Pickler.fast``), so no
record refers to memo entries of another and the concatenation is one valid pickle
(``pickle.load``, ``mmengine.load`` and mmdet3d's ``NuScenesDataset`` read it). The same
per-record bytes (a standalone pickle each) go into the ``.stream`` cache.

:func:`replicate_info_file` builds large info files from a small one (benchmarks, tests).
"""
import gc
import io
import pickle
from typing import List, Optional

from holodrive.utils.io import atomic_open

PROTOCOL = 2
_HEADER = pickle.PROTO + bytes([PROTOCOL])


def dumps_record(obj) -> bytes:
    """Standalone protocol-2 pickle of ``obj`` without memo (``PROTO ... STOP``)."""
    buf = io.BytesIO()
    p = pickle.Pickler(buf, PROTOCOL)
    p.fast = True
    p.dump(obj)
    return buf.getvalue()


def _body(blob: bytes) -> bytes:
    """The opcodes of a :func:`dumps_record` pickle without its PROTO and STOP."""
    assert blob[:2] == _HEADER and blob[-1:] == pickle.STOP
    return blob[2:-1]


class InfoPickleWriter:
    """Append records to an open binary file as one ``{'metainfo', 'data_list'}`` pickle.

    ``add`` takes a record dict or the bytes of :func:`dumps_record`; records are
    flushed in batches of ``batch`` (pickle's APPENDS). ``close`` writes the tail.
    """

    def __init__(self, f, metainfo: dict, batch: int = 256):
        self.f, self.batch, self.count = f, batch, 0
        self._pending: List[bytes] = []
        f.write(_HEADER + pickle.EMPTY_DICT + pickle.MARK)
        f.write(_body(dumps_record('metainfo')) + _body(dumps_record(metainfo)))
        f.write(_body(dumps_record('data_list')) + pickle.EMPTY_LIST)

    def add(self, record) -> bytes:
        blob = record if isinstance(record, bytes) else dumps_record(record)
        self._pending.append(_body(blob))
        self.count += 1
        if len(self._pending) >= self.batch:
            self._flush()
        return blob

    def _flush(self):
        if self._pending:
            self.f.write(pickle.MARK + b''.join(self._pending) + pickle.APPENDS)
            self._pending = []

    def close(self):
        self._flush()
        self.f.write(pickle.SETITEMS + pickle.STOP)


def replicate_info_file(src_pkl, dst_pkl, num_records: int, samples_per_scene: int = 40,
                        trim: bool = False, keep_records: bool = False) -> Optional[list]:
    """Write ``num_records`` clones of ``src_pkl``'s records under fresh tokens.

    Record ``i`` is a copy of source record ``i % len(source)`` with ``token='tok<i>'``,
    ``sample_idx=i`` and scenes of ``samples_per_scene`` frames (``scene_token``,
    ``frame_idx``, ``prev``/``next`` linking ``tok<i-1>``/``tok<i+1>``, ``''`` at the
    scene ends and at the last record). ``trim``: drop ``cam_instances`` and keep 4
    boxes and 1 sweep per record (~8 KB records instead of ~80 KB).

    Returns the records when ``keep_records`` (else None: streamed to the file).
    """
    with open(src_pkl, 'rb') as f:
        data = pickle.load(f)  # an info file written by the converter
    for rec in data['data_list'] if trim else ():
        rec.pop('cam_instances', None)
        rec['instances'] = rec['instances'][:4]
        rec['lidar_sweeps'] = rec.get('lidar_sweeps', [])[:1]
    blobs = [pickle.dumps(r) for r in data['data_list']]
    kept = [] if keep_records else None
    gc_was_enabled = gc.isenabled()
    gc.disable()   # (speed only: many small containers)
    try:
        with atomic_open(str(dst_pkl), 'wb') as f:
            writer = InfoPickleWriter(f, data['metainfo'])
            for i in range(num_records):
                rec = pickle.loads(blobs[i % len(blobs)])
                frame = i % samples_per_scene
                last = frame == samples_per_scene - 1 or i == num_records - 1
                rec.update(token=f'tok{i}', sample_idx=i, frame_idx=frame,
                           scene_token=f'scene{i // samples_per_scene}',
                           prev=f'tok{i - 1}' if frame else '',
                           next='' if last else f'tok{i + 1}')
                writer.add(rec)
                if kept is not None:
                    kept.append(rec)
            writer.close()
    finally:
        if gc_was_enabled:
            gc.enable()
    return kept
