"""nuScenes -> mmdet3d v2 info files: layout, mmdet3d compatibility, box round trip, metric.

Usage examples for :func:`holodrive.datasets.create_nuscenes_infos`.
"""
import pickle

import numpy as np
import pytest
import torch

from holodrive.datasets import (CAMERA_NAMES, DETECTION_CLASSES, NuScenesSceneDataset,
                                load_nuscenes)

RECORD_KEYS = {'token', 'timestamp', 'ego2global', 'lidar_points', 'images', 'instances',
               'scene_token', 'scene_name', 'location', 'prev', 'next', 'frame_idx',
               'num_frames', 'sample_idx', 'ego_velocity', 'ego_yaw_rate'}
INSTANCE_KEYS = {'bbox_3d', 'bbox_label', 'bbox_label_3d', 'velocity', 'num_lidar_pts',
                 'num_radar_pts', 'bbox_3d_isvalid', 'attr_label', 'instance_token',
                 'instance_id', 'ann_token', 'category_name'}


def _load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


@pytest.fixture(scope='module')
def nusc(tiny_world):
    return load_nuscenes(tiny_world.root, tiny_world.version)


def _is_rigid(mat):
    mat = np.asarray(mat)
    return mat.shape == (4, 4) and np.allclose(mat[:3, :3] @ mat[:3, :3].T, np.eye(3),
                                               atol=1e-9) and np.allclose(mat[3], [0, 0, 0, 1])


def test_info_files_follow_mmdet3d_v2_layout(tiny_world, nusc):
    from nuscenes.utils.splits import create_splits_scenes

    assert set(tiny_world.infos) == {'train', 'val'}
    official = create_splits_scenes()
    prefix = 'mini_' if tiny_world.version.endswith('mini') else ''
    for split, path in tiny_world.infos.items():
        assert path.name == f'nuscenes_infos_{split}.pkl' and path.parent == tiny_world.root
        data = _load(path)
        meta = data['metainfo']
        assert meta['dataset'] == 'nuscenes' and meta['version'] == tiny_world.version
        assert all(meta['categories'][c] == i for i, c in enumerate(DETECTION_CLASSES))
        scenes = {s['name'] for s in nusc.scene} & set(official[prefix + split])
        assert {r['scene_name'] for r in data['data_list']} == scenes
        expected = sum(s['nbr_samples'] for s in nusc.scene if s['name'] in scenes)
        assert len(data['data_list']) == expected
        for row, rec in enumerate(data['data_list']):
            assert RECORD_KEYS <= rec.keys() and rec['sample_idx'] == row
            sample = nusc.get('sample', rec['token'])
            assert rec['scene_token'] == sample['scene_token']
            assert (rec['prev'], rec['next']) == (sample['prev'], sample['next'])
            assert _is_rigid(rec['ego2global']) and _is_rigid(rec['lidar_points']['lidar2ego'])
            assert rec['lidar_points']['num_pts_feats'] == 5
            assert list(rec['images']) == list(CAMERA_NAMES)
            for cam in rec['images'].values():
                assert np.asarray(cam['cam2img']).shape == (3, 3)
                assert _is_rigid(cam['lidar2cam']) and _is_rigid(cam['cam2ego'])
                pad = np.eye(4)
                pad[:3, :3] = cam['cam2img']
                assert np.allclose(cam['lidar2img'], pad @ np.asarray(cam['lidar2cam']))
            for sweep in rec.get('lidar_sweeps', []):
                assert np.allclose(np.linalg.inv(sweep['lidar_points']['lidar2sensor']),
                                   sweep['sensor2lidar'])
                assert sweep['timestamp'] < rec['timestamp']
            assert len(rec['instances']) == len(sample['anns'])
            for inst in rec['instances']:
                assert INSTANCE_KEYS <= inst.keys() and len(inst['bbox_3d']) == 7
                assert inst['bbox_label_3d'] in range(-1, len(DETECTION_CLASSES))
                assert inst['instance_id'] == nusc.getind('instance', inst['instance_token'])
        # frames of a scene are consecutive and ordered
        by_scene = {}
        for rec in data['data_list']:
            by_scene.setdefault(rec['scene_token'], []).append(rec['frame_idx'])
        assert all(v == list(range(len(v))) for v in by_scene.values())


def test_mmdet3d_nuscenes_dataset_reads_the_infos(tiny_world):
    from mmdet3d.datasets import NuScenesDataset
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet3d')
    pipeline = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='LoadPointsFromMultiSweeps', sweeps_num=2, use_dim=[0, 1, 2, 3, 4],
             pad_empty_sweeps=True),
        dict(type='LoadMultiViewImageFromFiles', num_views=6),
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
        dict(type='Pack3DDetInputs', keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d'])]
    prefix = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', img='',
                  **{c: f'samples/{c}' for c in CAMERA_NAMES})
    ds = NuScenesDataset(data_root=str(tiny_world.root), ann_file='nuscenes_infos_train.pkl',
                         data_prefix=prefix, pipeline=pipeline,
                         modality=dict(use_lidar=True, use_camera=True),
                         metainfo=dict(version=tiny_world.version))
    assert len(ds) == len(_load(tiny_world.infos['train'])['data_list'])
    item = ds[len(ds) - 1]   # has previous sweeps
    points = item['inputs']['points']
    assert points.ndim == 2 and points.shape[1] == 5 and len(points) > 100
    assert item['inputs']['img'].shape[0] == 6
    gt = item['data_samples'].gt_instances_3d
    assert len(gt.bboxes_3d) == len(gt.labels_3d) > 0 and gt.bboxes_3d.tensor.shape[1] == 9


def test_info_boxes_convert_back_to_the_devkit_global_boxes(tiny_world, nusc):
    """The inverse path NuScenesMetric uses reproduces the devkit's boxes (1e-3)."""
    from mmdet3d.evaluation.metrics.nuscenes_metric import (lidar_nusc_box_to_global,
                                                            output_to_nusc_box)
    from mmdet3d.structures import LiDARInstance3DBoxes
    from nuscenes.eval.common.config import config_factory

    cfg = config_factory('detection_cvpr_2019')
    cfg.class_range = {k: 1e9 for k in cfg.class_range}   # keep every box
    checked = 0
    for path in tiny_world.infos.values():
        for info in _load(path)['data_list']:
            insts = info['instances']
            if not insts:
                continue
            boxes = LiDARInstance3DBoxes(
                np.array([i['bbox_3d'] + i['velocity'] for i in insts]), box_dim=9,
                origin=(0.5, 0.5, 0.5))
            det = dict(bboxes_3d=boxes, scores_3d=torch.ones(len(insts)),
                       labels_3d=torch.zeros(len(insts), dtype=torch.long))
            nus_boxes, _ = output_to_nusc_box(det)
            nus_boxes = lidar_nusc_box_to_global(info, nus_boxes, DETECTION_CLASSES, cfg)
            for inst, box in zip(insts, nus_boxes):
                ref = nusc.get_box(inst['ann_token'])
                np.testing.assert_allclose(box.center, ref.center, atol=1e-3)
                np.testing.assert_allclose(box.wlh, ref.wlh, atol=1e-3)
                dyaw = box.orientation.yaw_pitch_roll[0] - ref.orientation.yaw_pitch_roll[0]
                assert abs(np.arctan2(np.sin(dyaw), np.cos(dyaw))) < 1e-3
                np.testing.assert_allclose(box.velocity[:2],
                                           nusc.box_velocity(inst['ann_token'])[:2],
                                           atol=1e-3, equal_nan=True)
                checked += 1
    assert checked > 0


def _devkit_gt_as_prediction(nusc, tiny_world, tmp_path):
    """mAP and per-class AP of the devkit's own evaluation GT submitted as predictions
    (``load_gt`` + ``filter_eval_boxes``: the boxes DetectionEval scores against)."""
    import json

    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.loaders import add_center_dist, filter_eval_boxes, load_gt
    from nuscenes.eval.detection.data_classes import DetectionBox
    from nuscenes.eval.detection.evaluate import DetectionEval

    cfg = config_factory('detection_cvpr_2019')
    split = 'mini_val' if tiny_world.version.endswith('mini') else 'val'
    gt = filter_eval_boxes(nusc, add_center_dist(nusc, load_gt(nusc, split, DetectionBox)),
                           cfg.class_range)
    results = {}
    for token in gt.sample_tokens:
        results[token] = []
        for box in gt[token]:
            rec = box.serialize()
            rec.update(detection_score=1.0,
                       velocity=[float(v) for v in np.nan_to_num(rec['velocity'])])
            results[token].append(rec)
    path = tmp_path / 'devkit_gt.json'
    path.write_text(json.dumps(dict(meta=dict(use_camera=False, use_lidar=True,
                                              use_radar=False, use_map=False,
                                              use_external=False), results=results)))
    ev = DetectionEval(nusc, cfg, str(path), split, str(tmp_path / 'devkit_eval'),
                       verbose=False)
    metrics, _ = ev.evaluate()
    summary = metrics.serialize()
    return summary['mean_ap'], summary['mean_dist_aps']


def test_nuscenes_metric_on_gt_boxes_matches_devkit(tiny_world, nusc, tmp_path):
    """GT boxes of the val infos fed to mmdet3d's NuScenesMetric as predictions give
    exactly the devkit's GT-as-prediction mAP (AP 1 for every class present)."""
    from mmdet3d.evaluation.metrics import NuScenesMetric

    ds = NuScenesSceneDataset(str(tiny_world.root), 'nuscenes_infos_val.pkl', pipeline=[],
                              modality=dict(use_lidar=True, use_camera=False),
                              test_mode=True, use_valid_flag=True)
    assert ds.metainfo['version'] == tiny_world.version   # follows the info file
    metric = NuScenesMetric(data_root=str(tiny_world.root),
                            ann_file=str(tiny_world.infos['val']), metric='bbox',
                            jsonfile_prefix=str(tmp_path / 'mmdet3d'))
    metric.dataset_meta = ds.metainfo
    present = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        ann = info['eval_ann_info']
        keep = ann['gt_labels_3d'] >= 0
        labels = torch.as_tensor(ann['gt_labels_3d'][keep])
        present.update(DETECTION_CLASSES[k] for k in labels.tolist())
        pred = dict(bboxes_3d=ann['gt_bboxes_3d'][torch.as_tensor(keep)],
                    scores_3d=torch.ones(len(labels)), labels_3d=labels)
        metric.process({}, [dict(pred_instances_3d=pred, pred_instances={},
                                 sample_idx=info['sample_idx'])])
    result = metric.compute_metrics(metric.results)
    prefix = 'pred_instances_3d_NuScenes'
    assert present
    devkit_map, devkit_class_ap = _devkit_gt_as_prediction(nusc, tiny_world, tmp_path)
    assert result[f'{prefix}/mAP'] == pytest.approx(devkit_map, abs=1e-6)
    assert result[f'{prefix}/mAP'] == pytest.approx(len(present) / len(DETECTION_CLASSES))
    for name in present:
        assert devkit_class_ap[name] == pytest.approx(1.0)
        for dist in ('0.5', '1.0', '2.0', '4.0'):
            assert result[f'{prefix}/{name}_AP_dist_{dist}'] == pytest.approx(1.0)
        for err in ('trans_err', 'scale_err', 'orient_err', 'vel_err'):
            value = result[f'{prefix}/{name}_{err}']    # NaN: undefined for the class
            assert np.isnan(value) or value < 1e-3, (name, err, value)


def test_converter_writes_to_out_dir_with_prefix(tiny_world, nusc, tmp_path):
    from holodrive.datasets import create_nuscenes_infos

    out = create_nuscenes_infos(tiny_world.root, tiny_world.version, out_dir=tmp_path,
                                info_prefix='custom', max_sweeps=1, progress=False,
                                with_cam_instances=False, nusc=nusc)
    assert out == {s: tmp_path / f'custom_infos_{s}.pkl' for s in ('train', 'val')}
    for rec in _load(out['train'])['data_list']:
        assert len(rec.get('lidar_sweeps', [])) <= 1 and 'cam_instances' not in rec
