"""Captions from annotations / description / ego motion, and the camera ring from calibration."""
import numpy as np
import pytest
import torch
from mmdet3d.structures import LiDARInstance3DBoxes

from holodrive.datasets.cameras import (CAMERA_RING, camera_ring_order, camera_yaw,
                                        ring_adjacency, ring_permutation)
from holodrive.datasets.transforms.captions import (GenerateCaption, manoeuvre,
                                                    parse_description)
from holodrive.utils.geometry import pose_matrix, rot_to_quat


def test_parse_description_synthetic_and_real():
    d = parse_description('dusk, rain, wet road, two-lane road, singapore-onenorth')
    assert d == dict(time='dusk', weather='rain', wet=True, road='two-lane road')
    d = parse_description('Night, after rain, parked cars, intersection, peds')
    assert d['time'] == 'night' and d['weather'] == 'rain' and d['road'] == 'intersection'
    assert parse_description('') == dict(time=None, weather=None, wet=False, road=None)


def _boxes(rows):
    return LiDARInstance3DBoxes(torch.tensor(rows, dtype=torch.float32).reshape(-1, 7))


def test_caption_counts_positions_attributes_and_manoeuvre():
    # three parked cars on the right, a moving bus ahead, a pedestrian far away (ignored)
    boxes = _boxes([[5, -6, 0, 4.5, 2, 1.6, 0], [10, -6, 0, 4.5, 2, 1.6, 0],
                    [15, -7, 0, 4.5, 2, 1.6, 0], [20, 0.5, 0, 11, 3, 3.4, 0],
                    [45, 30, 0, 0.7, 0.7, 1.8, 0]])
    labels = np.array([0, 0, 0, 3, 7])
    attrs = np.array([6, 6, 6, 5, 2])          # vehicle.parked x3, vehicle.moving, ped.moving
    # a left turn: heading ends 0.6 rad to the left
    yaw = np.linspace(0.1, 0.6, 6)
    traj = np.cumsum(np.stack([np.cos(yaw), np.sin(yaw)], 1) * 3.0, axis=0)
    results = dict(scene_description='dusk, rain, wet road, two-lane road, boston-seaport',
                   gt_bboxes_3d=boxes, gt_labels_3d=labels, attr_labels=attrs,
                   ego_fut_traj=traj.astype(np.float32), ego_fut_valid=np.ones(6, bool),
                   ego_fut_yaw=yaw)
    caption = GenerateCaption()(results)['caption']
    assert caption == ('a wet two-lane road at dusk in the rain, three parked cars on the '
                       'right, a moving bus ahead, ego turning left')
    # the same scene with the boxes in a nuScenes LiDAR frame (x right, y forward; the LiDAR
    # is yawed -90 deg in the ego frame): the positions are still relative to the ego car
    ego_xy = boxes.tensor[:, :2].numpy()
    lidar_rows = boxes.tensor.clone()
    lidar_rows[:, 0], lidar_rows[:, 1] = torch.from_numpy(-ego_xy[:, 1]), torch.from_numpy(
        ego_xy[:, 0])
    lidar2ego = np.eye(4)
    lidar2ego[:2, :2] = [[0.0, 1.0], [-1.0, 0.0]]
    results.update(gt_bboxes_3d=_boxes(lidar_rows.tolist()),
                   lidar_points=dict(lidar2ego=lidar2ego.tolist()))
    assert GenerateCaption()(results)['caption'] == caption


def test_manoeuvres():
    straight = np.stack([np.arange(1, 7) * 4.0, np.zeros(6)], 1)
    assert manoeuvre(straight, np.ones(6, bool)) == 'ego going straight'
    assert manoeuvre(straight * 0.01, np.ones(6, bool)) == 'ego stopped'
    right = straight.copy()
    right[:, 1] = -0.01 * right[:, 0] ** 2          # heading -0.45 rad at the end
    assert manoeuvre(right, np.ones(6, bool)) == 'ego turning right'
    faster = np.stack([np.cumsum(np.linspace(1, 6, 6)), np.zeros(6)], 1)
    assert manoeuvre(faster, np.ones(6, bool)) == 'ego accelerating'
    assert manoeuvre(straight, np.zeros(6, bool)) is None


def _rig(yaw_offset_deg=0.0):
    from holodrive.datasets.synthetic.sensors import CAMERA_RIG, camera_rotation
    out = {}
    for name, (t, yaw, _) in CAMERA_RIG.items():
        rot = camera_rotation(np.radians(yaw + yaw_offset_deg))
        out[name] = pose_matrix(rot_to_quat(rot), t)
    return out


def test_ring_order_from_calibration(tiny_world):
    import mmengine
    info = mmengine.load(str(tiny_world.infos['train']))['data_list'][0]
    cam2ego = {n: np.asarray(v['cam2ego']) for n, v in info['images'].items()}
    assert camera_ring_order(cam2ego) == CAMERA_RING
    assert abs(np.degrees(camera_yaw(cam2ego['CAM_FRONT_LEFT'])) - 55) < 2
    # a rig turned by -20 degrees keeps its ring; turned by +20 the front camera is the
    # first left of straight ahead: the same cycle, started there
    assert camera_ring_order(_rig(-20.0)) == CAMERA_RING
    assert camera_ring_order(_rig(20.0)) == CAMERA_RING[1:] + CAMERA_RING[:1]
    renamed = {f'cam{i}': m for i, m in enumerate(_rig().values())}
    assert len(camera_ring_order(renamed)) == 6
    perm = ring_permutation(list(cam2ego), CAMERA_RING)
    assert [list(cam2ego)[i] for i in perm] == list(CAMERA_RING)
    adj = ring_adjacency(6)
    assert adj.tolist() == [[5, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 0]]
    with pytest.raises(KeyError, match='CAM_BACK'):
        ring_permutation(['CAM_FRONT'], CAMERA_RING)
