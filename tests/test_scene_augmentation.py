"""Geometry that survives augmentation: lidar_aug_matrix / img_aug_matrix / lidar2img,
BEV rasters, depth maps and layout images follow every 3D and image augmentation."""
import copy

import numpy as np
import pytest

from holodrive.datasets.transforms.builder import build_pipeline
from holodrive.utils.geometry import box_corners

LOAD = [dict(type='LoadPointsChecked'), dict(type='LoadMultiViewImagesChecked'),
        dict(type='LoadSceneAnnotations3D', with_attr_label=True),
        dict(type='FilterSceneInstances', point_cloud_range=[-50, -50, -5, 50, 50, 3])]
AUG = [dict(type='GlobalRotScaleTrans', rot_range=[-0.6, 0.6], scale_ratio_range=[0.9, 1.1],
            translation_std=[0.5, 0.5, 0.1]),
       dict(type='RandomFlip3D', flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
       dict(type='MultiViewImageAug', final_size=(256, 128), resize_range=(0.7, 1.0),
            crop_y='random', flip_prob=0.5, rot_range=(-8, 8))]
RES = 0.5
DERIVED = [dict(type='RasterizeMapBEV', resolution=RES),
           dict(type='RasterizeBoxBEV', resolution=RES),
           dict(type='ProjectLidarDepth', strides=(16,), depth_bins=(1.0, 60.0, 1.0)),
           dict(type='ProjectLayoutToCameras', scale=0.5)]
PACK = dict(type='PackSceneInputs', keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d',
                                          'depth_maps', 'map_bev', 'box_bev', 'layout_images'])


def _run(transforms, results):
    for t in transforms:
        results = t(results)
    return results


@pytest.fixture(scope='module')
def loaded(tiny_world):
    from holodrive.datasets import NuScenesSceneDataset
    ds = NuScenesSceneDataset(str(tiny_world.root), 'nuscenes_infos_train.pkl', pipeline=[],
                              filter_empty_gt=False)
    info = ds.get_data_info(1)
    info['box_type_3d'], info['box_mode_3d'] = ds.box_type_3d, ds.box_mode_3d
    return _run(build_pipeline(LOAD), info)


def _project(lidar2img, pts):
    cam = np.concatenate([pts, np.ones((len(pts), 1))], 1) @ np.asarray(lidar2img)[:3].T
    return cam[:, :2] / cam[:, 2:3], cam[:, 2]


def _drivable_overlap(res):
    """Fraction of vehicle-raster cells on the drivable area."""
    veh = res['box_bev'][0].astype(bool)
    return float((veh & res['map_bev'][0].astype(bool)).sum() / max(veh.sum(), 1))


def test_fifty_random_augmentations_keep_projections_and_rasters(loaded):
    aug = build_pipeline(AUG)
    derived = build_pipeline(DERIVED)
    pack = build_pipeline([PACK])[0]
    orig_boxes = loaded['gt_bboxes_3d'].tensor.numpy().astype(np.float64)
    orig_corners = box_corners(orig_boxes, origin=(0.5, 0.5, 0.0))
    # recorded calibration straight from the info file (independent of the transforms)
    info_l2i = [np.asarray(v['lidar2img'], np.float64) for v in loaded['images'].values()]
    base = _run(derived, copy.deepcopy(loaded))
    base_overlap = _drivable_overlap(base)
    assert base_overlap > 0.5
    checked_boxes, flips = 0, set()
    for seed in range(50):
        np.random.seed(seed)
        res = _run(aug, copy.deepcopy(loaded))
        res = _run(derived, res)
        meta = pack(dict(res))['data_samples'].metainfo
        flips.add((bool(meta['pcd_horizontal_flip']), bool(meta['pcd_vertical_flip'])))
        aug_boxes = res['gt_bboxes_3d'].tensor.numpy().astype(np.float64)
        assert len(aug_boxes) == len(orig_boxes)
        aug_corners = box_corners(aug_boxes, origin=(0.5, 0.5, 0.0))
        for v, (l2i_info, l2i, img_aug) in enumerate(zip(info_l2i, meta['lidar2img'],
                                                         meta['img_aug_matrix'])):
            for b in range(len(orig_boxes)):
                uv0, d0 = _project(img_aug @ l2i_info, orig_corners[b])
                if (d0 < 0.5).any():
                    continue
                if not ((uv0[:, 0] > 0) & (uv0[:, 0] < 256) & (uv0[:, 1] > 0) &
                        (uv0[:, 1] < 128)).any():
                    continue          # not visible in this augmented view
                uv1, d1 = _project(l2i, aug_corners[b])
                # corners may be renumbered by a flip: match as sets
                dist = np.linalg.norm(uv0[:, None] - uv1[None], axis=-1)
                assert dist.min(axis=1).max() < 1e-3, (seed, v, b, dist.min(axis=1).max())
                assert dist.min(axis=0).max() < 1e-3
                checked_boxes += 1
        # depth maps follow: augmented points land where the depth map has their depth
        pts = res['points'].tensor.numpy()[:, :3].astype(np.float64)
        for v, l2i in enumerate(meta['lidar2img']):
            uv, d = _project(l2i, pts)
            px = np.round(uv).astype(int)
            ok = (d > 0.1) & (px[:, 0] >= 0) & (px[:, 0] < 256) & (px[:, 1] >= 0) & \
                (px[:, 1] < 128)
            dm = res['depth_maps'][v][px[ok, 1], px[ok, 0]]
            assert (dm > 0).all() and (dm <= d[ok] + 1e-3).all()
        # BEV layouts agree after augmentation: vehicles stay on the drivable area
        assert abs(_drivable_overlap(res) - base_overlap) < 0.08, seed
        # lidar_aug_matrix maps original points to augmented points
        aug_m = np.asarray(meta['lidar_aug_matrix'])
        moved = loaded['points'].tensor.numpy()[:, :3].astype(np.float64) @ aug_m[:3, :3].T + \
            aug_m[:3, 3]
        assert np.abs(moved - pts).max() < 1e-3
    assert checked_boxes > 200
    assert len(flips) >= 3          # the random draws exercised flips and no flips


def test_stale_map_raster_would_be_caught(loaded):
    """The overlap criterion above detects a map raster left in the recorded pose."""
    np.random.seed(3)
    res = _run(build_pipeline([dict(type='GlobalRotScaleTrans', rot_range=[0.6, 0.6],
                                    scale_ratio_range=[1, 1], translation_std=[0, 0, 0]),
                               dict(type='RandomFlip3D', flip_ratio_bev_horizontal=1.0)]),
               copy.deepcopy(loaded))
    good = _run(build_pipeline(DERIVED[:2]), copy.deepcopy(res))
    stale = dict(good)
    stale['map_bev'] = _run(build_pipeline(DERIVED[:1]), copy.deepcopy(loaded))['map_bev']
    base = _drivable_overlap(_run(build_pipeline(DERIVED[:2]), copy.deepcopy(loaded)))
    assert abs(_drivable_overlap(good) - base) < 0.08
    assert abs(_drivable_overlap(stale) - base) > 0.08


def test_augmentation_after_derived_targets_is_refused(loaded):
    res = _run(build_pipeline(DERIVED[:1]), copy.deepcopy(loaded))
    with pytest.raises(RuntimeError, match='after every augmentation'):
        build_pipeline(AUG[:1])[0](res)


def test_layout_images_follow_boxes_and_map(loaded):
    np.random.seed(5)
    res = _run(build_pipeline(AUG + DERIVED), copy.deepcopy(loaded))
    layout, l2i_all = res['layout_images'], res['lidar2img']
    n_map = len(res['map_bev'])
    assert layout.shape == (6, n_map + 4, 64, 128) and layout.dtype == np.uint8
    boxes = res['gt_bboxes_3d']
    centres = boxes.gravity_center.numpy().astype(np.float64)
    sx = 0.5
    hits = 0
    for v, l2i in enumerate(l2i_all):
        uv, d = _project(l2i, centres)
        lu = np.round((uv[:, 0] + 0.5) * sx - 0.5).astype(int)
        lv = np.round((uv[:, 1] + 0.5) * sx - 0.5).astype(int)
        ok = (d > 1.0) & (d < 90) & (lu >= 0) & (lu < 128) & (lv >= 0) & (lv < 64)
        # the ray through a box centre hits that box or one in front of it
        assert layout[v, n_map:, lv[ok], lu[ok]].any(axis=1).all()
        hits += int(ok.sum())
        # map channels: BEV cell centres on the ground land on the same map value
        grid = res['map_bev_grid']
        xs, ys = grid.cell_centres()
        jj, ii = np.meshgrid(np.arange(0, grid.width, 7), np.arange(0, grid.height, 7))
        ground = np.stack([xs[jj.ravel()], ys[ii.ravel()]], 1)
        l2e = np.asarray(res['lidar_points']['lidar2ego'])
        q = (l2e @ np.linalg.inv(res['lidar_aug_matrix']))[2]
        z = -(q[0] * ground[:, 0] + q[1] * ground[:, 1] + q[3]) / q[2]
        uvg, dg = _project(l2i, np.concatenate([ground, z[:, None]], 1))
        gu = (uvg[:, 0] + 0.5) * sx - 0.5
        gv = (uvg[:, 1] + 0.5) * sx - 0.5
        inside = (dg > 2) & (dg < 40) & (gu > 1) & (gu < 126) & (gv > 1) & (gv < 62)
        gu, gv = np.round(gu[inside]).astype(int), np.round(gv[inside]).astype(int)
        free = ~layout[v, n_map:, gv, gu].any(axis=1)
        want = res['map_bev'][0][ii.ravel()[inside], jj.ravel()[inside]]
        got = layout[v, 0, gv, gu]
        if free.sum() > 20:
            assert (want[free] == got[free]).mean() > 0.9
    assert hits > 10


def test_depth_targets_match_brute_force():
    from holodrive.datasets.transforms.depth import depth_bin_targets, min_pool_depth
    rng = np.random.default_rng(0)
    depth = np.where(rng.random((2, 37, 50)) < 0.05, rng.uniform(0.5, 70, (2, 37, 50)), 0)
    depth = depth.astype(np.float32)
    cells = min_pool_depth(depth, 8)
    assert cells.shape == (2, 5, 7)
    for v in range(2):
        for i in range(5):
            for j in range(7):
                block = depth[v, i * 8:(i + 1) * 8, j * 8:(j + 1) * 8]
                block = block[block > 0]
                assert cells[v, i, j] == (block.min() if len(block) else 0)
    onehot, valid = depth_bin_targets(cells, 1.0, 60.0, 1.0)
    assert onehot.shape == (2, 59, 5, 7)
    assert (onehot.sum(1) == valid).all()
    assert ((cells >= 1) & (cells < 60) == valid).all()
    k = np.argmax(onehot, axis=1)
    assert (k[valid] == np.floor(cells[valid] - 1).astype(int)).all()


def test_image_aug_matrix_matches_cv2_warp():
    import cv2
    from holodrive.datasets.transforms.augment import image_aug_matrix
    img = np.zeros((90, 160, 3), np.uint8)
    img[40:43, 100:103] = 255           # a 3x3 dot centred at (101, 41)
    m = image_aug_matrix(1.5, (30.0, 20.0), True, 7.0, (128, 96))
    out = cv2.warpAffine(img, m[:2], (128, 96), flags=cv2.INTER_LINEAR)
    u, v, _ = m @ np.array([101.0, 41.0, 1.0])
    vv, uu = np.nonzero(out[..., 0] > 100)
    w = out[vv, uu, 0].astype(float)
    assert abs((uu * w).sum() / w.sum() - u) < 0.3 and abs((vv * w).sum() / w.sum() - v) < 0.3


def test_filter_scene_instances_raises_on_misaligned_key(loaded):
    res = copy.deepcopy(loaded)
    res['gt_instance_ids'] = res['gt_instance_ids'][:-1]
    with pytest.raises(ValueError, match='gt_instance_ids'):
        build_pipeline([dict(type='FilterSceneInstances')])[0](res)
