"""Info records of one nuScenes scene, computed with vectorised numpy.

:class:`SceneRecordBuilder` produces exactly the records of the devkit-object path it
replaces (``nusc.get_box`` / ``Box.rotate`` / ``nusc.box_velocity`` per annotation and
mmdet3d's ``get_nuscenes_2d_boxes`` per camera), but builds every annotation's pose,
corners and projection for a whole sample in a few array operations, caches the
sensor poses of a scene and only calls shapely for the 2D boxes that cross the image
border. Field list and conventions: :mod:`holodrive.datasets.nuscenes_converter` and
``docs/data_pipeline.md``.
"""
import os.path as osp
import warnings
from typing import Dict, List

import numpy as np

from holodrive.utils.geometry import pose_matrix
from .constants import CAMERA_NAMES, DETECTION_CLASSES, LIDAR_NAME
from .errors import NuScenesTableError

#: mmdet3d's attribute order (``mmdet3d.datasets.convert_utils.nus_attributes``).
NUS_ATTRIBUTES = ('cycle.with_rider', 'cycle.without_rider',
                  'pedestrian.moving', 'pedestrian.standing',
                  'pedestrian.sitting_lying_down', 'vehicle.moving',
                  'vehicle.parked', 'vehicle.stopped', 'None')
#: the visibility filter the converter always passed to ``get_nuscenes_2d_boxes``
CAM_VISIBILITIES = frozenset(['', '1', '2', '3', '4'])
#: devkit ``box_velocity``'s default ``max_time_diff`` (s)
MAX_VELOCITY_DT = 1.5
#: box corners (x along l, y along w, z along h) in the devkit's ``Box.corners`` order
_CORNERS = np.array([[1, 1, 1], [1, -1, 1], [1, -1, -1], [1, 1, -1],
                     [-1, 1, 1], [-1, -1, 1], [-1, -1, -1], [-1, 1, -1]], np.float64) / 2


def _tolist(mat) -> list:
    return np.asarray(mat, dtype=np.float64).tolist()


def rigid_inverse(mat: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 rigid transform (``R^T, -R^T t``)."""
    out = np.eye(4)
    out[:3, :3] = mat[:3, :3].T
    out[:3, 3] = -mat[:3, :3].T @ mat[:3, 3]
    return out


# ----------------------------------------------------------------- quaternions (w, x, y, z)
def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (broadcasting over leading axes)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def qinv(q: np.ndarray) -> np.ndarray:
    """pyquaternion's ``inverse``: conjugate over the squared norm."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0]) / np.sum(q * q, axis=-1, keepdims=True)


def qmat(q: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices of (normalised) quaternions."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def qyaw(q: np.ndarray) -> np.ndarray:
    """pyquaternion's ``yaw_pitch_roll[0]`` (normalised first)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.arctan2(2 * (w * z - x * y), 1 - 2 * (y * y + z * z))


# ----------------------------------------------------------------- the builder
class SceneRecordBuilder:
    """Build the info records of scenes of a loaded ``NuScenes``.

    Args:
        nusc: the loaded devkit database.
        max_sweeps: previous LiDAR sweeps per keyframe.
        with_cam_instances: also compute the per-camera 2D / mono-3D boxes.
        max_cam_sweeps: previous non-keyframe camera sample_data per camera (0: none).
        fut_steps / past_steps: ego trajectory horizons in keyframes (2 Hz).
    """

    def __init__(self, nusc, max_sweeps: int = 10, with_cam_instances: bool = True,
                 max_cam_sweeps: int = 0, fut_steps: int = 6, past_steps: int = 4):
        self.nusc = nusc
        self.max_sweeps = int(max_sweeps)
        self.with_cam_instances = with_cam_instances
        self.max_cam_sweeps = int(max_cam_sweeps)
        self.fut_steps, self.past_steps = int(fut_steps), int(past_steps)
        self._poses: Dict[str, tuple] = {}
        self._category: Dict[str, str] = {}

    # ------------------------------------------------------------ lookups
    def sensor_poses(self, sd_token: str):
        """(sample_data, calibrated_sensor, sensor2ego, ego2global), cached per scene."""
        hit = self._poses.get(sd_token)
        if hit is None:
            nusc = self.nusc
            sd = nusc.get('sample_data', sd_token)
            cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
            pose = nusc.get('ego_pose', sd['ego_pose_token'])
            hit = (sd, cs, pose_matrix(cs['rotation'], cs['translation']),
                   pose_matrix(pose['rotation'], pose['translation']), pose)
            self._poses[sd_token] = hit
        return hit

    def _category_name(self, instance_token: str) -> str:
        name = self._category.get(instance_token)
        if name is None:
            inst = self.nusc.get('instance', instance_token)
            name = self.nusc.get('category', inst['category_token'])['name']
            self._category[instance_token] = name
        return name

    def _velocity(self, ann: dict) -> np.ndarray:
        """The devkit's ``box_velocity`` (global frame, NaN when not estimable)."""
        nusc = self.nusc
        has_prev, has_next = ann['prev'] != '', ann['next'] != ''
        if not has_prev and not has_next:
            return np.full(3, np.nan)
        first = nusc.get('sample_annotation', ann['prev']) if has_prev else ann
        last = nusc.get('sample_annotation', ann['next']) if has_next else ann
        dt = 1e-6 * nusc.get('sample', last['sample_token'])['timestamp'] - \
            1e-6 * nusc.get('sample', first['sample_token'])['timestamp']
        limit = MAX_VELOCITY_DT * (2 if has_prev and has_next else 1)
        if dt > limit:
            return np.full(3, np.nan)
        return (np.array(last['translation']) - np.array(first['translation'])) / dt

    # ------------------------------------------------------------ scenes
    def scene(self, scene: dict) -> List[dict]:
        """All keyframes of one scene in temporal order, with scene-level fields."""
        self._poses.clear()
        infos, token = [], scene['first_sample_token']
        while token:
            infos.append(self.sample(token))
            token = infos[-1]['next']
        for i, info in enumerate(infos):
            info['frame_idx'] = i
            info['num_frames'] = len(infos)
        fill_ego_motion(infos)
        fill_ego_trajectories(infos, self.fut_steps, self.past_steps)
        self._poses.clear()
        return infos

    def sample(self, sample_token: str) -> dict:
        """One keyframe as an mmdet3d v2 info record (scene-level fields: :meth:`scene`)."""
        nusc = self.nusc
        sample = nusc.get('sample', sample_token)
        if LIDAR_NAME not in sample['data']:
            raise NuScenesTableError(
                f'sample {sample_token!r} has no {LIDAR_NAME} sample_data',
                osp.join(nusc.table_root, 'sample_data.json'),
                f'every key-frame sample needs a {LIDAR_NAME} key-frame sample_data record')
        lidar_sd, lidar_cs, lidar2ego, ego2global, ego_pose = \
            self.sensor_poses(sample['data'][LIDAR_NAME])
        global2lidar = rigid_inverse(ego2global @ lidar2ego)
        scene = nusc.get('scene', sample['scene_token'])
        log = nusc.get('log', scene['log_token'])
        anns = self._annotations(sample)
        images, cam_ctx = self._camera_infos(sample, global2lidar)
        info = dict(
            token=sample_token,
            timestamp=sample['timestamp'] / 1e6,
            ego2global=_tolist(ego2global),
            lidar_points=dict(
                num_pts_feats=5, lidar_path=osp.basename(lidar_sd['filename']),
                lidar2ego=_tolist(lidar2ego), sample_data_token=lidar_sd['token'],
                timestamp=lidar_sd['timestamp'] / 1e6),
            lidar_sweeps=self._lidar_sweeps(lidar_sd, global2lidar),
            images=images,
            instances=self._instances(anns, ego_pose, lidar_cs),
            scene_token=scene['token'], scene_name=scene['name'],
            scene_description=scene.get('description', ''),
            location=log['location'], log_token=log['token'],
            prev=sample['prev'], next=sample['next'])
        if not info['lidar_sweeps']:
            del info['lidar_sweeps']  # as mmdet3d: absent key -> pad_empty_sweeps applies
        if self.max_cam_sweeps > 0:
            info['cam_sweeps'] = {cam: self._cam_sweeps(sample['data'][cam], global2lidar)
                                  for cam in images}
        if self.with_cam_instances and images:
            info['cam_instances'] = {cam: self._cam_instances(anns, img, *cam_ctx[cam])
                                     for cam, img in images.items()}
        return info

    # ------------------------------------------------------------ sensors
    def _lidar_sweeps(self, lidar_sd: dict, global2lidar: np.ndarray) -> List[dict]:
        """Previous LiDAR sweeps, newest first (mmdet3d's ``lidar_sweeps`` records).

        ``lidar2sensor`` is the inverse of the sweep->key-frame-LiDAR transform, as
        mmdet3d's ``update_infos_to_v2`` writes it; ``sensor2lidar`` the transform itself.
        """
        sweeps, token = [], lidar_sd['prev']
        while token and len(sweeps) < self.max_sweeps:
            sd, _, sweep2ego, ego2global, _ = self.sensor_poses(token)
            sensor2lidar = global2lidar @ ego2global @ sweep2ego
            sweeps.append(dict(
                lidar_points=dict(
                    lidar_path=sd['filename'], num_pts_feats=5,
                    lidar2ego=_tolist(sweep2ego),
                    lidar2sensor=_tolist(rigid_inverse(sensor2lidar))),
                sensor2lidar=_tolist(sensor2lidar),
                ego2global=_tolist(ego2global),
                timestamp=sd['timestamp'] / 1e6,
                sample_data_token=sd['token'],
                is_key_frame=bool(sd['is_key_frame'])))
            token = sd['prev']
        return sweeps

    def _camera_record(self, sd_token: str, global2lidar: np.ndarray) -> dict:
        sd, cs, cam2ego, ego2global, pose = self.sensor_poses(sd_token)
        cam2img = np.asarray(cs['camera_intrinsic'], dtype=np.float64)
        lidar2cam = rigid_inverse(global2lidar @ ego2global @ cam2ego)
        viewpad = np.eye(4)
        viewpad[:3, :3] = cam2img
        rec = dict(
            img_path=osp.basename(sd['filename']),
            height=int(sd['height']), width=int(sd['width']),
            cam2img=_tolist(cam2img), cam2ego=_tolist(cam2ego),
            lidar2cam=_tolist(lidar2cam), lidar2img=_tolist(viewpad @ lidar2cam),
            ego2global=_tolist(ego2global),
            sample_data_token=sd['token'], timestamp=sd['timestamp'] / 1e6)
        return rec, (sd, cs, pose)

    def _camera_infos(self, sample: dict, global2lidar: np.ndarray):
        """({cam: image record}, {cam: (calibrated_sensor, ego_pose)})."""
        images, ctx = {}, {}
        for cam in CAMERA_NAMES:
            if cam in sample['data']:
                images[cam], (_, cs, pose) = self._camera_record(sample['data'][cam],
                                                                 global2lidar)
                ctx[cam] = (cs, pose)
        return images, ctx

    def _cam_sweeps(self, cam_sd_token: str, global2lidar: np.ndarray) -> List[dict]:
        """Non-keyframe camera sample_data before this keyframe, newest first."""
        sweeps = []
        token = self.nusc.get('sample_data', cam_sd_token)['prev']
        while token and len(sweeps) < self.max_cam_sweeps:
            sd = self.nusc.get('sample_data', token)
            if sd['is_key_frame']:
                break
            rec, _ = self._camera_record(token, global2lidar)
            rec['img_path'] = sd['filename']          # root-relative (sweeps/CAM_*/...)
            sweeps.append(rec)
            token = sd['prev']
        return sweeps

    # ------------------------------------------------------------ annotations
    def _annotations(self, sample: dict) -> dict:
        """Arrays of all annotations of a sample (global frame)."""
        nusc = self.nusc
        recs = [nusc.get('sample_annotation', t) for t in sample['anns']]
        n = len(recs)
        return dict(
            recs=recs,
            t=np.array([r['translation'] for r in recs], np.float64).reshape(n, 3),
            q=np.array([r['rotation'] for r in recs], np.float64).reshape(n, 4),
            wlh=np.array([r['size'] for r in recs], np.float64).reshape(n, 3),
            vel=np.array([self._velocity(r) for r in recs], np.float64).reshape(n, 3),
            category=[self._category_name(r['instance_token']) for r in recs],
            attr=[self._attribute(r) for r in recs])

    def _attribute(self, ann: dict) -> str:
        tokens = ann['attribute_tokens']
        return self.nusc.get('attribute', tokens[0])['name'] if tokens else 'None'

    @staticmethod
    def _to_frame(anns: dict, poses) -> tuple:
        """Centres, orientations and rotation (global -> frame) through ``poses``:
        a list of (translation, rotation) records applied as the devkit's
        ``translate(-t)`` then ``rotate(q.inverse)``."""
        centre, quat = anns['t'].copy(), anns['q'].copy()
        rot = np.eye(3)
        for rec in poses:
            q_inv = qinv(np.asarray(rec['rotation'], np.float64))
            r_inv = qmat(q_inv)
            centre = (centre - np.asarray(rec['translation'])) @ r_inv.T
            quat = qmul(np.broadcast_to(q_inv, quat.shape), quat)
            rot = r_inv @ rot
        return centre, quat, rot

    def _instances(self, anns: dict, ego_pose: dict, lidar_cs: dict) -> List[dict]:
        from nuscenes.eval.detection.utils import category_to_detection_name

        centre, quat, rot = self._to_frame(anns, (ego_pose, lidar_cs))
        yaw = qyaw(quat)
        vel = anns['vel'] @ rot.T
        nusc = self.nusc
        instances = []
        for i, ann in enumerate(anns['recs']):
            w, l, h = anns['wlh'][i]
            category = anns['category'][i]
            det_name = category_to_detection_name(category)
            label = DETECTION_CLASSES.index(det_name) if det_name in DETECTION_CLASSES else -1
            attr = anns['attr'][i] if anns['attr'][i] in NUS_ATTRIBUTES else 'None'
            num_lidar, num_radar = int(ann['num_lidar_pts']), int(ann['num_radar_pts'])
            instances.append(dict(
                bbox_3d=[float(v) for v in centre[i]] + [float(l), float(w), float(h),
                                                         float(yaw[i])],
                bbox_label=label, bbox_label_3d=label,
                velocity=[float(vel[i, 0]), float(vel[i, 1])],
                num_lidar_pts=num_lidar, num_radar_pts=num_radar,
                bbox_3d_isvalid=bool(num_lidar + num_radar > 0),
                attr_label=NUS_ATTRIBUTES.index(attr),
                instance_token=ann['instance_token'],
                instance_id=nusc.getind('instance', ann['instance_token']),
                ann_token=ann['token'], category_name=category,
                visibility=str(ann['visibility_token'])))
        return instances

    def _cam_instances(self, anns: dict, image: dict, cs: dict, pose: dict) -> List[dict]:
        """mmdet3d's ``get_nuscenes_2d_boxes`` for one camera, vectorised, with the 2D
        box clipped to the camera's real image size (mmdet3d assumes 1600x900)."""
        from mmdet3d.datasets.convert_utils import (NuScenesNameMapping, nus_categories,
                                                    post_process_coords)

        if not anns['recs']:
            return []
        size = (image['width'], image['height'])
        k = np.asarray(cs['camera_intrinsic'], np.float64)
        centre, quat, rot = self._to_frame(anns, (pose, cs))
        l_w_h = anns['wlh'][:, [1, 0, 2]]
        corners = np.einsum('nij,nkj->nki', qmat(quat), _CORNERS[None] * l_w_h[:, None]) \
            + centre[:, None]                                       # (N, 8, 3)
        yaw = qyaw(quat)
        vel_xy = anns['vel'].copy()
        vel_xy[:, 2] = 0.0
        cam_vel = vel_xy @ rot.T
        out = []
        for i, ann in enumerate(anns['recs']):
            if ann['visibility_token'] not in CAM_VISIBILITIES:
                continue
            mapped = NuScenesNameMapping.get(anns['category'][i])
            if mapped is None:
                continue
            pts = corners[i][corners[i][:, 2] > 0]
            if len(pts) == 0:
                continue
            uv = pts @ k.T
            uv = uv[:, :2] / uv[:, 2:3]
            lo, hi = uv.min(0), uv.max(0)
            if hi[0] < 0 or hi[1] < 0 or lo[0] > size[0] or lo[1] > size[1]:
                continue                                # hull misses the canvas
            if len(pts) == 8 and lo.min() >= 0 and hi[0] <= size[0] and hi[1] <= size[1]:
                coords = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
            else:                                       # crosses the border: shapely
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    coords = post_process_coords(uv.tolist(), imsize=size)
                if coords is None:
                    continue
            c = centre[i]
            proj = k @ c
            depth = float(proj[2])
            if depth <= 0:
                continue
            label = nus_categories.index(mapped)
            out.append(dict(
                bbox_label=label, bbox_label_3d=label, bbox=[float(v) for v in coords],
                bbox_3d_isvalid=True,
                bbox_3d=[float(v) for v in c] + [float(l_w_h[i, 0]), float(l_w_h[i, 2]),
                                                 float(l_w_h[i, 1]), -float(yaw[i])],
                velocity=[float(cam_vel[i, 0]), float(cam_vel[i, 2])],
                center_2d=[float(proj[0] / depth), float(proj[1] / depth)], depth=depth,
                attr_label=NUS_ATTRIBUTES.index(anns['attr'][i])))
        return out


# ----------------------------------------------------------------- scene-level fields
def _yaw(mat: np.ndarray) -> float:
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def fill_ego_motion(infos: List[dict]) -> None:
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
        dyaw = _yaw(pb) - _yaw(pa)
        info['ego_yaw_rate'] = float(np.arctan2(np.sin(dyaw), np.cos(dyaw)) / dt)


def fill_ego_trajectories(infos: List[dict], fut_steps: int = 6, past_steps: int = 4) -> None:
    """Future / past ego waypoints of each keyframe in its own ego frame.

    ``ego_fut_traj[k - 1]`` = (x, y) of the ego at keyframe ``t + k`` (k = 1..fut_steps)
    in the ego frame at ``t`` (x forward, y left, metres); ``ego_fut_yaw[k - 1]`` its
    heading change (rad); ``ego_past_traj[k - 1]`` the ego at ``t - k``. ``*_valid``
    is False past the scene ends, where waypoints and yaws are 0.
    """
    poses = [np.asarray(info['ego2global'], np.float64) for info in infos]
    n = len(poses)
    for i, info in enumerate(infos):
        cur_inv = rigid_inverse(poses[i])
        for name, steps, sign in (('fut', fut_steps, 1), ('past', past_steps, -1)):
            traj = np.zeros((steps, 2))
            yaw = np.zeros(steps)
            valid = np.zeros(steps, bool)
            for k in range(1, steps + 1):
                j = i + sign * k
                if 0 <= j < n:
                    rel = cur_inv @ poses[j]
                    traj[k - 1] = rel[:2, 3]
                    yaw[k - 1] = _yaw(rel)
                    valid[k - 1] = True
            info[f'ego_{name}_traj'] = traj.tolist()
            info[f'ego_{name}_valid'] = valid.tolist()
            if name == 'fut':
                info['ego_fut_yaw'] = yaw.tolist()
