"""Atomic file writes: a temporary file in the target folder, fsynced, renamed over the
target, then the folder fsynced, so a kill leaves either the old or the new file.

The file follows the process umask (like ``open(path, 'w')``), not ``mkstemp``'s 0600.
A stale ``.<name>.*.tmp`` left by a killed writer is removed by :func:`clean_stale_tmp`.
"""
import contextlib
import glob
import json
import os
import tempfile
from typing import Iterable

TMP_SUFFIX = '.tmp'


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb'):
    """``with atomic_open(path, 'w') as f: ...`` writes ``path`` atomically."""
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open supports modes "w" and "wb", got {mode!r}')
    path = os.path.abspath(str(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.',
                               suffix=TMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def write_json_lines(fh, records: Iterable, sep: str = '\n') -> int:
    """Write each record as one JSON document followed by ``sep``; returns the count."""
    n = 0
    for rec in records:
        fh.write(json.dumps(rec))
        fh.write(sep)
        n += 1
    return n


def clean_stale_tmp(folder: str, name: str = '*') -> list:
    """Remove temporary files ``.<name>.*.tmp`` left in ``folder`` by a killed writer."""
    removed = []
    for tmp in glob.glob(os.path.join(str(folder), '.' + name + '.*' + TMP_SUFFIX)):
        try:
            os.unlink(tmp)
            removed.append(tmp)
        except OSError:
            pass
    return removed


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
