"""Ground-truth database for mmdet3d's ``ObjectSample`` ("GT-paste") augmentation.

CenterPoint's nuScenes recipe pastes objects cut from other training frames into each
frame (class-balanced: up to 2 cars, 6 motorcycles ... per frame), which is what lets
rare classes learn their shape and heading. mmdet3d writes that database with a
repository script (``tools/dataset_converters/create_gt_database.py``) that is not part
of the pip package, and stores it as a pickle; here it is one function over our dataset
and a JSON index (no pickle to trust), read by
:class:`holodrive.datasets.transforms.SceneDataBaseSampler`.

Layout under ``data_root`` (the names mmdet3d uses):

- ``nuscenes_gt_database/{sample_idx}_{class}_{box_idx}.bin``: float32 ``(N, C)`` points
  inside the box (keyframe + the sweeps the config loads), xyz relative to the box's
  bottom centre, other channels as loaded;
- ``nuscenes_dbinfos_train.json``: ``{class: [record, ...]}``, each record with ``name``,
  ``path`` (relative to ``data_root``), ``image_idx``, ``gt_idx``, ``box3d_lidar`` (9
  floats: x, y, z, l, w, h, yaw, vx, vy in the LiDAR frame), ``num_points_in_gt``,
  ``difficulty`` (0) and ``group_id``.

Build it from the config that trains with it (its loading steps and paths):
``tools/create_data.py gt-database --config CFG``.
"""
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from holodrive.utils.io import atomic_open, clean_stale_tmp

DB_FORMAT_VERSION = 1


def _points_in_boxes(points_xyz: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(N, M)`` bool: point n inside box m (bottom-centre boxes, yaw about z)."""
    from mmdet3d.structures.ops import box_np_ops
    return box_np_ops.points_in_rbbox(points_xyz, boxes[:, :7], z_axis=2, origin=(0.5, 0.5, 0))


def db_records_of_sample(points: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                         class_names: List[str], sample_idx: int, db_dir: str,
                         data_root: str, first_group_id: int = 0) -> List[dict]:
    """Write the points of each box of one sample and return its database records.

    Args:
        points: ``(N, C)`` float32, LiDAR frame (xyz first).
        boxes: ``(M, >=7)`` LiDAR boxes (x, y, z bottom centre, l, w, h, yaw, [vx, vy]).
        labels: ``(M,)`` class indices into ``class_names``; ``-1`` boxes are skipped.
        db_dir: folder the ``.bin`` files go to (created); paths are stored relative
            to ``data_root``.
    """
    records = []
    if len(boxes) == 0:
        return records
    inside = _points_in_boxes(points[:, :3], boxes)
    for i, (box, label) in enumerate(zip(boxes, labels)):
        if label < 0:
            continue
        name = class_names[int(label)]
        obj = points[inside[:, i]].astype(np.float32, copy=True)
        obj[:, :3] -= box[:3]
        fname = f'{sample_idx}_{name}_{i}.bin'
        obj.tofile(osp.join(db_dir, fname))  # the index, written last, is the atomic part
        records.append(dict(
            name=name, path=osp.relpath(osp.join(db_dir, fname), data_root),
            image_idx=int(sample_idx), gt_idx=i,
            box3d_lidar=[float(v) for v in box], num_points_in_gt=int(len(obj)),
            difficulty=0, group_id=first_group_id + len(records)))
    return records


def loading_steps(pipeline: List[dict]) -> List[dict]:
    """The steps of a training pipeline before its ``ObjectSample`` (the loaders)."""
    steps = []
    for step in pipeline:
        if step.get('type', '').split('.')[-1] == 'ObjectSample':
            return steps
        steps.append(copy.deepcopy(step))
    raise ValueError('the pipeline has no ObjectSample step (nothing uses a GT database)')


def find_db_sampler(pipeline: List[dict]) -> dict:
    """The ``db_sampler`` dict of the pipeline's ``ObjectSample`` step."""
    for step in pipeline:
        if step.get('type', '').split('.')[-1] == 'ObjectSample':
            return step['db_sampler']
    raise ValueError('the pipeline has no ObjectSample step (nothing uses a GT database)')


def create_gt_database(dataset, class_names: List[str], data_root: str, info_path: str,
                       db_dir: Optional[str] = None, progress: bool = True,
                       seed: int = 0) -> Dict[str, int]:
    """Cut every annotated box of ``dataset`` out of its point cloud into the database.

    Args:
        dataset: an mmdet3d dataset whose pipeline yields ``points``, ``gt_bboxes_3d``,
            ``gt_labels_3d`` and ``sample_idx`` (the config's loading steps).
        info_path: the JSON index to write (the config's ``db_sampler.info_path``).
        db_dir: folder of the point files (default ``data_root/nuscenes_gt_database``).
        seed: numpy seed for the loaders' random choices (a training sweep loader picks
            a random subset of the sweeps, as in training); the database is the same on
            every run. The caller's numpy random state is restored afterwards.

    Returns:
        ``{class: number of records}``.
    """
    db_dir = db_dir or osp.join(data_root, 'nuscenes_gt_database')
    os.makedirs(db_dir, exist_ok=True)
    clean_stale_tmp(db_dir)
    db: Dict[str, list] = {name: [] for name in class_names}
    num_records = 0
    rng_state = np.random.get_state()
    np.random.seed(seed)
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc='gt database', unit='sample')
    for idx in indices:
        # the loaders only (no Pack3DDetInputs), so not through __getitem__'s packed checks
        item = dataset.pipeline(dataset.get_data_info(idx))
        points = item['points'].tensor.numpy()
        boxes = item['gt_bboxes_3d'].tensor.numpy()
        records = db_records_of_sample(points, boxes, np.asarray(item['gt_labels_3d']),
                                       class_names, item.get('sample_idx', idx), db_dir,
                                       data_root, first_group_id=num_records)
        for rec in records:
            db[rec['name']].append(rec)
        num_records += len(records)
    np.random.set_state(rng_state)
    with atomic_open(info_path, 'w') as f:
        json.dump(dict(format_version=DB_FORMAT_VERSION, classes=db), f)
    return {name: len(v) for name, v in db.items()}


def gt_database_from_config(cfg, progress: bool = True) -> Dict[str, int]:
    """Build the GT database a config's ``ObjectSample`` step reads.

    The dataset is the config's ``train_dataloader.dataset`` (wrappers such as CBGS
    removed) with its pipeline cut before ``ObjectSample``, so the pasted points carry
    exactly the channels and sweeps the training frames have.
    """
    from mmengine.registry import init_default_scope

    from holodrive.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'holodrive'))
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    sampler = find_db_sampler(dataset_cfg['pipeline'])
    dataset_cfg['pipeline'] = loading_steps(dataset_cfg['pipeline'])
    dataset = DATASETS.build(dataset_cfg)
    class_names = list(sampler.get('classes') or dataset.metainfo['classes'])
    return create_gt_database(dataset, class_names, sampler['data_root'], sampler['info_path'],
                              progress=progress)
