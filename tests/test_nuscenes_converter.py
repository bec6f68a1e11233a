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
        # exactly min(max_sweeps, sweeps before this keyframe): 0 only at a scene start
        has_prev = nusc.get('sample_data', rec['lidar_points']['sample_data_token'])['prev']
        assert len(rec.get('lidar_sweeps', [])) == (1 if has_prev else 0)
        assert 'cam_instances' not in rec


def test_streamed_pkl_is_one_valid_pickle_and_the_stream_is_written_with_it(tiny_world):
    import mmengine

    from holodrive.datasets import streaming

    for path in tiny_world.infos.values():
        data = _load(path)
        assert mmengine.load(str(path)).keys() == data.keys() == {'metainfo', 'data_list'}
        assert pickle.dumps(mmengine.load(str(path))) == pickle.dumps(data)
        stream = streaming.InfoStream(path.with_suffix('.stream'))
        assert stream.header['source'] == streaming.source_signature(path)
        assert len(stream) == len(data['data_list'])
        for i, rec in enumerate(data['data_list']):
            assert pickle.dumps(stream[i]) == pickle.dumps(rec)


def test_dataset_never_rereads_the_pkl(tiny_world, monkeypatch):
    from holodrive.datasets import streaming

    def fail(*args):
        raise AssertionError('the .stream should have been written by the converter')
    monkeypatch.setattr(streaming, 'build_info_stream', fail)
    monkeypatch.setattr(streaming, 'load_info_file', fail)
    ds = NuScenesSceneDataset(str(tiny_world.root), 'nuscenes_infos_train.pkl')
    assert len(ds) == len(_load(tiny_world.infos['train'])['data_list'])


def test_workers_give_byte_identical_output(tiny_world, nusc, tmp_path):
    from holodrive.datasets import create_nuscenes_infos

    one = create_nuscenes_infos(tiny_world.root, tiny_world.version, out_dir=tmp_path / 'w1',
                                progress=False, nusc=nusc, workers=1)
    two = create_nuscenes_infos(tiny_world.root, tiny_world.version, out_dir=tmp_path / 'w2',
                                progress=False, nusc=nusc, workers=2)
    for split in one:
        assert one[split].read_bytes() == two[split].read_bytes()
        assert one[split].read_bytes() == tiny_world.infos[split].read_bytes()


def test_cam_instances_equal_mmdet3d_get_nuscenes_2d_boxes(tiny_world, nusc, monkeypatch):
    """The vectorised 2D / mono-3D boxes are mmdet3d's, clipped to the real image size."""
    import functools

    from mmdet3d.datasets import convert_utils

    monkeypatch.setattr(convert_utils, 'post_process_coords', functools.partial(
        convert_utils.post_process_coords, imsize=(320, 180)))   # tiny_world's images
    checked = 0
    for rec in _load(tiny_world.infos['val'])['data_list']:
        for cam, boxes in rec['cam_instances'].items():
            sd_token = rec['images'][cam]['sample_data_token']
            ref = convert_utils.get_nuscenes_2d_boxes(nusc, sd_token, ['', '1', '2', '3', '4'])
            assert len(boxes) == len(ref), cam
            for ours, theirs in zip(boxes, ref):
                assert ours.keys() == theirs.keys()
                for key in ours:   # mmdet3d projects the centre in float32
                    atol = 1e-3 if key in ('center_2d', 'depth') else 1e-6
                    np.testing.assert_allclose(ours[key], theirs[key], atol=atol,
                                               equal_nan=True, err_msg=key)
                checked += 1
    assert checked > 10


def _devkit_ego2global(nusc, sample_token):
    from nuscenes.utils.geometry_utils import transform_matrix
    from pyquaternion import Quaternion

    sd = nusc.get('sample_data', nusc.get('sample', sample_token)['data']['LIDAR_TOP'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    return transform_matrix(pose['translation'], Quaternion(pose['rotation']))


def test_ego_trajectories_match_devkit_poses(tiny_world, nusc):
    for path in tiny_world.infos.values():
        data_list = _load(path)['data_list']
        meta = _load(path)['metainfo']
        assert (meta['ego_fut_steps'], meta['ego_past_steps']) == (6, 4)
        by_token = {r['token']: r for r in data_list}
        for rec in data_list:
            cur = np.linalg.inv(_devkit_ego2global(nusc, rec['token']))
            assert np.asarray(rec['ego_fut_traj']).shape == (6, 2)
            assert np.asarray(rec['ego_past_traj']).shape == (4, 2)
            for key, link, steps in (('fut', 'next', 6), ('past', 'prev', 4)):
                token = rec['token']
                for k in range(steps):
                    token = by_token[token][link] if token else ''
                    traj = rec[f'ego_{key}_traj'][k]
                    assert rec[f'ego_{key}_valid'][k] == bool(token)
                    if not token:
                        assert traj == [0.0, 0.0]
                        continue
                    rel = cur @ _devkit_ego2global(nusc, token)
                    np.testing.assert_allclose(traj, rel[:2, 3], atol=1e-6)
                    if key == 'fut':
                        assert rec['ego_fut_yaw'][k] == pytest.approx(
                            np.arctan2(rel[1, 0], rel[0, 0]), abs=1e-6)
            frame, n = rec['frame_idx'], rec['num_frames']
            assert sum(rec['ego_fut_valid']) == min(6, n - 1 - frame)
            assert sum(rec['ego_past_valid']) == min(4, frame)


def test_trajectory_horizons_are_arguments(tiny_world, nusc, tmp_path):
    from holodrive.datasets import create_nuscenes_infos

    out = create_nuscenes_infos(tiny_world.root, tiny_world.version, out_dir=tmp_path,
                                progress=False, with_cam_instances=False, nusc=nusc,
                                fut_steps=2, past_steps=1)
    data = _load(out['val'])
    assert (data['metainfo']['ego_fut_steps'], data['metainfo']['ego_past_steps']) == (2, 1)
    rec = data['data_list'][0]
    assert np.asarray(rec['ego_fut_traj']).shape == (2, 2) and rec['ego_past_valid'] == [False]
    ds = NuScenesSceneDataset(str(tiny_world.root), str(out['val']))
    item = ds.get_data_info(0)
    assert item['ego_fut_traj'].shape == (2, 2) and item['ego_past_valid'].shape == (1,)


@pytest.fixture(scope='module')
def sweep_world(tmp_path_factory):
    from holodrive.datasets import create_nuscenes_infos
    from holodrive.datasets.synthetic import generate_world

    root = tmp_path_factory.mktemp('cam_sweep_world')
    summary = generate_world(root, num_scenes=2, seed=3, samples_per_scene=3,
                             image_size=(160, 90), camera_sweeps_per_sample=2,
                             lidar_sweeps_per_sample=2, export_2d=False, save_aux=False,
                             progress=False)
    infos = create_nuscenes_infos(root, summary.version, progress=False,
                                  with_cam_instances=False, max_cam_sweeps=3)
    return root, load_nuscenes(root, summary.version), infos


def test_camera_sweeps_project_like_the_devkit_chain(sweep_world):
    from nuscenes.utils.geometry_utils import transform_matrix
    from pyquaternion import Quaternion

    root, nusc, infos = sweep_world
    point_global = None
    checked = 0
    for rec in _load(infos['train'])['data_list'] + _load(infos['val'])['data_list']:
        lidar_sd = nusc.get('sample_data', rec['lidar_points']['sample_data_token'])
        assert set(rec['cam_sweeps']) == set(CAMERA_NAMES)
        for cam, sweeps in rec['cam_sweeps'].items():
            # the non-keyframes back to the previous keyframe, newest first
            key_sd = nusc.get('sample_data', rec['images'][cam]['sample_data_token'])
            expected, token = [], key_sd['prev']
            while token and not nusc.get('sample_data', token)['is_key_frame']:
                expected.append(token)
                token = nusc.get('sample_data', token)['prev']
            assert [s['sample_data_token'] for s in sweeps] == expected[:3]
            assert len(sweeps) == 2     # camera_sweeps_per_sample (max_cam_sweeps=3 is not hit)
            for sweep in sweeps:
                sd = nusc.get('sample_data', sweep['sample_data_token'])
                assert sweep['img_path'] == sd['filename'] and (root / sd['filename']).is_file()
                assert sweep['timestamp'] == sd['timestamp'] / 1e6 < rec['timestamp']
                cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
                pose = nusc.get('ego_pose', sd['ego_pose_token'])
                lcs = nusc.get('calibrated_sensor', lidar_sd['calibrated_sensor_token'])
                lpose = nusc.get('ego_pose', lidar_sd['ego_pose_token'])
                # a static world point 10 m in front of this sweep's camera
                point_global = transform_matrix(
                    pose['translation'], Quaternion(pose['rotation'])) @ transform_matrix(
                    cs['translation'], Quaternion(cs['rotation'])) @ np.array([0.5, -0.3, 10, 1])
                p_lidar = transform_matrix(lcs['translation'], Quaternion(lcs['rotation']),
                                           inverse=True) @ transform_matrix(
                    lpose['translation'], Quaternion(lpose['rotation']),
                    inverse=True) @ point_global
                # devkit chain: global -> sweep ego -> sweep camera -> image
                p_cam = transform_matrix(cs['translation'], Quaternion(cs['rotation']),
                                         inverse=True) @ transform_matrix(
                    pose['translation'], Quaternion(pose['rotation']), inverse=True) @ point_global
                uvz = np.asarray(cs['camera_intrinsic']) @ p_cam[:3]
                ours = np.asarray(sweep['lidar2img']) @ p_lidar
                np.testing.assert_allclose(ours[:2] / ours[2], uvz[:2] / uvz[2], atol=1e-6)
                np.testing.assert_allclose((np.asarray(sweep['lidar2cam']) @ p_lidar)[:3],
                                           p_cam[:3], atol=1e-6)
                np.testing.assert_allclose(sweep['ego2global'], transform_matrix(
                    pose['translation'], Quaternion(pose['rotation'])), atol=1e-9)
                checked += 1
    assert checked > 0 and point_global is not None
