"""nuScenes release -> mmdet3d v2 info files (``<prefix>_infos_{train,val}.pkl``).

Uses only the official devkit (``nuscenes.NuScenes``) and the official table
layout, so it runs unchanged on real v1.0-mini / v1.0-trainval / v1.0-test and on
the synthetic worlds of :mod:`holodrive.datasets.synthetic`.

The records follow exactly what mmdet3d 1.4.0's ``NuScenesDataset`` reads
(see ``docs/data_pipeline.md`` for the full field list). Conventions:

- ``bbox_3d = [x, y, z, l, w, h, yaw]`` in the LiDAR frame, ``(x, y, z)`` the
  gravity centre (mmdet3d's ``NuScenesDataset`` converts with ``origin=(0.5, 0.5, 0.5)``),
  ``l, w, h`` = nuScenes ``wlh[1], wlh[0], wlh[2]``, ``yaw`` = the box quaternion's yaw in
  the LiDAR frame; ``velocity = [vx, vy]`` in m/s in the LiDAR frame (NaN where the devkit
  cannot estimate it). This is the inverse of ``NuScenesMetric``'s
  ``output_to_nusc_box`` + ``lidar_nusc_box_to_global``.
- Every 4x4 matrix maps coordinates of the frame left of the ``2`` into the frame right
  of it (``lidar2cam @ p_lidar = p_cam``), float64 nested lists.
- Timestamps are seconds (mmdet3d v2 convention: devkit microseconds / 1e6).

HoloDrive additions (ignored by mmdet3d): per-instance ``instance_token``,
``instance_id`` (row of the instance in ``instance.json``: stable per track),
``ann_token``, ``category_name``, ``visibility``; per-frame ``scene_token``,
``scene_name``, ``scene_description``, ``location``, ``prev``/``next`` sample tokens
(``''`` at the scene ends), ``frame_idx``, ``num_frames``, ``ego_velocity``,
``ego_yaw_rate``, ``ego_{fut,past}_traj`` / ``_valid`` and ``ego_fut_yaw`` (ego trajectory
in the current ego frame), ``cam_sweeps`` (``max_cam_sweeps``) and ``lidar2img`` per camera.
"""
import json
import multiprocessing
import os
import os.path as osp
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from holodrive.utils.io import atomic_open
from .constants import DETECTION_CLASSES
from .errors import NuScenesTableError
from .info_writer import InfoPickleWriter, dumps_record
from .nuscenes_records import NUS_ATTRIBUTES, SceneRecordBuilder  # noqa: F401 (re-export)
from .streaming import InfoStreamWriter, build_lock, default_stream_path, source_signature

#: The 13 tables ``NuScenes`` loads and the fields the devkit and this converter read.
REQUIRED_FIELDS = {
    'category': ('token', 'name'),
    'attribute': ('token', 'name'),
    'visibility': ('token', 'level'),
    'instance': ('token', 'category_token'),
    'sensor': ('token', 'channel', 'modality'),
    'calibrated_sensor': ('token', 'sensor_token', 'translation', 'rotation',
                          'camera_intrinsic'),
    'ego_pose': ('token', 'translation', 'rotation', 'timestamp'),
    'log': ('token', 'location'),
    'scene': ('token', 'name', 'log_token', 'nbr_samples',
              'first_sample_token', 'last_sample_token'),
    'sample': ('token', 'timestamp', 'scene_token', 'prev', 'next'),
    'sample_data': ('token', 'sample_token', 'ego_pose_token',
                    'calibrated_sensor_token', 'filename', 'fileformat', 'width',
                    'height', 'timestamp', 'is_key_frame', 'prev', 'next'),
    'sample_annotation': ('token', 'sample_token', 'instance_token',
                          'attribute_tokens', 'visibility_token', 'translation',
                          'size', 'rotation', 'num_lidar_pts', 'num_radar_pts',
                          'prev', 'next'),
    'map': ('token', 'log_tokens', 'category', 'filename'),
}

#: version -> {output split name: devkit split name}
SPLITS_BY_VERSION = {
    'v1.0-mini': {'train': 'mini_train', 'val': 'mini_val'},
    'v1.0-trainval': {'train': 'train', 'val': 'val'},
    'v1.0-test': {'test': 'test'},
}

_OFFICIAL_DOWNLOAD = 'https://www.nuscenes.org/download'


# --------------------------------------------------------------------------- loading
def _table_problem(table_root: str, name: str) -> Optional[NuScenesTableError]:
    """Check one table file; return the error to raise, or None if it is fine."""
    path = osp.join(table_root, f'{name}.json')
    fix = (f're-extract {name}.json from the nuScenes archive ({_OFFICIAL_DOWNLOAD}) '
           'or regenerate the synthetic world')
    if not osp.isfile(path):
        return NuScenesTableError(f'missing nuScenes table {name!r}', path, fix)
    try:
        with open(path) as f:
            table = json.load(f)
    except json.JSONDecodeError as e:
        return NuScenesTableError(
            f'malformed JSON in table {name!r} (line {e.lineno}, column {e.colno}: '
            f'{e.msg})', path, fix)
    except (OSError, UnicodeDecodeError) as e:
        return NuScenesTableError(f'unreadable table {name!r} ({e})', path, fix)
    if not isinstance(table, list):
        return NuScenesTableError(
            f'table {name!r} must be a JSON list of records, got '
            f'{type(table).__name__}', path, fix)
    return _records_problem(table, name, path, fix)


def _records_problem(table: list, name: str, path: str,
                     fix: str) -> Optional[NuScenesTableError]:
    required = set(REQUIRED_FIELDS[name])
    for i, rec in enumerate(table):
        if not isinstance(rec, dict):
            return NuScenesTableError(
                f'record {i} of table {name!r} is a {type(rec).__name__}, not an object',
                path, fix)
        if not required <= rec.keys():
            missing = sorted(required - rec.keys())
            return NuScenesTableError(
                f'record {i} (token {rec.get("token", "?")!r}) of table {name!r} lacks '
                f'field(s) {missing}', path, fix)
    return None


#: (table, field) -> referenced table; the links the devkit follows while indexing.
FOREIGN_KEYS = {
    ('instance', 'category_token'): 'category',
    ('calibrated_sensor', 'sensor_token'): 'sensor',
    ('scene', 'log_token'): 'log',
    ('scene', 'first_sample_token'): 'sample',
    ('scene', 'last_sample_token'): 'sample',
    ('sample', 'scene_token'): 'scene',
    ('sample_data', 'sample_token'): 'sample',
    ('sample_data', 'ego_pose_token'): 'ego_pose',
    ('sample_data', 'calibrated_sensor_token'): 'calibrated_sensor',
    ('sample_annotation', 'sample_token'): 'sample',
    ('sample_annotation', 'instance_token'): 'instance',
    ('sample_annotation', 'visibility_token'): 'visibility',
    ('sample_annotation', 'attribute_tokens'): 'attribute',
}


def _reference_problem(table_root: str) -> Optional[NuScenesTableError]:
    """First record whose token field points nowhere (only called after a failure)."""
    tables = {}
    for name in REQUIRED_FIELDS:
        with open(osp.join(table_root, f'{name}.json')) as f:
            tables[name] = json.load(f)
    tokens = {name: {r['token'] for r in recs} for name, recs in tables.items()}
    fix = ('repair the reference or re-extract the tables from the nuScenes archive / '
           'regenerate the synthetic world')
    for (name, field), target in FOREIGN_KEYS.items():
        for i, rec in enumerate(tables[name]):
            values = rec[field] if isinstance(rec[field], list) else [rec[field]]
            for value in values:
                if value not in tokens[target] and not (value == '' and field in (
                        'first_sample_token', 'last_sample_token')):
                    return NuScenesTableError(
                        f'record {i} (token {rec["token"]!r}) of table {name!r}: {field} '
                        f'{value!r} is not a token of table {target!r}',
                        osp.join(table_root, f'{name}.json'), fix)
    mapped = {t for rec in tables['map'] for t in rec['log_tokens']}
    for i, rec in enumerate(tables['log']):
        if rec['token'] not in mapped:
            return NuScenesTableError(
                f'log {i} (token {rec["token"]!r}, {rec["location"]}) is not listed in any '
                "map record's log_tokens", osp.join(table_root, 'map.json'), fix)
    return None


def load_nuscenes(dataroot, version: str = 'v1.0-mini', verbose: bool = False):
    """Load a nuScenes release with the devkit, turning any problem into one clear error.

    Args:
        dataroot: folder that holds ``<version>/`` (the tables), ``samples/``,
            ``sweeps/`` and ``maps/``.
        version: ``'v1.0-mini'``, ``'v1.0-trainval'`` or ``'v1.0-test'``.
        verbose: let the devkit print its loading statistics.

    Returns:
        nuscenes.NuScenes: the loaded database.

    Raises:
        NuScenesTableError: the folder or a table is missing, a table is not valid
            JSON, is not a list of records, or a record lacks a field the devkit
            reads. The message names the file and the fix.
    """
    from nuscenes.nuscenes import NuScenes

    dataroot = str(dataroot)
    table_root = osp.join(dataroot, version)
    if not osp.isdir(dataroot):
        raise NuScenesTableError(
            'nuScenes data root does not exist', dataroot,
            'pass the folder that contains the version folder (e.g. data/nuscenes)')
    if not osp.isdir(table_root):
        present = sorted(d for d in os.listdir(dataroot) if d.startswith('v1.0'))
        raise NuScenesTableError(
            f'nuScenes version folder {version!r} not found (present: {present})',
            table_root,
            f'pass version= one of {present}' if present else
            f'extract the {version} metadata archive into {dataroot}')
    for name in REQUIRED_FIELDS:          # cheap existence check first
        path = osp.join(table_root, f'{name}.json')
        if not osp.isfile(path):
            raise _table_problem(table_root, name)
    try:
        nusc = NuScenes(version=version, dataroot=dataroot, verbose=verbose)
    except Exception as err:  # diagnose: which file is at fault?
        for name in REQUIRED_FIELDS:
            problem = _table_problem(table_root, name)
            if problem is not None:
                raise problem from None
        problem = _reference_problem(table_root)
        if problem is not None:
            raise problem from None
        raise NuScenesTableError(
            f'the devkit failed to index the tables ({type(err).__name__}: {err}); '
            'a record probably references a token that does not exist', table_root,
            'check that every *_token field points to an existing record '
            '(and that every log is listed in map.json)') from err
    # The devkit loads lazily-dereferenced fields without checking them; check now
    # so a malformed record fails here instead of deep inside the converter.
    for name in REQUIRED_FIELDS:
        problem = _records_problem(
            getattr(nusc, name), name, osp.join(table_root, f'{name}.json'),
            f're-extract {name}.json from the nuScenes archive or regenerate the world')
        if problem is not None:
            raise problem
    return nusc


# --------------------------------------------------------------------------- records
def scene_infos(nusc, scene: dict, max_sweeps: int = 10, with_cam_instances: bool = True,
                **kwargs) -> List[dict]:
    """All keyframes of one scene in temporal order (see :class:`SceneRecordBuilder`)."""
    return SceneRecordBuilder(nusc, max_sweeps, with_cam_instances, **kwargs).scene(scene)


def split_scenes(nusc, version: str) -> Dict[str, List[dict]]:
    """{'train': [...], 'val': [...]} (or {'test': [...]}) scene records present."""
    from nuscenes.utils.splits import create_splits_scenes
    if version not in SPLITS_BY_VERSION:
        raise NuScenesTableError(
            f'unknown nuScenes version {version!r}', osp.join(nusc.dataroot, version),
            f'use one of {sorted(SPLITS_BY_VERSION)}')
    official = create_splits_scenes()
    by_name = {s['name']: s for s in nusc.scene}
    out, used = {}, set()
    for split, devkit_split in SPLITS_BY_VERSION[version].items():
        out[split] = [by_name[n] for n in official[devkit_split] if n in by_name]
        used.update(s['name'] for s in out[split])
    unused = sorted(set(by_name) - used)
    if unused:
        warnings.warn(f'{len(unused)} scene(s) of {version} belong to no official '
                      f'split and are skipped: {unused[:5]}')
    return out


def _metainfo(nusc, version: str, fut_steps: int, past_steps: int) -> dict:
    """Written before the records (streamed): every category of the release that is
    not a detection class is listed with -1."""
    from nuscenes.eval.detection.utils import category_to_detection_name

    categories = {name: i for i, name in enumerate(DETECTION_CLASSES)}
    for cat in nusc.category:
        if category_to_detection_name(cat['name']) not in DETECTION_CLASSES:
            categories.setdefault(cat['name'], -1)
    return dict(dataset='nuscenes', version=version, info_version='1.1',
                info_producer='holodrive.datasets.nuscenes_converter',
                categories=categories, ego_fut_steps=fut_steps, ego_past_steps=past_steps)


_WORKER = {}   # the forked workers' builder (inherited, never pickled)


def _convert_scene(job) -> List[tuple]:
    """(record pickle, token, prev, next, labels) per keyframe of one scene."""
    scene, first_idx = job
    builder = _WORKER['builder']
    infos = builder.scene(scene)
    if len(infos) != scene['nbr_samples']:
        raise NuScenesTableError(
            f'scene {scene["name"]!r} has nbr_samples={scene["nbr_samples"]} but its '
            f'sample chain has {len(infos)} keyframes',
            osp.join(builder.nusc.table_root, 'scene.json'),
            'fix nbr_samples or the prev/next links of its samples')
    out = []
    for i, info in enumerate(infos):
        info['sample_idx'] = first_idx + i
        out.append((dumps_record(info), info['token'], info['prev'], info['next'],
                    [inst['bbox_label_3d'] for inst in info['instances']]))
    return out


def _scene_results(jobs, workers: int):
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_convert_scene, jobs)
        return
    ctx = multiprocessing.get_context('fork')   # workers share the loaded tables
    with ctx.Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_convert_scene, jobs, chunksize=1)


def create_nuscenes_infos(root_path, version: str = 'v1.0-trainval', out_dir=None,
                          info_prefix: str = 'nuscenes', max_sweeps: int = 10,
                          progress: bool = True, with_cam_instances: bool = True,
                          nusc=None, workers: int = 1, max_cam_sweeps: int = 0,
                          fut_steps: int = 6, past_steps: int = 4) -> Dict[str, Path]:
    """Write mmdet3d v2 info pickles (and their ``.stream`` caches) for every split.

    Records are streamed: each scene's records go straight to the ``.pkl`` (one valid
    pickle, :class:`~holodrive.datasets.info_writer.InfoPickleWriter`) and to the
    ``.stream`` cache the dataset reads, so neither the converter nor the first
    dataset construction holds a whole split in RAM.

    Args:
        root_path: nuScenes data root (holds ``<version>/``, ``samples/`` ...).
        version: ``'v1.0-mini'`` (splits mini_train/mini_val -> train/val),
            ``'v1.0-trainval'`` (train/val) or ``'v1.0-test'`` (test).
        out_dir: where to write; defaults to ``root_path``.
        info_prefix: file name prefix, ``<prefix>_infos_<split>.pkl``.
        max_sweeps: previous LiDAR sweeps recorded per keyframe.
        progress: show a progress bar.
        with_cam_instances: also write per-camera 2D/mono-3D boxes
            (``cam_instances``, used by FCOS3D-style detectors).
        nusc: an already loaded ``NuScenes`` (skips loading).
        workers: scenes converted in parallel (forked) processes; the output is
            byte-identical to ``workers=1``.
        max_cam_sweeps: previous non-keyframe images per camera (``cam_sweeps``).
        fut_steps / past_steps: ego trajectory horizons in keyframes (0.5 s each).

    Returns:
        dict split -> Path of the written ``.pkl``.
    """
    from tqdm import tqdm

    root_path = Path(root_path)
    out_dir = Path(out_dir) if out_dir is not None else root_path
    out_dir.mkdir(parents=True, exist_ok=True)
    if nusc is None:
        nusc = load_nuscenes(root_path, version)
    splits = split_scenes(nusc, version)
    total = sum(s['nbr_samples'] for scenes in splits.values() for s in scenes)
    metainfo = _metainfo(nusc, version, fut_steps, past_steps)
    _WORKER['builder'] = SceneRecordBuilder(
        nusc, max_sweeps, with_cam_instances, max_cam_sweeps=max_cam_sweeps,
        fut_steps=fut_steps, past_steps=past_steps)
    written = {}
    try:
        with tqdm(total=total, disable=not progress, unit='sample',
                  desc=f'nuScenes {version} -> infos') as bar:
            for split, scenes in splits.items():
                path = out_dir / f'{info_prefix}_infos_{split}.pkl'
                firsts = np.cumsum([0] + [s['nbr_samples'] for s in scenes])[:-1]
                jobs = list(zip(scenes, (int(i) for i in firsts)))
                stream_path = default_stream_path(path)
                with build_lock(stream_path), InfoStreamWriter(stream_path) as stream:
                    with atomic_open(str(path), 'wb') as f:
                        pkl = InfoPickleWriter(f, metainfo)
                        for results in _scene_results(jobs, workers):
                            for blob, token, prev, nxt, labels in results:
                                pkl.add(blob)
                                stream.add(blob, token, prev, nxt, labels)
                            bar.update(len(results))
                        pkl.close()
                    stream.finish(metainfo, source_signature(path))
                written[split] = path
    finally:
        _WORKER.clear()
    return written
