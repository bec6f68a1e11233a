"""GT database (tools/create_data.py gt-database) and the GT-paste sampler."""
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_CENTERPOINT

ROOT = Path(__file__).resolve().parents[1]


def _cfg(world_root):
    from holodrive.engine.cli import import_project, prepare_config
    import_project()
    return prepare_config(str(ROOT / TINY_CENTERPOINT),
                          cfg_options={'data_root': str(world_root) + '/'}, check_paths=False)


def _inside(points_xyz, box, eps=1e-4):
    """Bool mask of points inside a bottom-centre LiDAR box (x, y, z, l, w, h, yaw), grown
    by ``eps`` metres on every side (negative: shrunk)."""
    c, s = np.cos(box[6]), np.sin(box[6])
    d = points_xyz.astype(np.float64) - box[:3]
    local_x = c * d[:, 0] + s * d[:, 1]
    local_y = -s * d[:, 0] + c * d[:, 1]
    return ((np.abs(local_x) <= box[3] / 2 + eps) & (np.abs(local_y) <= box[4] / 2 + eps)
            & (d[:, 2] >= -eps) & (d[:, 2] <= box[5] + eps))


def _index(world_root):
    with open(Path(world_root) / 'nuscenes_dbinfos_train.json') as f:
        return json.load(f)['classes']


def test_database_holds_every_train_box_with_exactly_its_points(tiny_world, tmp_path):
    """Each record's file holds the points inside its box (re-centred), and every
    annotated train box of the config's classes has one record. (Sweep loading in test
    mode here, so that the test can load the same clouds again.)"""
    from holodrive.datasets.gt_database import create_gt_database, loading_steps
    from holodrive.registry import DATASETS
    cfg = _cfg(tiny_world.root)
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    dataset_cfg['pipeline'] = loading_steps(dataset_cfg['pipeline'])
    assert dataset_cfg["pipeline"][1]["type"] == "LoadSweepsChecked"
    dataset_cfg["pipeline"][1]["test_mode"] = True
    dataset = DATASETS.build(dataset_cfg)
    classes = list(dataset.metainfo['classes'])
    create_gt_database(dataset, classes, str(tiny_world.root), str(tmp_path / 'db.json'),
                       db_dir=str(tmp_path / 'gt'), progress=False)
    with open(tmp_path / 'db.json') as f:
        db = json.load(f)['classes']
    records = {(r['image_idx'], r['gt_idx']): r for recs in db.values() for r in recs}
    num_boxes = 0
    for idx in range(len(dataset)):
        item = dataset.pipeline(dataset.get_data_info(idx))
        points = item['points'].tensor.numpy()
        boxes = item['gt_bboxes_3d'].tensor.numpy()
        for i, (box, label) in enumerate(zip(boxes, item['gt_labels_3d'])):
            if label < 0:
                continue
            num_boxes += 1
            rec = records[(item['sample_idx'], i)]
            assert rec['name'] == dataset.metainfo['classes'][label]
            np.testing.assert_allclose(rec['box3d_lidar'], box, rtol=0, atol=1e-5)
            obj = np.fromfile(tiny_world.root / rec['path'], dtype=np.float32).reshape(-1, 5)
            assert len(obj) == rec['num_points_in_gt']
            # every point strictly inside is stored, nothing beyond the box edge (1 mm slack
            # for the float32 edge test), re-centred on the bottom centre, channels unchanged
            strict = points[_inside(points[:, :3], box, eps=-1e-3)]
            assert len(strict) <= len(obj) <= _inside(points[:, :3], box, eps=1e-3).sum()
            got = obj.copy()
            got[:, :3] += box[:3]
            assert _inside(got[:, :3], box, eps=1e-3).all()
            if len(strict):
                gap = np.abs(strict[:, None, :] - got[None, :, :]).max(-1).min(1)
                assert gap.max() < 1e-4
    assert num_boxes == len(records) > 20


def test_object_sample_pastes_whole_objects_without_collisions(tiny_world):
    """After ObjectSample the frame has more boxes; each pasted box holds exactly the
    points of its database record and overlaps no other box in the bird's-eye view."""
    from mmdet3d.datasets.transforms.data_augment_utils import box_collision_test
    from mmdet3d.structures.ops import box_np_ops

    from holodrive.datasets.gt_database import loading_steps
    from holodrive.registry import DATASETS
    cfg = _cfg(tiny_world.root)
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    pipeline = dataset_cfg['pipeline']
    steps = loading_steps(pipeline)
    dataset_cfg['pipeline'] = steps + [pipeline[len(steps)]]   # loaders + ObjectSample
    dataset = DATASETS.build(dataset_cfg)
    db = _index(tiny_world.root)
    all_recs = [r for recs in db.values() for r in recs]
    db_boxes = np.array([r['box3d_lidar'] for r in all_recs])
    np.random.seed(0)
    pasted_total = 0
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        original = len(info['ann_info']['gt_labels_3d'])
        item = dataset.pipeline(info)
        boxes = item['gt_bboxes_3d'].tensor.numpy()
        pasted = boxes[original:]
        pasted_total += len(pasted)
        points = item['points'].tensor.numpy()
        for box in pasted:
            same = np.abs(db_boxes - box).max(1) < 1e-4      # the records with this box
            assert same.any()
            counts = {all_recs[i]['num_points_in_gt'] for i in np.flatnonzero(same)}
            # the frame's own points in the pasted box were removed (boundary points aside)
            inside = _inside(points[:, :3], box).sum()
            assert any(0 <= inside - n <= 2 for n in counts), (inside, counts)
        corners = box_np_ops.center_to_corner_box2d(boxes[:, :2], boxes[:, 3:5], boxes[:, 6])
        coll = box_collision_test(corners, corners)
        np.fill_diagonal(coll, False)
        assert not coll[original:].any(), 'a pasted box overlaps another box'
        # the tiny world's train ego stands still, so most records are the frame's own
        # objects at the same place: none may be pasted onto itself (mmdet3d's collision
        # test misses exactly coincident boxes)
        dist = np.linalg.norm(boxes[original:, None, :2] - boxes[None, :, :2], axis=-1)
        dist[np.arange(len(pasted)), original + np.arange(len(pasted))] = np.inf
        assert (dist >= 0.05).all(), 'an object was pasted onto a copy of itself'
    assert pasted_total >= 4


def test_missing_or_pickled_index_is_one_clear_error(tmp_path):
    from holodrive.datasets.transforms import GTDatabaseError, read_db_infos
    with pytest.raises(GTDatabaseError, match='create_data.py gt-database'):
        read_db_infos(str(tmp_path / 'nope.json'))
    pkl = tmp_path / 'dbinfos.pkl'
    pkl.write_bytes(pickle.dumps({'car': []}))
    with pytest.raises(GTDatabaseError, match='not a HoloDrive JSON index'):
        read_db_infos(str(pkl))
    bad = tmp_path / 'other.json'
    bad.write_text(json.dumps({'format_version': 1, 'classes': {'car': []}}))
    with pytest.raises(GTDatabaseError, match=r"no entry for classes \['bus'\]"):
        read_db_infos(str(bad), classes=['car', 'bus'])
