"""NuScenesSceneDataset: one item for detectors, world models and driving QA; streaming.

Usage examples for :class:`holodrive.datasets.NuScenesSceneDataset` and the
transforms in :mod:`holodrive.datasets.transforms`.
"""
import gc
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from holodrive.datasets import (CAMERA_NAMES, MAP_LAYERS, NuScenesSceneDataset,
                                load_nuscenes, open_info_stream)
from holodrive.datasets.info_writer import replicate_info_file
from holodrive.datasets.transforms import BEVGrid, get_nusc_map

KEYS = ['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_instance_ids', 'gt_instance_tokens',
        'depth_maps', 'map_bev', 'box_bev']


def full_pipeline(sweeps=2):
    """Everything at once: what a camera+LiDAR world model would request."""
    return [
        dict(type='LoadPointsChecked'),
        dict(type='LoadSweepsChecked', sweeps_num=sweeps, use_dim=[0, 1, 2, 3, 4],
             pad_empty_sweeps=True, test_mode=True),
        dict(type='LoadMultiViewImagesChecked'),
        dict(type='LoadSceneAnnotations3D', with_instance_token=True),
        dict(type='FilterSceneInstances', point_cloud_range=[-50, -50, -5, 50, 50, 3]),
        dict(type='ProjectLidarDepth', max_depth=80.0),
        dict(type='RasterizeMapBEV', resolution=0.5),
        dict(type='RasterizeBoxBEV', resolution=0.5),
        dict(type='LoadAdjacentFrames', pipeline=[
            dict(type='LoadPointsChecked'),
            dict(type='LoadSceneAnnotations3D'),
            dict(type='FilterSceneInstances')]),
        dict(type='PackSceneInputs', keys=KEYS),
    ]


@pytest.fixture(scope='module')
def val_set(tiny_world):
    return NuScenesSceneDataset(str(tiny_world.root), 'nuscenes_infos_val.pkl',
                                pipeline=full_pipeline(), adjacent_frames=(-1, 1),
                                filter_empty_gt=False)


@pytest.fixture(scope='module')
def items(val_set):
    return [val_set[i] for i in range(len(val_set))]


def _l2g(info):
    return np.asarray(info['ego2global']) @ np.asarray(info['lidar_points']['lidar2ego'])


def test_item_has_images_calibration_points_boxes(val_set, items):
    item = items[1]
    inputs, sample = item['inputs'], item['data_samples']
    img = inputs['img']
    assert img.shape[:2] == (6, 3) and img.dtype == torch.uint8
    h, w = img.shape[2:]
    assert len(sample.cam2img) == len(sample.lidar2cam) == len(sample.cam2ego) == 6
    for cam2img, lidar2cam, lidar2img in zip(sample.cam2img, sample.lidar2cam,
                                             sample.lidar2img):
        k = np.asarray(cam2img)          # the recorded intrinsics, padded to 4x4
        assert k.shape == (4, 4) and np.allclose(k[3], [0, 0, 0, 1])
        k = k[:3, :3]
        assert 0 < k[0, 2] < w and 0 < k[1, 2] < h
        rot = np.asarray(lidar2cam)[:3, :3]
        assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-6)
        pad = np.eye(4)
        pad[:3, :3] = k
        assert np.allclose(lidar2img, pad @ np.asarray(lidar2cam))
    points = inputs['points']
    assert points.ndim == 2 and points.shape[1] == 5 and len(points) > 100
    assert torch.isfinite(points).all()
    assert set(points[:, 4].unique().tolist()) > {0.0}      # key frame + sweeps
    gt = sample.gt_instances_3d
    n = len(gt.labels_3d)
    assert n > 0 and gt.bboxes_3d.tensor.shape == (n, 9)   # with velocity
    assert (gt.labels_3d >= 0).all() and len(gt.instance_ids) == n
    assert len(gt.instance_tokens) == n
    # per-frame context for the QA head
    info = val_set.get_data_info(1)
    for key in ('token', 'scene_token', 'scene_name', 'location', 'frame_idx',
                'ego_velocity', 'timestamp'):
        assert sample.metainfo[key] == info[key] if key != 'ego_velocity' else \
            np.allclose(sample.metainfo[key], info[key])
    assert np.allclose(sample.ego2global, info['ego2global'])


def test_instance_ids_are_stable_along_tracks(tiny_world, val_set, items):
    nusc = load_nuscenes(tiny_world.root, tiny_world.version)
    for item in items:
        sample = item['data_samples']
        gt = sample.gt_instances_3d
        for token, iid in zip(gt.instance_tokens, gt.instance_ids.tolist()):
            assert iid == nusc.getind('instance', str(token))
        # the neighbours' boxes carry the same id for the same track
        cur = dict(zip(gt.instance_ids.tolist(), gt.bboxes_3d.gravity_center.numpy()))
        for adj, mat, valid in zip(sample.adjacent, sample.adjacent_adj2cur_lidar,
                                   sample.adjacent_valid):
            adj_gt = adj.gt_instances_3d
            shared = set(cur) & set(adj_gt.instance_ids.tolist())
            if valid:
                assert shared, 'consecutive keyframes share tracks'
            for iid, centre in zip(adj_gt.instance_ids.tolist(),
                                   adj_gt.bboxes_3d.gravity_center.numpy()):
                if iid in shared:   # same object, <= 0.5 s apart: a few metres at most
                    moved = mat[:3, :3] @ centre + mat[:3, 3]
                    assert np.linalg.norm(moved - cur[iid]) < 10.0


def test_adjacent_frames_clamp_and_drop_at_scene_boundaries(tiny_world, val_set):
    n = len(val_set)
    first, last = val_set.get_data_info(0), None
    entries = first['adjacent_frames']
    assert [e['offset'] for e in entries] == [-1, 1]
    assert entries[0]['actual_offset'] == 0 and not entries[0]['valid']   # clamped
    assert entries[0]['info']['token'] == first['token']
    assert entries[1]['valid'] and entries[1]['info']['token'] == first['next']
    assert entries[1]['time_delta'] > 0
    expected = np.linalg.inv(_l2g(first)) @ _l2g(entries[1]['info'])
    assert np.allclose(entries[1]['adj2cur_lidar'], expected)
    assert np.allclose(entries[1]['cur2adj_lidar'] @ expected, np.eye(4))
    for i in range(n):
        info = val_set.get_data_info(i)
        if info['next'] == '':
            last = info
    assert last['adjacent_frames'][1]['info']['token'] == last['token']
    assert not last['adjacent_frames'][1]['valid']

    dropping = NuScenesSceneDataset(str(tiny_world.root), 'nuscenes_infos_val.pkl',
                                    adjacent_frames=(-2, -1, 1), adjacent_policy='drop')
    offsets = [e['offset'] for e in dropping.get_data_info(0)['adjacent_frames']]
    assert offsets == [1]
    two_back = dropping.get_data_info(2)['adjacent_frames'][0]
    assert two_back['offset'] == -2 and two_back['info']['frame_idx'] == 0


@pytest.mark.parametrize('frame,x_range,y_range,res', [
    ('lidar', (-50, 50), (-50, 50), 0.5),     # the grid of the packed item
    ('ego', (-10, 50), (-20, 20), 0.25),      # asymmetric, finer, ego frame
])
def test_map_raster_matches_the_map_polygons(tiny_world, val_set, frame, x_range, y_range,
                                             res):
    import shapely
    from shapely.ops import unary_union

    from holodrive.datasets.transforms import RasterizeMapBEV

    info = val_set.get_data_info(0)
    out = RasterizeMapBEV(x_range=x_range, y_range=y_range, resolution=res,
                          frame=frame)(dict(info))
    grid = out['bev_grid']
    map_bev = out['map_bev']
    assert map_bev.shape == (len(MAP_LAYERS),) + grid.shape and map_bev.dtype == np.uint8
    road = map_bev[MAP_LAYERS.index('drivable_area')]
    assert road.mean() > 0.01, 'road around the ego'
    assert map_bev[MAP_LAYERS.index('lane_divider')].any() or \
        map_bev[MAP_LAYERS.index('road_divider')].any(), 'line layers are drawn'
    nusc_map = get_nusc_map(tiny_world.root, info['location'])
    polygons = unary_union([nusc_map.extract_polygon(t) for rec in nusc_map.drivable_area
                            for t in rec['polygon_tokens']])
    xs, ys = grid.cell_centres()
    pose = np.asarray(info['ego2global'])
    if frame == 'lidar':
        pose = _l2g(info)
    cx, cy = np.meshgrid(xs, ys)                      # (H, W) cell centres
    g = np.stack([cx.ravel(), cy.ravel(), np.zeros(cx.size), np.ones(cx.size)])
    g = (pose @ g)[:2]
    inside = shapely.contains_xy(polygons, g[0], g[1]).reshape(road.shape)
    # a correct raster may only disagree where a border passes close to the cell centre
    # (measured: < 0.25 cell); a one-cell offset disagrees up to a cell away from it
    near = (shapely.distance(polygons.boundary, shapely.points(g[0], g[1])) <
            0.35 * res).reshape(road.shape)

    def far_mismatches(raster):
        """Cells whose value disagrees with point-in-polygon at the cell centre although
        the centre is not near a polygon border."""
        return int(((raster.astype(bool) != inside) & ~near).sum())

    assert far_mismatches(road) <= 10, far_mismatches(road)
    assert inside.any() and (~inside).any()
    # the criterion detects a one-cell offset in either direction
    for axis in (0, 1):
        for step in (-1, 1):
            shifted = np.roll(road, step, axis=axis)
            assert far_mismatches(shifted) > 50, (axis, step)   # measured: >= 100


def test_packed_map_raster_and_shapely2_lines(items):
    from shapely.geometry import LineString, MultiLineString

    from holodrive.datasets.transforms.bev import _patched_explorer_cls

    assert tuple(items[0]['inputs']['map_bev'].shape) == (len(MAP_LAYERS), 200, 200)
    # a divider that leaves and re-enters the patch is a MultiLineString: the devkit's
    # mask_for_lines cannot iterate it under shapely 2, the patched explorer can
    lines = MultiLineString([[(1, 1), (8, 1)], [(1, 6), (8, 6)]])
    mask = _patched_explorer_cls().mask_for_lines(lines, np.zeros((10, 10), np.uint8))
    assert mask[1, 4] == 1 and mask[6, 4] == 1 and mask[3, 4] == 0
    mask = _patched_explorer_cls().mask_for_lines(LineString([(0, 2), (9, 2)]),
                                                  np.zeros((10, 10), np.uint8))
    assert mask[2].sum() == 10


def test_box_layout_fills_the_box_footprints(items):
    """Every cell whose centre is inside a box footprint is 1 in the box's class channel;
    cells more than one cell away from every footprint of the channel are 0."""
    import shapely

    from holodrive.datasets import DETECTION_CLASSES
    from holodrive.utils.geometry import box_footprints

    checked_inside = 0
    for item in items:
        box_bev = item['inputs']['box_bev'].numpy()
        gt = item['data_samples'].gt_instances_3d
        groups = item['data_samples'].box_bev_groups
        assert box_bev.shape == (len(groups), 200, 200)
        grid = BEVGrid(resolution=0.5)
        xs, ys = grid.cell_centres()
        cx, cy = np.meshgrid(xs, ys)
        boxes = gt.bboxes_3d.tensor.numpy()[:, :7]
        feet = [shapely.Polygon(f) for f in box_footprints(boxes)]
        for ch, group in enumerate(groups):
            polys = [p for p, label in zip(feet, gt.labels_3d.tolist())
                     if DETECTION_CLASSES[label] in group]
            union = shapely.union_all(polys) if polys else shapely.Polygon()
            inside = shapely.contains_xy(union.buffer(-0.01), cx, cy)
            outside = ~shapely.contains_xy(union.buffer(grid.resolution), cx, cy)
            assert (box_bev[ch][inside] == 1).all(), group
            assert (box_bev[ch][outside] == 0).all(), group
            checked_inside += int(inside.sum())
    assert checked_inside > 20


def test_lidar_depth_maps_hit_plausible_pixels(val_set, items):
    item = items[0]
    depth = item['inputs']['depth_maps'].numpy()
    img = item['inputs']['img']
    assert depth.shape == (6,) + tuple(img.shape[2:])
    assert (depth >= 0).all() and depth.max() <= 80.0
    info = val_set.get_data_info(0)
    from holodrive.datasets.transforms import read_points_checked
    pts = read_points_checked(info['lidar_points']['lidar_path'], 5).reshape(-1, 5)
    lidar_z_ground = pts[:, 2] <= np.percentile(pts[:, 2], 20)  # lowest points: ground
    for v, cam in enumerate(CAMERA_NAMES):
        d = depth[v]
        assert (d > 0).sum() > 50, cam
        k = np.asarray(item['data_samples'].cam2img[v])[:3, :3]   # padded to 4x4
        lidar2cam = np.asarray(item['data_samples'].lidar2cam[v])
        xyz = pts[:, :3] @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]
        front = xyz[:, 2] > 0.1
        uv = xyz[front] @ k.T
        u, vv = np.round(uv[:, 0] / uv[:, 2]), np.round(uv[:, 1] / uv[:, 2])
        inside = (u >= 0) & (u < d.shape[1]) & (vv >= 0) & (vv < d.shape[0])
        # every depth pixel is the nearest point projecting there
        for uu, vvv, z in list(zip(u[inside], vv[inside], xyz[front][inside][:, 2]))[:200]:
            assert 0 < d[int(vvv), int(uu)] <= z + 1e-4
        # ground points (below the camera) land below the principal point
        ground = lidar_z_ground[front][inside]
        if ground.sum() > 20:
            assert (vv[inside][ground] > k[1, 2]).mean() > 0.9, cam


def test_sweeps_are_moved_exactly_into_the_keyframe(val_set, tmp_path):
    from mmdet3d.datasets.transforms import LoadPointsFromMultiSweeps
    from mmdet3d.structures import LiDARPoints

    from holodrive.datasets.transforms import LoadSweepsChecked, read_points_checked

    info = val_set.get_data_info(len(val_set) - 1)
    sweep = info['lidar_sweeps'][0]
    raw = read_points_checked(sweep['lidar_points']['lidar_path'], 5).reshape(-1, 5)
    key = read_points_checked(info['lidar_points']['lidar_path'], 5).reshape(-1, 5)

    def merged(transform, sweeps):
        results = dict(points=LiDARPoints(key.copy(), points_dim=5),
                       timestamp=info['timestamp'], lidar_sweeps=sweeps)
        return transform(results)['points'].tensor.numpy()[len(key):]

    ours = LoadSweepsChecked(sweeps_num=1, use_dim=[0, 1, 2, 3, 4])
    moved = merged(ours, [sweep])
    # reference: sweep LiDAR -> global (its own poses) -> key-frame LiDAR
    sweep_l2g = np.asarray(sweep['ego2global']) @ np.asarray(sweep['lidar_points']['lidar2ego'])
    ref = np.linalg.inv(_l2g(info)) @ sweep_l2g
    np.testing.assert_allclose(moved[:, :3], raw[:, :3] @ ref[:3, :3].T + ref[:3, 3],
                               atol=1e-3)
    np.testing.assert_allclose(moved[:, 4], info['timestamp'] - sweep['timestamp'])

    # a turning ego (sweep rotated 10 deg, 5 m behind): p' = R p + t exactly, while
    # mmdet3d's LoadPointsFromMultiSweeps adds R^T t instead of t
    yaw = np.radians(10)
    sensor2lidar = np.eye(4)
    sensor2lidar[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    sensor2lidar[:3, 3] = [0.0, -5.0, 0.0]
    turned = dict(sweep, sensor2lidar=sensor2lidar.tolist())
    turned['lidar_points'] = dict(sweep['lidar_points'],
                                  lidar2sensor=np.linalg.inv(sensor2lidar).tolist())
    expected = raw[:, :3] @ sensor2lidar[:3, :3].T + sensor2lidar[:3, 3]
    np.testing.assert_allclose(merged(ours, [turned])[:, :3], expected, atol=1e-3)
    without_s2l = dict(turned)
    del without_s2l['sensor2lidar']    # official mmdet3d infos: only lidar2sensor
    np.testing.assert_allclose(merged(ours, [without_s2l])[:, :3], expected, atol=1e-3)
    upstream = merged(LoadPointsFromMultiSweeps(sweeps_num=1, use_dim=[0, 1, 2, 3, 4]),
                      [turned])
    offset = np.linalg.norm(upstream[:, :3] - expected, axis=1)
    assert np.allclose(offset, 2 * 5.0 * np.sin(yaw / 2), atol=1e-3)   # 0.87 m


def test_dataset_pickles_small_and_survives_dataloader_workers(val_set):
    blob = pickle.dumps(val_set)
    assert len(blob) < 200_000   # the records stay on disk
    loader = torch.utils.data.DataLoader(val_set, batch_size=2, num_workers=2,
                                         collate_fn=lambda b: b)
    batches = list(loader)
    assert sum(len(b) for b in batches) == len(val_set)


# ------------------------------------------------------------------------ streaming
def _replicated_info_file(src_pkl, dst_pkl, n):
    """``n`` records cloned from ``src_pkl`` with fresh tokens (scenes of 40 frames).

    To keep the test fast the clones are trimmed to ~8 KB (6 cameras, 4 boxes, 1
    sweep, no per-camera 2D boxes); real nuScenes records are ~30-70 KB, which only
    makes the in-RAM alternative worse.
    """
    return replicate_info_file(src_pkl, dst_pkl, n, samples_per_scene=40, trim=True,
                               keep_records=True)


def _heap_growth(make):
    """Python-heap bytes still held after ``make()`` (tracemalloc; object kept alive)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    obj = make()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, obj


def test_streaming_heap_does_not_grow_with_the_number_of_records(tiny_world, tmp_path):
    src = tiny_world.infos['train']
    sizes = {}
    for n in (100, 10_000):
        pkl = tmp_path / f'infos_{n}.pkl'
        records = _replicated_info_file(src, pkl, n)
        open_info_stream(pkl)             # build the .stream once, outside the measure
        growth, ds = _heap_growth(lambda: NuScenesSceneDataset(
            str(tiny_world.root), str(pkl), adjacent_frames=(-1, 1)))
        sizes[n] = growth
        assert len(ds) == n
        rng = np.random.default_rng(n)
        for i in list(rng.integers(0, n, 20)) + [0, n - 1]:
            # byte-exact round trip (pickles compared: NaN velocities != themselves)
            assert pickle.dumps(ds._stream[int(i)]) == pickle.dumps(records[int(i)])
        info = ds.get_data_info(n - 1)
        assert info['token'] == f'tok{n - 1}'
        assert info['adjacent_frames'][0]['info']['token'] == f'tok{n - 2}'
        del ds, records
        gc.collect()
    # 100x the records: about the same heap (index arrays are memory-mapped)
    assert sizes[10_000] < sizes[100] + 256 * 1024, sizes
    assert sizes[10_000] < 2 * 1024 * 1024, sizes
    print(f'\nheap growth of the dataset object: 100 records {sizes[100] / 1024:.0f} KiB,'
          f' 10000 records {sizes[10_000] / 1024:.0f} KiB')


def test_stream_cache_is_rebuilt_when_the_info_file_changes(tiny_world, tmp_path):
    pkl = tmp_path / 'infos.pkl'
    _replicated_info_file(tiny_world.infos['train'], pkl, 5)
    first = open_info_stream(pkl)
    assert len(first) == 5 and first.path == str(tmp_path / 'infos.stream')
    _replicated_info_file(tiny_world.infos['train'], pkl, 7)
    second = open_info_stream(pkl)
    assert len(second) == 7 and second[6]['token'] == 'tok6'


def test_subsets_keep_file_rows_and_class_balancing_works(tiny_world):
    from mmdet3d.datasets import CBGSDataset

    root = str(tiny_world.root)
    ds = NuScenesSceneDataset(root, 'nuscenes_infos_val.pkl', indices=[3, 1])
    assert len(ds) == 2
    # sample_idx stays the row in the info file: what NuScenesMetric looks up
    assert [ds.get_data_info(i)['sample_idx'] for i in range(2)] == [3, 1]
    sub = ds.get_subset([1])
    assert len(sub) == 1 and sub.get_data_info(0)['sample_idx'] == 1 and len(ds) == 2
    balanced = CBGSDataset(dataset=NuScenesSceneDataset(root, 'nuscenes_infos_train.pkl'))
    assert len(balanced) >= len(balanced.dataset)
    assert balanced.get_data_info(0)['token']


# ------------------------------------------------------------------ ego trajectories
def test_items_carry_ego_trajectories_as_arrays(tiny_world, val_set):
    with open(tiny_world.infos['val'], 'rb') as f:
        records = pickle.load(f)['data_list']   # written by the converter fixture
    for i in range(len(val_set)):
        info = val_set.get_data_info(i)
        for key, shape, dtype in (('ego_fut_traj', (6, 2), np.float32),
                                  ('ego_fut_valid', (6,), bool),
                                  ('ego_fut_yaw', (6,), np.float32),
                                  ('ego_past_traj', (4, 2), np.float32),
                                  ('ego_past_valid', (4,), bool)):
            assert isinstance(info[key], np.ndarray) and info[key].shape == shape, key
            assert info[key].dtype == dtype, key
            np.testing.assert_allclose(info[key], np.asarray(records[i][key], dtype),
                                       atol=1e-5)


def test_old_info_files_without_trajectories_get_zeros(tiny_world, tmp_path):
    with open(tiny_world.infos['val'], 'rb') as f:
        data = pickle.load(f)
    for rec in data['data_list']:
        for key in ('ego_fut_traj', 'ego_fut_valid', 'ego_fut_yaw', 'ego_past_traj',
                    'ego_past_valid'):
            del rec[key]
    for key in ('ego_fut_steps', 'ego_past_steps'):
        del data['metainfo'][key]
    pkl = tmp_path / 'old_infos.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(data, f)
    info = NuScenesSceneDataset(str(tiny_world.root), str(pkl)).get_data_info(1)
    assert info['ego_fut_traj'].shape == (6, 2) and not info['ego_fut_traj'].any()
    assert info['ego_past_traj'].shape == (4, 2) and not info['ego_past_valid'].any()
    assert not info['ego_fut_valid'].any() and info['ego_fut_yaw'].shape == (6,)


# ------------------------------------------------------------------ one cache build
_CHILD = r"""
import os, sys, time
from pathlib import Path
mode, pkl, log, ready_dir, rank = sys.argv[1:6]
from holodrive.datasets import streaming
original = streaming._build_info_stream
def slow_build(pkl_path, stream_path):
    with open(log, 'a') as f:
        f.write(f'build {rank}\n')
    time.sleep(1.5)               # widen the race window
    return original(pkl_path, stream_path)
streaming._build_info_stream = slow_build
if mode == 'dist':
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method='file://' + ready_dir + '/rdv',
                            rank=int(rank), world_size=2)
else:                             # start both opens at the same moment
    Path(ready_dir, rank).touch()
    while len([p for p in os.listdir(ready_dir) if p in ('0', '1')]) < 2:
        time.sleep(0.01)
stream = streaming.open_info_stream(pkl)
print('records', len(stream), stream[len(stream) - 1]['token'])
"""


@pytest.mark.parametrize('mode', ['flock', 'dist'])
def test_stream_cache_is_built_once_by_concurrent_processes(tiny_world, tmp_path, mode):
    import os
    import subprocess
    import sys

    pkl = tmp_path / 'infos.pkl'
    _replicated_info_file(tiny_world.infos['train'], pkl, 50)
    log, ready = tmp_path / 'builds.log', tmp_path / 'ready'
    ready.mkdir()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    # a LOCAL_RANK in this environment (a launcher's) must not reach the children: each must
    # take its rank from its own process group
    env.pop('LOCAL_RANK', None)
    procs = [subprocess.Popen([sys.executable, '-c', _CHILD, mode, str(pkl), str(log),
                               str(ready), str(rank)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for rank in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert 'records 50 tok49' in out
    builds = log.read_text().splitlines()
    assert len(builds) == 1, builds
    if mode == 'dist':
        assert builds == ['build 0']      # rank 0 builds, rank 1 waits at the barrier
    assert (tmp_path / 'infos.stream').is_file()
