"""Tests of the procedurally generated nuScenes-format world
(``holodrive.datasets.synthetic.generate_world``), checked with the nuScenes devkit."""
import json
import os

import numpy as np
import pytest

from holodrive.datasets.constants import CAMERA_NAMES, DETECTION_CLASSES, LIDAR_NAME

TABLES = ('category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose',
          'log', 'scene', 'sample', 'sample_data', 'sample_annotation', 'map')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    from holodrive.datasets.synthetic import generate_world
    root = tmp_path_factory.mktemp('synthetic_world')
    return generate_world(root, num_scenes=2, seed=0, samples_per_scene=4, image_size=(320, 180),
                          progress=False)


@pytest.fixture(scope='module')
def nusc(world):
    from nuscenes.nuscenes import NuScenes
    return NuScenes(version=world.version, dataroot=world.root, verbose=False)


def _aux_agents(world, scene_name):
    with open(os.path.join(world.root, 'synthetic_aux', 'scenes', scene_name + '.json')) as fh:
        return json.load(fh)


def test_release_layout(world, nusc):
    from nuscenes.utils.splits import mini_train, mini_val
    assert world.version == 'v1.0-mini'
    assert world.split == {'mini_train': ['scene-0061'], 'mini_val': ['scene-0103']}
    assert world.num_samples == 8 and world.num_annotations == len(nusc.sample_annotation) > 0
    for t in TABLES:
        assert os.path.isfile(os.path.join(world.root, world.version, t + '.json'))
    assert len(nusc.category) == 23 and len(nusc.attribute) == 8
    names = {c['name'] for c in nusc.category}
    assert {'vehicle.car', 'vehicle.truck', 'vehicle.bus.rigid', 'vehicle.trailer', 'vehicle.construction',
            'human.pedestrian.adult', 'vehicle.motorcycle', 'vehicle.bicycle', 'movable_object.trafficcone',
            'movable_object.barrier'} <= names
    assert sorted(v['token'] for v in nusc.visibility) == ['1', '2', '3', '4']
    for scene in nusc.scene:
        assert scene['name'] in mini_train + mini_val
    for sample in nusc.sample:
        assert set(sample['data']) == set(CAMERA_NAMES) | {LIDAR_NAME}
    for ch in list(CAMERA_NAMES) + [LIDAR_NAME]:
        assert os.listdir(os.path.join(world.root, 'samples', ch))
    assert os.listdir(os.path.join(world.root, 'sweeps', LIDAR_NAME))
    for m in nusc.map:
        assert os.path.isfile(os.path.join(world.root, m['filename']))
    # LiDAR: 5 float32 per point, sweeps chained before each keyframe (20 Hz)
    sd = nusc.get('sample_data', nusc.sample[1]['data'][LIDAR_NAME])
    pts = np.fromfile(os.path.join(world.root, sd['filename']), np.float32).reshape(-1, 5)
    assert len(pts) > 10000 and set(np.unique(pts[:, 4]).astype(int)) <= set(range(32))
    prev = nusc.get('sample_data', sd['prev'])
    assert not prev['is_key_frame'] and 40000 <= sd['timestamp'] - prev['timestamp'] <= 60000
    # camera calibration is nuScenes-like and scaled with the image size
    for ch in CAMERA_NAMES:
        cs = nusc.get('calibrated_sensor', nusc.get('sample_data', nusc.sample[0]['data'][ch])
                      ['calibrated_sensor_token'])
        fx = cs['camera_intrinsic'][0][0]
        assert abs(fx - (809 if ch == 'CAM_BACK' else 1266) * 0.2) < 3
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    assert abs(cs['translation'][2] - 1.84) < 0.05


def test_tracks_and_attributes(nusc):
    for inst in nusc.instance:
        toks, tok = [], inst['first_annotation_token']
        while tok:
            toks.append(tok)
            tok = nusc.get('sample_annotation', tok)['next']
        assert len(toks) == inst['nbr_annotations'] and toks[-1] == inst['last_annotation_token']
    no_attribute = ('movable_object.trafficcone', 'movable_object.barrier', 'movable_object.pushable_pullable')
    for ann in nusc.sample_annotation:
        assert len(ann['attribute_tokens']) == (0 if ann['category_name'] in no_attribute else 1)
        if ann['attribute_tokens']:
            attr = nusc.get('attribute', ann['attribute_tokens'][0])['name']
            v = nusc.box_velocity(ann['token'])[:2]
            if attr in ('vehicle.moving', 'pedestrian.moving') and not np.isnan(v).any():
                assert np.hypot(*v) > 0.1
            if attr in ('vehicle.parked', 'pedestrian.sitting_lying_down') and not np.isnan(v).any():
                assert np.hypot(*v) < 0.05


def test_detection_eval_gt_is_perfect(world, nusc, tmp_path):
    from nuscenes.eval.detection.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval
    from nuscenes.eval.detection.utils import category_to_detection_name
    val = set(world.split['mini_val'])
    results, classes = {}, set()
    for sample in nusc.sample:
        if nusc.get('scene', sample['scene_token'])['name'] not in val:
            continue
        boxes = []
        for tok in sample['anns']:
            ann = nusc.get('sample_annotation', tok)
            det = category_to_detection_name(ann['category_name'])
            if det is None or ann['num_lidar_pts'] <= 0:
                continue
            classes.add(det)
            attr = nusc.get('attribute', ann['attribute_tokens'][0])['name'] if ann['attribute_tokens'] else ''
            vel = nusc.box_velocity(tok)[:2]
            boxes.append(dict(sample_token=sample['token'], translation=ann['translation'], size=ann['size'],
                              rotation=ann['rotation'], velocity=[float(v) if np.isfinite(v) else 0.0 for v in vel],
                              detection_name=det, detection_score=0.9, attribute_name=attr))
        results[sample['token']] = boxes
    assert classes == set(DETECTION_CLASSES)
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(dict(meta=dict(use_camera=True, use_lidar=True, use_radar=False, use_map=False,
                                              use_external=False), results=results)))
    ev = DetectionEval(nusc, config_factory('detection_cvpr_2019'), str(path), eval_set='mini_val',
                       output_dir=str(tmp_path), verbose=False)
    metrics, _ = ev.evaluate()
    summary = metrics.serialize()
    assert summary['mean_ap'] == pytest.approx(1.0)
    for cls in DETECTION_CLASSES:
        assert summary['mean_dist_aps'][cls] == pytest.approx(1.0)


def test_box_centres_land_on_their_object(world, nusc):
    """Devkit projection of visible boxes hits the renderer's instance mask of that object."""
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points
    from PIL import Image
    checked = hits = contained = owned = 0
    for sample in nusc.sample:
        scene = nusc.get('scene', sample['scene_token'])['name']
        agents = _aux_agents(world, scene)['agents']
        visible = [t for t in sample['anns'] if nusc.get('sample_annotation', t)['visibility_token'] == '4']
        for ch in CAMERA_NAMES:
            sd = nusc.get('sample_data', sample['data'][ch])
            path, boxes, K = nusc.get_sample_data(sd['token'], box_vis_level=BoxVisibility.ANY,
                                                  selected_anntokens=visible)
            mask = np.array(Image.open(os.path.join(world.root, 'synthetic_aux', 'instance_masks', ch,
                                                    os.path.basename(sd['filename'])[:-4] + '.png')))
            assert mask.shape == (sd['height'], sd['width'])
            index = {a['instance_token']: j + 1 for j, a in enumerate(agents) if a['instance_token']}
            for box in boxes:
                if box.center[2] < 1.0:
                    continue
                ann = nusc.get('sample_annotation', box.token)
                inst = ann['instance_token']
                # every pixel of the object lies inside the projection of its box
                corners = view_points(box.corners(), K, normalize=True)[:2]
                own = np.argwhere(mask == index[inst])
                if len(own) and (box.corners()[2] > 0.1).all():
                    inside = ((own[:, 1] >= corners[0].min() - 1.5) & (own[:, 1] <= corners[0].max() + 1.5) &
                              (own[:, 0] >= corners[1].min() - 1.5) & (own[:, 0] <= corners[1].max() + 1.5))
                    contained += int(inside.sum())
                    owned += len(own)
                # the centre of solid-bodied objects lands on the object (cycles, barriers are open frames)
                if ann['category_name'].split('.')[1] in ('bicycle', 'motorcycle', 'barrier'):
                    continue
                u, v = view_points(box.center[:, None], K, normalize=True)[:2, 0]
                col, row = int(round(u)), int(round(v))
                if not (0 <= col < sd['width'] and 0 <= row < sd['height']):
                    continue
                checked += 1
                value = int(mask[row, col])
                hits += value > 0 and agents[value - 1]['instance_token'] == inst
    assert checked >= 20 and owned > 1000
    assert hits / checked >= 0.95, (hits, checked)
    # (< 1: boxes are annotated at the LiDAR time, cameras fire up to 0.05 s earlier)
    assert contained / owned >= 0.98, (contained, owned)


def test_lidar_points_match_annotations(world, nusc):
    from nuscenes.utils.geometry_utils import points_in_box
    from pyquaternion import Quaternion
    from nuscenes.utils.data_classes import Box
    total = explained = compared = 0
    for sample in nusc.sample:
        xyz = _keyframe_points_global(nusc, world.root, sample)
        on_something = np.abs(xyz[2]) < 0.08                     # ground
        for tok in sample['anns']:
            ann = nusc.get('sample_annotation', tok)
            box = nusc.get_box(tok)
            inside = points_in_box(box, xyz)
            assert abs(int(inside.sum()) - ann['num_lidar_pts']) <= 2
            compared += 1
            on_something |= points_in_box(box, xyz, wlh_factor=1.05)
        scene = nusc.get('scene', sample['scene_token'])['name']
        for s in _aux_agents(world, scene)['scenery']:
            box = Box(s['center'], s['size'], Quaternion(axis=[0, 0, 1], angle=s['yaw']))
            near = np.hypot(xyz[0] - s['center'][0], xyz[1] - s['center'][1]) < np.hypot(*s['size'][:2]) + 1
            if near.any():
                on_something[near] |= points_in_box(box, xyz[:, near], wlh_factor=1.02)
        total += xyz.shape[1]
        explained += int(on_something.sum())
    assert compared > 100
    assert explained / total > 0.99, explained / total


def test_map_expansion(world, nusc):
    from nuscenes.map_expansion.map_api import NuScenesMap
    layers = ['drivable_area', 'lane', 'ped_crossing', 'walkway', 'lane_divider', 'road_divider']
    for scene in nusc.scene:
        loc = nusc.get('log', scene['log_token'])['location']
        nmap = NuScenesMap(dataroot=world.root, map_name=loc)
        sample = nusc.get('sample', scene['first_sample_token'])
        pose = nusc.get('ego_pose', nusc.get('sample_data', sample['data'][LIDAR_NAME])['ego_pose_token'])
        x, y = pose['translation'][:2]
        assert 0 < x < nmap.canvas_edge[0] and 0 < y < nmap.canvas_edge[1]
        masks = nmap.get_map_mask((x, y, 100, 100), 0.0, layers, canvas_size=(200, 200))
        for name, m in zip(layers, masks):
            assert m.sum() > 0, (scene['name'], name)
        assert masks[0][100, 100] == 1          # the ego is on the drivable area
        lane = nmap.get_closest_lane(x, y, radius=3)
        assert lane
        poses = np.array(nmap.discretize_lanes([lane], 1.0)[lane])
        assert np.hypot(poses[:, 0] - x, poses[:, 1] - y).min() < 2.5


def test_semantic_prior_mask(world, nusc):
    m = next(r for r in nusc.map if 'singapore-onenorth' in
             [nusc.get('log', t)['location'] for t in r['log_tokens']])
    sample = nusc.get('sample', nusc.scene[0]['first_sample_token']) if nusc.get(
        'log', nusc.scene[0]['log_token'])['location'] == 'singapore-onenorth' else nusc.get(
        'sample', nusc.scene[1]['first_sample_token'])
    pose = nusc.get('ego_pose', nusc.get('sample_data', sample['data'][LIDAR_NAME])['ego_pose_token'])
    assert m['mask'].is_on_mask(pose['translation'][0], pose['translation'][1])
    assert not m['mask'].is_on_mask(5.0, 5.0)


def test_coco_and_ade_exports(world):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from PIL import Image
    for split in ('train', 'val'):
        coco = COCO(os.path.join(world.root, 'coco', 'annotations', f'instances_{split}.json'))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(DETECTION_CLASSES)
        assert len(coco.imgs) == 4 * 6 and len(coco.anns) > 50
        for img in coco.imgs.values():
            assert os.path.isfile(os.path.join(world.root, 'coco', split, img['file_name']))
        for ann in list(coco.anns.values()):
            rle = ann['segmentation']
            assert int(mask_utils.area(rle)) == ann['area']
            assert np.allclose(mask_utils.toBbox(rle), ann['bbox'])
            m = coco.annToMask(ann)
            assert m.sum() == ann['area']
    with open(os.path.join(world.root, 'ade', 'classes.json')) as fh:
        classes = json.load(fh)
    assert {'road', 'sidewalk', 'lane_marking', 'building', 'sky'} <= set(classes)
    assert set(DETECTION_CLASSES) <= set(classes)
    for sub in ('training', 'validation'):
        names = sorted(os.listdir(os.path.join(world.root, 'ade', 'annotations', sub)))
        assert len(names) == 24
        seen = set()
        for n in names[:6]:
            lab = np.array(Image.open(os.path.join(world.root, 'ade', 'annotations', sub, n)))
            assert lab.dtype == np.uint8 and lab.max() <= len(classes)
            seen |= set(np.unique(lab).tolist())
            assert os.path.isfile(os.path.join(world.root, 'ade', 'images', sub, n[:-4] + '.jpg'))
        assert {classes.index('road') + 1, classes.index('sky') + 1} <= seen


def _table_bytes(root, version):
    return {t: open(os.path.join(root, version, t + '.json'), 'rb').read() for t in TABLES}


def test_determinism(tmp_path):
    from holodrive.datasets.synthetic import generate_world
    kw = dict(num_scenes=1, samples_per_scene=2, image_size=(64, 36), lidar_sweeps_per_sample=1,
              camera_sweeps_per_sample=1, export_2d=False, progress=False)
    a = generate_world(tmp_path / 'a', seed=3, **kw)
    b = generate_world(tmp_path / 'b', seed=3, **kw)
    c = generate_world(tmp_path / 'c', seed=4, **kw)
    ta, tb, tc = (_table_bytes(s.root, s.version) for s in (a, b, c))
    assert ta == tb
    assert ta['sample_annotation'] != tc['sample_annotation'] and ta['sample'] != tc['sample']
    tok = json.loads(ta['sample'])[0]['token']
    assert len(tok) == 32 and int(tok, 16) >= 0
    for rec in json.loads(ta['sample_data'])[::5]:
        name = rec['filename']
        assert open(os.path.join(a.root, name), 'rb').read() == open(os.path.join(b.root, name), 'rb').read()
    # sweeps are chained before each keyframe, with their own ego poses
    from nuscenes.nuscenes import NuScenes
    nusc = NuScenes(version=a.version, dataroot=a.root, verbose=False)
    for ch in list(CAMERA_NAMES) + [LIDAR_NAME]:
        sd = nusc.get('sample_data', nusc.sample[-1]['data'][ch])
        chain = []
        while sd['prev']:
            sd = nusc.get('sample_data', sd['prev'])
            chain.append(sd)
        assert [r['is_key_frame'] for r in chain] == [False, True, False]
        assert len({r['ego_pose_token'] for r in chain}) == 3
        assert all(r['filename'].startswith('sweeps/' if not r['is_key_frame'] else 'samples/') for r in chain)


def test_trainval_naming():
    from holodrive.datasets.synthetic.world import scene_names_for
    from nuscenes.utils.splits import train, val
    version, names, split = scene_names_for(30, np.random.default_rng(0))
    assert version == 'v1.0-trainval' and len(set(names)) == 30
    assert set(split['val']) <= set(val) and set(split['train']) <= set(train)
    assert len(split['val']) >= 2 and len(split['val']) + len(split['train']) == 30


def test_heading_observable_by_lidar(world, nusc):
    """Car meshes have a lower bonnet in front and the cabin set back: the highest LiDAR points
    of the front quarter of a car's box are lower than those of its back half."""
    from nuscenes.utils.geometry_utils import points_in_box
    right = total = 0
    for sample in nusc.sample:
        xyz = _keyframe_points_global(nusc, world.root, sample)
        for tok in sample['anns']:
            ann = nusc.get('sample_annotation', tok)
            if ann['category_name'] != 'vehicle.car' or ann['num_lidar_pts'] < 40:
                continue
            box = nusc.get_box(tok)
            local = box.rotation_matrix.T @ (xyz[:, points_in_box(box, xyz)] - box.center[:, None])
            length = ann['size'][1]
            front, back = local[2, local[0] > 0.25 * length], local[2, local[0] < -0.1 * length]
            if len(front) < 5 or len(back) < 5:
                continue
            total += 1
            right += np.percentile(front, 90) < np.percentile(back, 90)
    assert total >= 5, total
    assert right / total >= 0.9, (right, total)


class _FlatLayout:
    """A layout stub: flat road everywhere (for single-object renders)."""
    rht = True
    origin = (-100.0, -100.0)

    def ground_class(self, x, y):
        return np.ones(np.shape(x), np.int64)


def _single_car_scene(yaw=0.0):
    from holodrive.datasets.synthetic import render as R
    from holodrive.datasets.synthetic.meshes import make_mesh
    from holodrive.datasets.synthetic.raycast import InstantScene, MeshSet
    size = (1.95, 4.62, 1.73)
    boxes = R.Boxes([(0.0, 0.0, size[2] / 2)], [size], [yaw], [(150, 150, 155)], [20], [1], [R.M_CAR])
    dyn = MeshSet.from_meshes([make_mesh('car', size)], boxes.centers, boxes.yaws, [0])
    return boxes, InstantScene(None, dyn)


def test_heading_observable_by_camera():
    """A car seen from the front shows headlights and a slanted windscreen, from behind red
    tail lights: the two views differ and the tail-light colour only appears from behind."""
    from holodrive.datasets.synthetic import render as R
    from holodrive.datasets.synthetic.sensors import camera_rotation
    boxes, scene = _single_car_scene()
    K = np.array([[200.0, 0, 80], [0, 200.0, 45], [0, 0, 1]])
    sun = np.array([0.3, 0.2, 0.93], np.float32)
    imgs = {}
    for name, x, yaw in (('front', 9.0, np.pi), ('rear', -9.0, 0.0)):
        out = R.render_camera(_FlatLayout(), boxes, scene, K, camera_rotation(yaw), (x, 0.0, 1.5), 160, 90, sun)
        assert (out['ids'] == 0).sum() > 500
        imgs[name] = out['rgb'].astype(np.int64)
    red = {k: int(((v[..., 0] > 60) & (v[..., 0] > 3 * v[..., 1]) & (v[..., 0] > 3 * v[..., 2])).sum())
           for k, v in imgs.items()}
    assert red['rear'] > 10 and red['front'] == 0, red
    bright = {k: int((v.min(-1) > 150).sum()) for k, v in imgs.items()}
    assert bright['front'] > bright['rear'], bright
    assert np.abs(imgs['front'] - imgs['rear']).mean() > 5


def test_raycast_is_deterministic_across_threads():
    from holodrive.datasets.synthetic import raycast
    boxes, scene = _single_car_scene(0.3)
    rng = np.random.default_rng(0)
    dirs = (np.array([1.0, 0.0, -0.05]) + rng.normal(0, 0.05, (5000, 3))).astype(np.float32)
    a = scene.cast((-8.0, 0.0, 1.0), dirs)
    old = raycast.NTHREADS
    try:
        raycast.NTHREADS = 1
        b = scene.cast((-8.0, 0.0, 1.0), dirs)
    finally:
        raycast.NTHREADS = old
    assert (a[1] == 0).sum() > 1000
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


def test_camera_times_follow_the_lidar_sweep(world, nusc):
    """Each camera fires when the 20 Hz LiDAR beam passes its yaw (sweep of 0.05 s ending at
    the keyframe time, starting at LiDAR azimuth -pi); its ego pose is the one at its own time."""
    from pyquaternion import Quaternion
    from holodrive.datasets.synthetic.sensors import LIDAR_PERIOD
    for sample in nusc.sample:
        lid = nusc.get('sample_data', sample['data'][LIDAR_NAME])
        assert lid['timestamp'] == sample['timestamp']
        lyaw = Quaternion(nusc.get('calibrated_sensor', lid['calibrated_sensor_token'])['rotation']).yaw_pitch_roll[0]
        offsets = []
        for ch in CAMERA_NAMES:
            sd = nusc.get('sample_data', sample['data'][ch])
            cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
            axis = Quaternion(cs['rotation']).rotation_matrix[:, 2]
            az = np.arctan2(axis[1], axis[0]) - np.deg2rad(-90.0)
            frac = ((az + np.pi) % (2 * np.pi)) / (2 * np.pi)
            expected = -LIDAR_PERIOD * (1 - frac) * 1e6
            assert abs((sd['timestamp'] - lid['timestamp']) - expected) <= 2, (ch, sd['timestamp'] - lid['timestamp'])
            assert nusc.get('ego_pose', sd['ego_pose_token'])['timestamp'] == sd['timestamp']
            offsets.append(sd['timestamp'] - lid['timestamp'])
        assert len(set(offsets)) == 6 and all(-50000 <= o < 0 for o in offsets)
        assert abs(np.deg2rad(-90.0) - lyaw) < 0.02


def test_info_lidar2img_projects_onto_objects(world, tmp_path):
    """Box centres projected with the info files' lidar2img (camera-time ego pose) land on the
    object in the renderer's instance masks (slow movers; fast ones moved during the offset)."""
    import pickle
    from PIL import Image
    from holodrive.datasets.nuscenes_converter import create_nuscenes_infos
    infos = create_nuscenes_infos(world.root, version=world.version, out_dir=str(tmp_path), progress=False)
    checked = hits = 0
    for path in infos.values():
        with open(path, 'rb') as fh:
            records = pickle.load(fh)['data_list']
        for rec in records:
            agents = _aux_agents(world, rec['scene_name'])['agents']
            for ch, img in rec['images'].items():
                mask = np.array(Image.open(os.path.join(world.root, 'synthetic_aux', 'instance_masks', ch,
                                                        img['img_path'][:-4] + '.png')))
                P = np.asarray(img['lidar2img'])
                for inst in rec['instances']:
                    if inst['visibility'] not in ('4', 4) or inst['category_name'].split('.')[1] in (
                            'bicycle', 'motorcycle', 'barrier'):
                        continue
                    v = inst.get('velocity', [0.0, 0.0])
                    if not np.all(np.isfinite(v)) or np.hypot(*v) > 1.0:
                        continue
                    p = P @ np.append(np.asarray(inst['bbox_3d'][:3]), 1.0)
                    if p[2] < 1.0:
                        continue
                    col, row = int(round(p[0] / p[2])), int(round(p[1] / p[2]))
                    if not (0 <= col < img['width'] and 0 <= row < img['height']):
                        continue
                    checked += 1
                    value = int(mask[row, col])
                    hits += value > 0 and agents[value - 1]['instance_token'] == inst['instance_token']
    assert checked >= 20
    assert hits / checked >= 0.95, (hits, checked)


def test_scene_descriptions_and_environment(world, nusc):
    from holodrive.datasets.synthetic import WORLD_FORMAT_VERSION
    from holodrive.datasets.synthetic.weather import TIMES_OF_DAY, WEATHERS, WET_TAG
    for scene in nusc.scene:
        tags = scene['description'].split(', ')
        aux = _aux_agents(world, scene['name'])
        env = aux['environment']
        assert aux['format_version'] == WORLD_FORMAT_VERSION
        assert tags[0] == env['time_of_day'] in TIMES_OF_DAY and tags[1] == env['weather'] in WEATHERS
        assert (tags[2] == WET_TAG) == env['wet']
        assert tags[-1] == nusc.get('log', scene['log_token'])['location']
        assert 'road' in tags[-2] or 'intersection' in tags[-2]
    with open(os.path.join(world.root, 'synthetic_aux', 'world.json')) as fh:
        assert json.load(fh)['format_version'] == WORLD_FORMAT_VERSION
    from holodrive.datasets.synthetic.weather import sample_environment
    envs = [sample_environment(np.random.default_rng(i)) for i in range(200)]
    assert {e.time_of_day for e in envs} == set(TIMES_OF_DAY) and {e.weather for e in envs} == set(WEATHERS)
    assert all(e.wet for e in envs if e.weather == 'rain')


_TZ_SCRIPT = '''
import sys
from holodrive.datasets.synthetic import generate_world
generate_world(sys.argv[1], num_scenes=2, seed=5, samples_per_scene=1, image_size=(32, 18),
               lidar_sweeps_per_sample=0, export_2d=False, progress=False, save_aux=False)
'''


def test_timestamps_do_not_depend_on_the_time_zone(tmp_path):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out, procs = {}, {}
    for tz in ('UTC', 'Asia/Tokyo'):       # both at once: the run time is mostly imports
        env = dict(os.environ, TZ=tz, PYTHONPATH=root)
        procs[tz] = subprocess.Popen([sys.executable, '-c', _TZ_SCRIPT, str(tmp_path / tz.replace('/', '_'))],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for tz, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        out[tz] = _table_bytes(str(tmp_path / tz.replace('/', '_')), 'v1.0-mini')
    assert out['UTC'] == out['Asia/Tokyo']
    sample = json.loads(out['UTC']['sample'])[0]
    log = json.loads(out['UTC']['log'])[0]
    import datetime
    # the log name is the local time at the location; the timestamp is its UTC epoch
    local = datetime.datetime.strptime(log['logfile'][5:24], '%Y-%m-%d-%H-%M-%S')
    offset = datetime.timedelta(hours=-4 if log['location'] == 'boston-seaport' else 8)
    epoch = (local - offset).replace(tzinfo=datetime.timezone.utc).timestamp()
    assert 0 <= sample['timestamp'] / 1e6 - epoch < 2.0


def _keyframe_points_global(nusc, root, sample):
    """``(3, N)`` key-frame LiDAR points of ``sample`` in the global frame (devkit chain)."""
    from nuscenes.utils.data_classes import LidarPointCloud
    from pyquaternion import Quaternion
    sd = nusc.get('sample_data', sample['data'][LIDAR_NAME])
    pc = LidarPointCloud.from_file(os.path.join(root, sd['filename']))
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    pc.rotate(Quaternion(cs['rotation']).rotation_matrix)
    pc.translate(np.array(cs['translation']))
    pc.rotate(Quaternion(pose['rotation']).rotation_matrix)
    pc.translate(np.array(pose['translation']))
    return pc.points[:3]
