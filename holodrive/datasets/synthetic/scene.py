"""Simulation and sensor rendering of one scene; writes its sensor files and returns its
table records (small), map geometry and 2D-export entries."""
import io
import json
import time
import warnings
import math
import os
from dataclasses import dataclass

import numpy as np
from nuscenes.utils.data_classes import Box, LidarPointCloud
from nuscenes.utils.geometry_utils import points_in_box
from PIL import Image
from pyquaternion import Quaternion

from ..constants import CAMERA_NAMES, DETECTION_CLASSES, LIDAR_NAME
from . import render as R
from .meshes import make_mesh, shape_of
from .raycast import InstantScene, MeshSet
from .agents import make_agents
from .export_2d import ADE_SPLIT, ade_label, instance_annotations
from .geometry import TokenGen, quat_to_rot, yaw_to_quat
from .layout import make_layout
from .map_expansion import drivable_tile, scene_map_records
from .nuscenes_writer import DETECTION_MAPPING
from .sensors import LIDAR_PERIOD, LIDAR_YAW_DEG, make_rig
from .weather import describe, sample_environment

#: Format of the generated world; bumped whenever the generator's output changes meaning
#: (2: triangle-mesh agents ray cast with Embree, camera times offset along the LiDAR sweep,
#: weather / time of day, time-zone independent timestamps). Recorded in
#: ``synthetic_aux/world.json`` and in each scene's ``synthetic_aux/scenes/<name>.json``.
WORLD_FORMAT_VERSION = 3

#: DetectionEval class ranges (detection_cvpr_2019), used to guarantee evaluable GT
EVAL_RANGE = {'car': 50, 'truck': 50, 'bus': 50, 'trailer': 50, 'construction_vehicle': 50,
              'pedestrian': 40, 'motorcycle': 40, 'bicycle': 40, 'traffic_cone': 30, 'barrier': 30}
ANNOTATION_RADIUS = 75.0  # >= LiDAR range: every object the LiDAR can hit is annotated
_MATERIAL = {'vehicle.car': R.M_CAR, 'vehicle.emergency.police': R.M_CAR, 'vehicle.truck': R.M_TRUCK,
             'vehicle.bus.rigid': R.M_BUS, 'vehicle.trailer': R.M_WALL, 'vehicle.construction': R.M_TRUCK,
             'vehicle.motorcycle': R.M_CYCLE, 'vehicle.bicycle': R.M_CYCLE,
             'movable_object.trafficcone': R.M_CONE, 'movable_object.barrier': R.M_BARRIER,
             'movable_object.pushable_pullable': R.M_BIN}
_SCENERY_MATERIAL = {'building': R.M_BUILDING, 'wall': R.M_WALL, 'trunk': R.M_TRUNK, 'crown': R.M_CROWN}
_SCENERY_SEM = {'building': 5, 'vegetation': 6}


@dataclass
class SceneSpec:
    root: str
    seed: int
    index: int
    name: str
    location: str
    center: tuple
    region: float
    samples: int
    image_size: tuple
    lidar_sweeps: int
    camera_sweeps: int
    export_2d: bool
    split2d: str
    start_us: int
    log_name: str
    vocab: dict                # table -> list of records (category, attribute, sensor)
    save_aux: bool = True


def _material(cat):
    return _MATERIAL.get(cat, R.M_PED if cat.startswith('human') else R.M_CAR)


class _World:
    """Scenery + agents -> per-instant box arrays. Agent states are precomputed at ``times``."""

    def __init__(self, layout, agents, times):
        self.layout = layout
        self.agents = agents
        sc = layout.scenery
        self.s_centers = np.array([s['center'] for s in sc]).reshape(-1, 3)
        self.s_sizes = np.array([s['size'] for s in sc]).reshape(-1, 3)
        self.s_yaws = np.array([s['yaw'] for s in sc])
        self.s_colors = np.array([s['color'] for s in sc]).reshape(-1, 3)
        self.s_sem = np.array([_SCENERY_SEM[s['sem']] for s in sc], np.uint8)
        self.s_mat = np.array([_SCENERY_MATERIAL[s['kind']] for s in sc])
        self.a_sizes = np.array([a.size for a in agents]).reshape(-1, 3)
        self.a_colors = np.array([a.color for a in agents]).reshape(-1, 3)
        self.a_sem = np.array([ade_label(DETECTION_MAPPING.get(a.category)) for a in agents], np.uint8)
        self.a_mat = np.array([_material(a.category) for a in agents])
        self.n_scenery = len(sc)
        # meshes: static scenery merged once, one box-frame mesh per agent (placed per instant)
        self.static_mesh = MeshSet.from_meshes([make_mesh(shape_of(s['kind']), s['size']) for s in sc],
                                               self.s_centers, self.s_yaws, range(len(sc)))
        self.a_meshes = [make_mesh(shape_of(a.category), a.size, rider=a.rider) for a in agents]
        self._instant = (None, None)
        times = np.asarray(times, np.float64)
        self.col = {float(t): j for j, t in enumerate(times)}
        states = [a.state(times) for a in agents]
        self.tab = [np.array([st[k] for st in states]).reshape(len(agents), len(times)) for k in range(5)]

    def shadow(self, t, sun):
        """Ground shadow raster at ``t`` (static scenery drawn once, agents per instant)."""
        if getattr(self, '_static_shadow', None) is None:
            h, w = self.layout.raster.shape
            self._static_shadow = R.draw_shadows(Image.new('L', (w, h), 0), self.layout, self.s_centers,
                                                 self.s_sizes, self.s_yaws, sun)
        img = self._static_shadow.copy()
        x, y, yaw, _, ex = self.state(t)
        sel = np.nonzero(ex.astype(bool))[0]
        centers = np.stack([x[sel], y[sel], self.a_sizes[sel, 2] / 2], 1)
        return np.asarray(R.draw_shadows(img, self.layout, centers, self.a_sizes[sel], yaw[sel], sun))

    def state(self, t):
        """x, y, yaw, speed, exists of all agents at ``t`` (one of the precomputed times)."""
        j = self.col[float(t)]
        return tuple(tab[:, j] for tab in self.tab)

    def boxes(self, t):
        """Boxes at ``t`` and the agent index of each box (-1 for scenery)."""
        x, y, yaw, _, ex = self.state(t)
        sel = np.nonzero(ex.astype(bool))[0]
        centers = np.concatenate([self.s_centers, np.stack([x[sel], y[sel], self.a_sizes[sel, 2] / 2], 1)])
        boxes = R.Boxes(centers, np.concatenate([self.s_sizes, self.a_sizes[sel]]),
                        np.concatenate([self.s_yaws, yaw[sel]]), np.concatenate([self.s_colors, self.a_colors[sel]]),
                        np.concatenate([self.s_sem, self.a_sem[sel]]),
                        np.concatenate([np.zeros(self.n_scenery, np.int32), sel + 1]),
                        np.concatenate([self.s_mat, self.a_mat[sel]]))
        owner = np.concatenate([np.full(self.n_scenery, -1), sel])
        return boxes, owner

    def instant(self, t):
        """Boxes, owners and the ray-casting scene (scenery + agents) at ``t`` (last one cached)."""
        if self._instant[0] == float(t):
            return self._instant[1]
        boxes, owner = self.boxes(t)
        n = self.n_scenery
        sel = owner[n:]
        dyn = MeshSet.from_meshes([self.a_meshes[i] for i in sel], boxes.centers[n:], boxes.yaws[n:],
                                  range(n, n + len(sel)))
        out = (boxes, owner, InstantScene(self.static_mesh, dyn))
        self._instant = (float(t), out)
        return out


def _sensor_pose(ego_xyyaw, calib):
    """Global rotation / translation of a sensor from the (written) ego pose and calibration."""
    eq = yaw_to_quat(ego_xyyaw[2])
    et = [float(ego_xyyaw[0]), float(ego_xyyaw[1]), 0.0]
    er = quat_to_rot(eq)
    sr = quat_to_rot(calib['rotation'])
    rot = er @ sr
    trans = er @ np.asarray(calib['translation']) + np.asarray(et)
    return rot, trans, eq, et


def _count_points(points, calib, eq, et, boxes_tlr):
    """num_lidar_pts exactly as the devkit computes it (LiDAR -> ego -> global, points_in_box)."""
    scan = points.astype(np.float32).reshape(-1)
    pc = LidarPointCloud(scan.reshape((-1, 5))[:, :4].T)
    pc.rotate(Quaternion(calib['rotation']).rotation_matrix)
    pc.translate(np.array(calib['translation']))
    pc.rotate(Quaternion(eq).rotation_matrix)
    pc.translate(np.array(et))
    xyz = pc.points[:3]
    out = []
    for t, size, rot in boxes_tlr:
        near = np.abs(xyz[0] - t[0]) + np.abs(xyz[1] - t[1]) < size[0] + size[1] + size[2]
        if not near.any():
            out.append(0)
            continue
        box = Box(t, size, Quaternion(rot))
        out.append(int(points_in_box(box, xyz[:, near]).sum()))
    return out


def camera_offsets(rig):
    """Camera time - LiDAR keyframe time (s) per camera: the LiDAR sweep (one turn of
    ``LIDAR_PERIOD``) ends at the keyframe timestamp and starts at LiDAR azimuth -pi turning
    counter-clockwise; a camera fires when the beam passes the camera's yaw."""
    out = {}
    for ch in CAMERA_NAMES:
        z = quat_to_rot(rig[ch]['rotation'])[:, 2]                   # optical axis in the ego frame
        az = math.atan2(z[1], z[0]) - math.radians(LIDAR_YAW_DEG)    # in the LiDAR frame
        frac = ((az + math.pi) % (2 * math.pi)) / (2 * math.pi)
        out[ch] = round(-LIDAR_PERIOD * (1.0 - frac), 6)
    return out


def simulate_scene(spec):
    """Generate one scene; returns dict(tables, map, tile, coco, stats)."""
    tok = TokenGen(spec.seed, spec.index, 1)
    rht = spec.location == 'boston-seaport'
    layout = make_layout(np.random.default_rng([spec.seed, spec.index, 2]), spec.center, spec.region, rht)
    rig = make_rig(np.random.default_rng([spec.seed, spec.index, 4]), spec.image_size)
    noise_rng = np.random.default_rng([spec.seed, spec.index, 5])
    env = sample_environment(np.random.default_rng([spec.seed, spec.index, 6]))
    cam_offset = camera_offsets(rig)
    n = spec.samples
    t_keys = np.arange(n) * 0.5
    nl, nc = spec.lidar_sweeps, spec.camera_sweeps
    lidar_times = [(k, float(t_keys[k] - j * 0.5 / (nl + 1)), j == 0) for k in range(n) for j in range(nl, -1, -1)]
    cam_times = [(k, float(t_keys[k] - j * 0.5 / (nc + 1)), j == 0) for k in range(n) for j in range(nc, -1, -1)]
    all_t = np.unique(np.concatenate([[t for _, t, _ in lidar_times],
                                      [t + cam_offset[ch] for _, t, _ in cam_times for ch in CAMERA_NAMES],
                                      np.arange(lidar_times[0][1], t_keys[-1] + 0.25, 0.25)]))
    lid = rig[LIDAR_NAME]
    agent_rng = np.random.default_rng([spec.seed, spec.index, 3])
    lidar_s, best = 0.0, None
    for attempt in range(12):
        if attempt and attempt % 4 == 0:   # a new layout after repeated failures
            layout = make_layout(np.random.default_rng([spec.seed, spec.index, 2, attempt]), spec.center,
                                 spec.region, rht)
        agents = make_agents(agent_rng, layout, all_t, t_keys)
        world = _World(layout, agents[1:], all_t)
        ego = agents[0]
        ex, ey, eyaw, _, _ = ego.state(t_keys)
        ann_mask = np.zeros((len(world.agents), n), bool)
        for k in range(n):
            x, y, _, _, exs = world.state(t_keys[k])
            ann_mask[:, k] = exs.astype(bool) & (np.hypot(x - ex[k], y - ey[k]) <= ANNOTATION_RADIUS)
        for i in range(len(world.agents)):       # contiguous tracks
            ks = np.nonzero(ann_mask[i])[0]
            if len(ks):
                ann_mask[i, ks[0]:ks[-1] + 1] = True
        # LiDAR keyframes first: they decide num_lidar_pts (and whether every class is seen)
        key_scans, npts = [], np.zeros((len(world.agents), n), np.int64)
        seen = set()
        for k in range(n):
            t0 = time.perf_counter()
            boxes, owner, rscene = world.instant(t_keys[k])
            rot, trans, eq, et = _sensor_pose((ex[k], ey[k], eyaw[k]), lid)
            pts, _ = R.render_lidar(layout, boxes, rscene, rot, trans, noise_rng, wet=env.wet)
            key_scans.append(pts)
            x, y, yaw, _, _ = world.state(t_keys[k])
            idx = np.nonzero(ann_mask[:, k])[0]
            tlr = [([float(x[i]), float(y[i]), float(world.a_sizes[i, 2] / 2)], list(world.agents[i].size),
                    yaw_to_quat(float(yaw[i]))) for i in idx]
            cnt = _count_points(pts, lid, eq, et, tlr)
            for i, c in zip(idx, cnt):
                npts[i, k] = c
                det = DETECTION_MAPPING.get(world.agents[i].category)
                if c > 0 and det and math.hypot(x[i] - ex[k], y[i] - ey[k]) < EVAL_RANGE[det]:
                    seen.add(det)
            lidar_s += time.perf_counter() - t0
        missing = set(DETECTION_CLASSES) - seen
        if best is None or len(missing) < best[0]:
            best = (len(missing), sorted(missing), layout, world, agents[0], key_scans, npts, ann_mask, attempt)
        if not missing:
            break
    n_missing, missing, layout, world, ego, key_scans, npts, ann_mask, attempt = best
    if n_missing:
        warnings.warn(f'scene {spec.name}: no LiDAR-visible {missing} within evaluation range after '
                      f'{attempt + 1} attempts')
    return _write_scene(spec, tok, layout, rig, world, ego, t_keys, lidar_times, cam_times, key_scans, npts,
                        ann_mask, noise_rng, env, cam_offset, attempt, lidar_s)


def _write_scene(spec, tok, layout, rig, world, ego, t_keys, lidar_times, cam_times, key_scans, npts, ann_mask,
                 noise_rng, env, cam_offset, attempts, lidar_s=0.0):
    n = len(t_keys)
    sun = env.sun
    shadows = env.weather == 'clear' and env.time_of_day != 'night'    # diffuse light: no hard shadows
    root = spec.root
    vocab = spec.vocab
    sensor_tok = {s['channel']: s['token'] for s in vocab['sensor']}
    cat_tok = {c['name']: c['token'] for c in vocab['category']}
    attr_tok = {a['name']: a['token'] for a in vocab['attribute']}
    tables = {k: [] for k in ('log', 'scene', 'sample', 'calibrated_sensor', 'ego_pose', 'sample_data',
                              'instance', 'sample_annotation')}
    log_tok, scene_tok = tok(), tok()
    sample_toks = [tok() for _ in range(n)]
    ts = lambda t: int(spec.start_us + round(t * 1e6))  # noqa: E731
    tables['log'].append(dict(token=log_tok, logfile=spec.log_name, vehicle=spec.log_name.split('-')[0],
                              date_captured=spec.log_name[5:15], location=spec.location))
    tables['scene'].append(dict(token=scene_tok, log_token=log_tok, nbr_samples=n, first_sample_token=sample_toks[0],
                                last_sample_token=sample_toks[-1], name=spec.name,
                                description=describe(env, layout.kind, spec.location)))
    for k in range(n):
        tables['sample'].append(dict(token=sample_toks[k], timestamp=ts(t_keys[k]),
                                     prev=sample_toks[k - 1] if k else '',
                                     next=sample_toks[k + 1] if k < n - 1 else '', scene_token=scene_tok))
    calib_tok = {}
    for ch in list(CAMERA_NAMES) + [LIDAR_NAME]:
        c = rig[ch]
        calib_tok[ch] = tok()
        tables['calibrated_sensor'].append(dict(
            token=calib_tok[ch], sensor_token=sensor_tok[ch], translation=c['translation'], rotation=c['rotation'],
            camera_intrinsic=c['K'].tolist() if c['K'] is not None else []))
    # ------------------------------------------------------------- annotations
    x_k, y_k, yaw_k, v_k = [], [], [], []
    for k in range(n):
        x, y, yaw, v, _ = world.state(t_keys[k])
        x_k.append(x), y_k.append(y), yaw_k.append(yaw), v_k.append(v)
    ann_tok = np.full(ann_mask.shape, '', dtype=object)
    inst_toks = [''] * len(world.agents)
    for i, a in enumerate(world.agents):
        ks = np.nonzero(ann_mask[i])[0]
        if len(ks):
            inst_toks[i] = tok()
            for k in ks:
                ann_tok[i, k] = tok()
    # ------------------------------------------------------------- sensors
    out_dirs = set()

    def path(kind, ch, t, ext):
        rel = f'{kind}/{ch}/{spec.log_name}__{ch}__{ts(t)}.{ext}'
        d = os.path.join(root, kind, ch)
        if d not in out_dirs:
            os.makedirs(d, exist_ok=True)
            out_dirs.add(d)
        return rel

    def sd_chain(ch, frames, fileformat, w, h):
        """frames: list of (k, t, is_key, filename). Adds ego_pose + sample_data records."""
        toks = [tok() for _ in frames]
        for j, (k, t, key, fname) in enumerate(frames):
            exy = ego.state([t])
            ep = tok()
            tables['ego_pose'].append(dict(token=ep, timestamp=ts(t), rotation=yaw_to_quat(float(exy[2][0])),
                                           translation=[float(exy[0][0]), float(exy[1][0]), 0.0]))
            kk = k if key or t_keys[k] - t < 0.25 else max(k - 1, 0)
            tables['sample_data'].append(dict(
                token=toks[j], sample_token=sample_toks[kk], ego_pose_token=ep, calibrated_sensor_token=calib_tok[ch],
                timestamp=ts(t), fileformat=fileformat, is_key_frame=bool(key), height=h, width=w, filename=fname,
                prev=toks[j - 1] if j else '', next=toks[j + 1] if j < len(frames) - 1 else ''))

    W, H = spec.image_size
    vis = np.zeros(ann_mask.shape)
    coco_items = []
    aux_dir = os.path.join(root, 'synthetic_aux')
    det_names = [DETECTION_MAPPING.get(a.category) for a in world.agents]
    cam_frames = {ch: [] for ch in CAMERA_NAMES}
    stats = dict(camera_s=0.0, lidar_s=lidar_s, keyframes=n, camera_images=0, lidar_sweeps=0)

    for k_, t_sweep, key in cam_times:
        for ch in CAMERA_NAMES:
            # each camera fires when the spinning LiDAR passes its yaw: its own instant and ego pose
            t = t_sweep + cam_offset[ch]
            t0 = time.perf_counter()
            boxes, owner, rscene = world.instant(t)
            if ch == CAMERA_NAMES[0]:    # ground shadows once per camera frame (agents at the first camera's time)
                shadow = world.shadow(t, sun) if shadows else None
            exy = ego.state([t])
            c = rig[ch]
            rot, trans, _, _ = _sensor_pose((exy[0][0], exy[1][0], exy[2][0]), c)
            out = R.render_camera(layout, boxes, rscene, c['K'], rot, trans, W, H, sun, shadow, env)
            buf = io.BytesIO()
            Image.fromarray(out['rgb']).save(buf, format='JPEG', quality=90)
            jpg = buf.getvalue()
            fname = path('samples' if key else 'sweeps', ch, t, 'jpg')
            with open(os.path.join(root, fname), 'wb') as fh:
                fh.write(jpg)
            cam_frames[ch].append((k_, t, key, fname))
            stats['camera_images'] += 1
            if key:
                ids = out['ids']
                agent_of_px = np.where(ids >= 0, owner[np.maximum(ids, 0)], -1)
                # visibility: unoccluded / projected pixels of each annotated box
                vis_cnt = np.bincount(agent_of_px[agent_of_px >= 0], minlength=len(world.agents))
                tot = np.zeros(len(world.agents))
                sel = owner >= 0
                np.add.at(tot, owner[sel], out['counts'][sel])
                frac = np.where(tot > 0, vis_cnt / np.maximum(tot, 1), 0.0)
                vis[:, k_] = np.maximum(vis[:, k_], frac)
                base = os.path.basename(fname)[:-4]
                if spec.save_aux:
                    d = os.path.join(aux_dir, 'instance_masks', ch)
                    os.makedirs(d, exist_ok=True)
                    Image.fromarray((agent_of_px + 1).astype(np.uint16)).save(os.path.join(d, base + '.png'))
                if spec.export_2d:
                    split = spec.split2d
                    with open(os.path.join(root, 'coco', split, base + '.jpg'), 'wb') as fh:
                        fh.write(jpg)
                    ade = ADE_SPLIT[split]
                    with open(os.path.join(root, 'ade', 'images', ade, base + '.jpg'), 'wb') as fh:
                        fh.write(jpg)
                    Image.fromarray(out['sem']).save(os.path.join(root, 'ade', 'annotations', ade, base + '.png'))
                    box_class = {i: det_names[i] for i in range(len(world.agents)) if det_names[i]}
                    extra = {i: dict(instance_token=inst_toks[i] or None) for i in box_class}
                    anns = instance_annotations(agent_of_px, box_class, extra)
                    coco_items.append(dict(file_name=base + '.jpg', width=W, height=H, annotations=anns,
                                           extra=dict(channel=ch, scene=spec.name, timestamp=ts(t))))
            stats['camera_s'] += time.perf_counter() - t0
    for ch in CAMERA_NAMES:
        sd_chain(ch, cam_frames[ch], 'jpg', W, H)
    # ------------------------------------------------------------- LiDAR
    lid = rig[LIDAR_NAME]
    lframes = []
    for k_, t, key in lidar_times:
        t0 = time.perf_counter()
        if key:
            pts = key_scans[k_]
        else:
            boxes, _, rscene = world.instant(t)
            exy = ego.state([t])
            rot, trans, _, _ = _sensor_pose((exy[0][0], exy[1][0], exy[2][0]), lid)
            pts, _ = R.render_lidar(layout, boxes, rscene, rot, trans, noise_rng, wet=env.wet)
        fname = path('samples' if key else 'sweeps', LIDAR_NAME, t, 'pcd.bin')
        pts.astype(np.float32).tofile(os.path.join(root, fname))
        lframes.append((k_, t, key, fname))
        stats['lidar_sweeps'] += 1
        stats['lidar_s'] += time.perf_counter() - t0
    sd_chain(LIDAR_NAME, lframes, 'pcd', 0, 0)
    # ------------------------------------------------------------- annotation records
    vis_tok = lambda f: '4' if f >= 0.8 else '3' if f >= 0.6 else '2' if f >= 0.4 else '1'  # noqa: E731
    for i, a in enumerate(world.agents):
        ks = np.nonzero(ann_mask[i])[0]
        if not len(ks):
            continue
        tables['instance'].append(dict(token=inst_toks[i], category_token=cat_tok[a.category],
                                       nbr_annotations=len(ks), first_annotation_token=ann_tok[i, ks[0]],
                                       last_annotation_token=ann_tok[i, ks[-1]]))
        for j, k in enumerate(ks):
            attr = a.attribute(float(v_k[k][i]))
            tables['sample_annotation'].append(dict(
                token=ann_tok[i, k], sample_token=sample_toks[k], instance_token=inst_toks[i],
                visibility_token=vis_tok(vis[i, k]), attribute_tokens=[attr_tok[attr]] if attr else [],
                translation=[float(x_k[k][i]), float(y_k[k][i]), float(a.size[2] / 2)], size=list(a.size),
                rotation=yaw_to_quat(float(yaw_k[k][i])), prev=ann_tok[i, ks[j - 1]] if j else '',
                next=ann_tok[i, ks[j + 1]] if j < len(ks) - 1 else '', num_lidar_pts=int(npts[i, k]),
                num_radar_pts=0))
    if spec.save_aux:

        d = os.path.join(aux_dir, 'scenes')
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, spec.name + '.json'), 'w') as fh:
            json.dump(dict(scene=spec.name, layout=layout.kind, format_version=WORLD_FORMAT_VERSION,
                           environment=env.to_json(), camera_time_offsets=dict(cam_offset), agents=[
                dict(instance_token=inst_toks[i] or None, category=a.category) for i, a in enumerate(world.agents)],
                scenery=[dict(center=list(s['center']), size=list(s['size']), yaw=s['yaw'], kind=s['kind'])
                         for s in layout.scenery], agent_attempts=attempts + 1), fh)
    tile_dir = os.path.join(root, 'maps', '.tiles')
    os.makedirs(tile_dir, exist_ok=True)
    tile, shape = drivable_tile(layout)
    tile_file = os.path.join(tile_dir, f'{spec.index:05d}.npy')
    np.save(tile_file, tile)
    layers, dicts = scene_map_records(layout, tok)
    return dict(tables=tables, map=(layers, dicts), tile=(tile_file, layout.origin[0], layout.origin[1], shape),
                coco=coco_items, stats=stats, location=spec.location, log_token=log_tok, name=spec.name)
