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
``ego_yaw_rate`` and ``lidar2img`` per camera.
"""
import json
import os
import os.path as osp
import pickle
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from pyquaternion import Quaternion

from .constants import CAMERA_NAMES, DETECTION_CLASSES, LIDAR_NAME
from .errors import NuScenesTableError

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

#: mmdet3d's attribute order (``mmdet3d.datasets.convert_utils.nus_attributes``).
NUS_ATTRIBUTES = ('cycle.with_rider', 'cycle.without_rider',
                  'pedestrian.moving', 'pedestrian.standing',
                  'pedestrian.sitting_lying_down', 'vehicle.moving',
                  'vehicle.parked', 'vehicle.stopped', 'None')

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


# --------------------------------------------------------------------------- geometry
def pose_matrix(rotation, translation) -> np.ndarray:
    """4x4 float64 matrix from a nuScenes (w, x, y, z) quaternion and a translation."""
    mat = np.eye(4)
    mat[:3, :3] = Quaternion(rotation).rotation_matrix
    mat[:3, 3] = translation
    return mat


def _sensor_poses(nusc, sd_token: str):
    """(sample_data record, sensor2ego, ego2global) of one sample_data."""
    sd = nusc.get('sample_data', sd_token)
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    return sd, cs, pose_matrix(cs['rotation'], cs['translation']), \
        pose_matrix(pose['rotation'], pose['translation'])


def _tolist(mat: np.ndarray) -> list:
    return np.asarray(mat, dtype=np.float64).tolist()


# --------------------------------------------------------------------------- records
def _lidar_sweeps(nusc, lidar_sd: dict, global2lidar: np.ndarray,
                  max_sweeps: int) -> List[dict]:
    """Previous LiDAR sweeps, newest first, as mmdet3d's ``lidar_sweeps`` records.

    ``lidar2sensor`` is the inverse of the sweep->key-frame-LiDAR transform, as
    mmdet3d's ``update_infos_to_v2`` writes it; ``sensor2lidar`` holds the transform
    itself (what :class:`~holodrive.datasets.transforms.LoadSweepsChecked` applies).
    """
    sweeps = []
    token = lidar_sd['prev']
    while token and len(sweeps) < max_sweeps:
        sd, _, sweep2ego, ego2global = _sensor_poses(nusc, token)
        sensor2lidar = global2lidar @ ego2global @ sweep2ego
        sweeps.append(dict(
            lidar_points=dict(
                lidar_path=sd['filename'], num_pts_feats=5,
                lidar2ego=_tolist(sweep2ego),
                lidar2sensor=_tolist(np.linalg.inv(sensor2lidar))),
            sensor2lidar=_tolist(sensor2lidar),
            ego2global=_tolist(ego2global),
            timestamp=sd['timestamp'] / 1e6,
            sample_data_token=sd['token'],
            is_key_frame=bool(sd['is_key_frame'])))
        token = sd['prev']
    return sweeps


def _camera_infos(nusc, sample: dict, global2lidar: np.ndarray) -> Dict[str, dict]:
    images = {}
    for cam in CAMERA_NAMES:
        if cam not in sample['data']:
            continue
        sd, cs, cam2ego, ego2global = _sensor_poses(nusc, sample['data'][cam])
        cam2img = np.asarray(cs['camera_intrinsic'], dtype=np.float64)
        lidar2cam = np.linalg.inv(global2lidar @ ego2global @ cam2ego)
        viewpad = np.eye(4)
        viewpad[:3, :3] = cam2img
        images[cam] = dict(
            img_path=osp.basename(sd['filename']),
            height=int(sd['height']), width=int(sd['width']),
            cam2img=_tolist(cam2img), cam2ego=_tolist(cam2ego),
            lidar2cam=_tolist(lidar2cam), lidar2img=_tolist(viewpad @ lidar2cam),
            ego2global=_tolist(ego2global),
            sample_data_token=sd['token'], timestamp=sd['timestamp'] / 1e6)
    return images


def _instances(nusc, sample: dict, ego2global: np.ndarray,
               lidar2ego: np.ndarray) -> List[dict]:
    from nuscenes.eval.detection.utils import category_to_detection_name

    q_ego = Quaternion(matrix=ego2global[:3, :3])
    q_lidar = Quaternion(matrix=lidar2ego[:3, :3])
    global2lidar_rot = (ego2global[:3, :3] @ lidar2ego[:3, :3]).T
    instances = []
    for ann_token in sample['anns']:
        ann = nusc.get('sample_annotation', ann_token)
        box = nusc.get_box(ann_token)                   # global frame
        box.translate(-ego2global[:3, 3])
        box.rotate(q_ego.inverse)
        box.translate(-lidar2ego[:3, 3])
        box.rotate(q_lidar.inverse)                      # LiDAR frame
        velocity = global2lidar_rot @ nusc.box_velocity(ann_token)
        w, l, h = box.wlh
        category = nusc.get('instance', ann['instance_token'])['category_token']
        category = nusc.get('category', category)['name']
        det_name = category_to_detection_name(category)
        label = DETECTION_CLASSES.index(det_name) if det_name in DETECTION_CLASSES else -1
        attrs = [nusc.get('attribute', t)['name'] for t in ann['attribute_tokens']]
        attr = attrs[0] if attrs and attrs[0] in NUS_ATTRIBUTES else 'None'
        num_lidar, num_radar = int(ann['num_lidar_pts']), int(ann['num_radar_pts'])
        yaw = float(box.orientation.yaw_pitch_roll[0])
        instances.append(dict(
            bbox_3d=[float(v) for v in box.center] + [float(l), float(w), float(h), yaw],
            bbox_label=label, bbox_label_3d=label,
            velocity=[float(velocity[0]), float(velocity[1])],
            num_lidar_pts=num_lidar, num_radar_pts=num_radar,
            bbox_3d_isvalid=bool(num_lidar + num_radar > 0),
            attr_label=NUS_ATTRIBUTES.index(attr),
            instance_token=ann['instance_token'],
            instance_id=nusc.getind('instance', ann['instance_token']),
            ann_token=ann_token, category_name=category,
            visibility=str(ann['visibility_token'])))
    return instances


def _cam_instances(nusc, images: Dict[str, dict]) -> Dict[str, list]:
    """2D/mono-3D boxes per camera, via mmdet3d's own ``get_nuscenes_2d_boxes``."""
    from mmdet3d.datasets.convert_utils import get_nuscenes_2d_boxes
    return {cam: get_nuscenes_2d_boxes(nusc, info['sample_data_token'],
                                       visibilities=['', '1', '2', '3', '4'])
            for cam, info in images.items()}


def sample_info(nusc, sample_token: str, max_sweeps: int = 10,
                with_cam_instances: bool = True) -> dict:
    """One keyframe as an mmdet3d v2 info record (plus HoloDrive fields).

    Scene-level fields (``frame_idx``, ``ego_velocity``, ...) are filled by
    :func:`scene_infos`.
    """
    sample = nusc.get('sample', sample_token)
    if LIDAR_NAME not in sample['data']:
        raise NuScenesTableError(
            f'sample {sample_token!r} has no {LIDAR_NAME} sample_data',
            osp.join(nusc.table_root, 'sample_data.json'),
            f'every key-frame sample needs a {LIDAR_NAME} key-frame sample_data record')
    lidar_sd, _, lidar2ego, ego2global = _sensor_poses(nusc, sample['data'][LIDAR_NAME])
    global2lidar = np.linalg.inv(ego2global @ lidar2ego)
    scene = nusc.get('scene', sample['scene_token'])
    log = nusc.get('log', scene['log_token'])
    info = dict(
        token=sample_token,
        timestamp=sample['timestamp'] / 1e6,
        ego2global=_tolist(ego2global),
        lidar_points=dict(
            num_pts_feats=5, lidar_path=osp.basename(lidar_sd['filename']),
            lidar2ego=_tolist(lidar2ego), sample_data_token=lidar_sd['token'],
            timestamp=lidar_sd['timestamp'] / 1e6),
        lidar_sweeps=_lidar_sweeps(nusc, lidar_sd, global2lidar, max_sweeps),
        images=_camera_infos(nusc, sample, global2lidar),
        instances=_instances(nusc, sample, ego2global, lidar2ego),
        scene_token=scene['token'], scene_name=scene['name'],
        scene_description=scene.get('description', ''),
        location=log['location'], log_token=log['token'],
        prev=sample['prev'], next=sample['next'])
    if not info['lidar_sweeps']:
        del info['lidar_sweeps']  # as mmdet3d: absent key -> pad_empty_sweeps applies
    if with_cam_instances and info['images']:
        info['cam_instances'] = _cam_instances(nusc, info['images'])
    return info


def _fill_ego_motion(infos: List[dict]) -> None:
    """``ego_velocity`` (m/s, current ego frame) and ``ego_yaw_rate`` (rad/s) by
    central differences of the key-frame ego poses (one-sided at the scene ends,
    NaN for a one-frame scene)."""
    for i, info in enumerate(infos):
        a, b = infos[max(i - 1, 0)], infos[min(i + 1, len(infos) - 1)]
        dt = b['timestamp'] - a['timestamp']
        if dt <= 0:
            info['ego_velocity'] = [float('nan')] * 3
            info['ego_yaw_rate'] = float('nan')
            continue
        pa, pb = np.asarray(a['ego2global']), np.asarray(b['ego2global'])
        cur = np.asarray(info['ego2global'])
        v_global = (pb[:3, 3] - pa[:3, 3]) / dt
        info['ego_velocity'] = (cur[:3, :3].T @ v_global).tolist()
        yaw_a = np.arctan2(pa[1, 0], pa[0, 0])
        yaw_b = np.arctan2(pb[1, 0], pb[0, 0])
        info['ego_yaw_rate'] = float(np.arctan2(np.sin(yaw_b - yaw_a),
                                                np.cos(yaw_b - yaw_a)) / dt)


def scene_infos(nusc, scene: dict, max_sweeps: int = 10,
                with_cam_instances: bool = True) -> List[dict]:
    """All keyframes of one scene in temporal order, with scene-level fields."""
    infos = []
    token = scene['first_sample_token']
    while token:
        infos.append(sample_info(nusc, token, max_sweeps, with_cam_instances))
        token = infos[-1]['next']
    for i, info in enumerate(infos):
        info['frame_idx'] = i
        info['num_frames'] = len(infos)
    _fill_ego_motion(infos)
    return infos


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


def _metainfo(version: str, data_list: List[dict]) -> dict:
    categories = {name: i for i, name in enumerate(DETECTION_CLASSES)}
    for info in data_list:
        for inst in info['instances']:
            if inst['bbox_label_3d'] == -1:
                categories.setdefault(inst['category_name'], -1)
    return dict(dataset='nuscenes', version=version, info_version='1.1',
                info_producer='holodrive.datasets.nuscenes_converter',
                categories=categories)


def create_nuscenes_infos(root_path, version: str = 'v1.0-trainval', out_dir=None,
                          info_prefix: str = 'nuscenes', max_sweeps: int = 10,
                          progress: bool = True, with_cam_instances: bool = True,
                          nusc=None) -> Dict[str, Path]:
    """Write mmdet3d v2 info pickles for every split of ``version``.

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
    written = {}
    with tqdm(total=total, disable=not progress, unit='sample',
              desc=f'nuScenes {version} -> infos') as bar:
        for split, scenes in splits.items():
            data_list = []
            for scene in scenes:
                infos = scene_infos(nusc, scene, max_sweeps, with_cam_instances)
                data_list.extend(infos)
                bar.update(len(infos))
            for i, info in enumerate(data_list):
                info['sample_idx'] = i
            path = out_dir / f'{info_prefix}_infos_{split}.pkl'
            tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
            with open(tmp, 'wb') as f:
                pickle.dump(dict(metainfo=_metainfo(version, data_list),
                                 data_list=data_list), f, protocol=4)
            os.replace(tmp, path)
            written[split] = path
    return written
