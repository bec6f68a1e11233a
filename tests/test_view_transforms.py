"""Camera <-> BEV view transforms: geometry against the devkit's ``view_points``, pooling
against a reference loop, depth loss / metrics, and clear errors for bad batches.

The camera rig is synthetic and small (6 cameras around the LiDAR like nuScenes', 48x80
images); the matrices are made by the data path's own augmentation code
(``ensure_geometry``, ``apply_lidar_aug``, ``image_aug_matrix``), so the packed convention
(``lidar2cam`` already includes ``lidar_aug_matrix``) is what is tested.
"""
import math

import numpy as np
import pytest
import torch
from nuscenes.utils.geometry_utils import view_points

from holodrive.datasets.transforms.augment import (apply_lidar_aug, ensure_geometry,
                                                   image_aug_matrix, pad4)
from holodrive.datasets.transforms.bev import BEVGrid
from holodrive.datasets.transforms.depth import depth_bin_targets
from holodrive.models.view_transforms import (BEVToCamera, DepthLoss, LSSViewTransform,
                                              ViewTransformInputError, bev_pool,
                                              compute_ranks, depth_bin_centres, depth_metrics,
                                              expected_depth, frustum_to_lidar, make_frustum)
from holodrive.registry import MODELS
from holodrive.utils import pose_matrix

H, W, STRIDE = 48, 80, 2
DEPTH_BINS = (1.0, 13.0, 0.1)
GRID = dict(x_range=(-16, 16), y_range=(-16, 16), resolution=1.0)
Z_RANGE = (-3.0, 4.0)
YAWS_DEG = (0, -55, -110, 180, 110, 55)       # FRONT, FRONT_RIGHT, ..., FRONT_LEFT
GEOM = dict(image_size=(H, W), downsample=STRIDE, depth_bins=DEPTH_BINS, bev_grid=GRID,
            z_range=Z_RANGE)


def rig():
    """Recorded ``cam2img`` (3x3) and ``lidar2cam`` (4x4) of 6 cameras, float64."""
    cam2img = np.array([[50.0, 0, (W - 1) / 2], [0, 50.0, (H - 1) / 2 + 2], [0, 0, 1]])
    intrinsics, lidar2cam = [], []
    for k, yaw_deg in enumerate(YAWS_DEG):
        yaw, pitch = math.radians(yaw_deg), math.radians(2.0 + k)
        fwd = np.array([math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch),
                        -math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(fwd, right)
        rot = np.stack([right, down, fwd], axis=1)            # cam axes in the LiDAR frame
        cam2lidar = pose_matrix(rot, [0.8 * math.cos(yaw), 0.5 * math.sin(yaw), 0.4 + 0.05 * k])
        intrinsics.append(cam2img.copy())
        lidar2cam.append(np.linalg.inv(cam2lidar))
    return intrinsics, lidar2cam


def packed_sample(img_aug: bool, bev_aug: bool) -> dict:
    """One sample's geometry as the data path packs it (float64 numpy) + the recorded one."""
    cam2img, lidar2cam = rig()
    results = dict(cam2img=cam2img, lidar2cam=lidar2cam)
    ensure_geometry(results)
    if img_aug:
        for v in range(len(cam2img)):
            m = image_aug_matrix(0.9 + 0.02 * v, (3 + v, 2), v % 2 == 1, 3.0 - v, (W, H))
            results['img_aug_matrix'][v] = pad4(m)
    if bev_aug:
        c, s = math.cos(0.5), math.sin(0.5)
        delta = np.array([[c, -s, 0, 1.5], [s, c, 0, -0.7], [0, 0, 1, 0.2], [0, 0, 0, 1.0]])
        delta[:3, :3] *= 1.05
        apply_lidar_aug(results, delta)
        flip = np.diag([1.0, -1.0, 1.0, 1.0])
        apply_lidar_aug(results, flip)
    results['recorded_lidar2cam'] = [pad4(m) for m in lidar2cam]
    return results


def batch_inputs(samples, keys=('cam2img', 'lidar2cam', 'cam2lidar', 'img_aug_matrix',
                                'lidar_aug_matrix')) -> dict:
    return {k: torch.tensor(np.stack([np.asarray(s[k]) for s in samples]), dtype=torch.float32)
            for k in keys}


AUG_CASES = [(False, False), (True, False), (False, True), (True, True)]


def test_frustum_is_pixel_centres_and_bin_centres():
    f = make_frustum((H, W), STRIDE, DEPTH_BINS)
    assert f.shape == (120, H // STRIDE, W // STRIDE, 3)
    assert f[0, 0, 0].tolist() == pytest.approx([0.5, 0.5, 1.05])
    assert f[-1, -1, -1].tolist() == pytest.approx([W - 1.5, H - 1.5, 12.95])


def _points_in_view(sample, view, rng, count=8):
    """LiDAR points (augmented frame) at BEV cell centres seen by ``view``, their pixel
    (``view_points`` with the *recorded* calibration) and depth."""
    grid = BEVGrid(**GRID)
    xs, ys = grid.cell_centres()
    aug_inv = np.linalg.inv(np.asarray(sample['lidar_aug_matrix']))
    lidar2img = np.asarray(sample['img_aug_matrix'][view]) @ pad4(sample['cam2img'][view]) @ \
        sample['recorded_lidar2cam'][view]
    pts = np.stack(np.meshgrid(xs, ys, indexing='xy'), -1).reshape(-1, 2)
    pts = np.concatenate([pts, rng.uniform(-1.0, 2.0, (len(pts), 1))], 1)   # augmented frame
    orig = pts @ aug_inv[:3, :3].T + aug_inv[:3, 3]
    uv = view_points(orig.T, lidar2img, normalize=True)[:2].T
    depth = (orig @ sample['recorded_lidar2cam'][view][:3, :3].T +
             sample['recorded_lidar2cam'][view][:3, 3])[:, 2]
    ok = (uv[:, 0] > 1) & (uv[:, 0] < W - 2) & (uv[:, 1] > 1) & (uv[:, 1] < H - 2) & \
        (depth > 2.0) & (depth < 12.0)
    idx = rng.permutation(np.flatnonzero(ok))[:count]
    return pts[idx], uv[idx], depth[idx]


@pytest.mark.parametrize('apply_lidar_aug', [False, True])
def test_peaked_depth_lifts_a_lidar_point_into_its_bev_cell(apply_lidar_aug):
    rng = np.random.default_rng(0)
    samples = [packed_sample(*case) for case in AUG_CASES]
    inputs = batch_inputs(samples)
    if apply_lidar_aug:   # recorded calibration + lidar_aug_matrix (BEVFusion's convention)
        rec = torch.tensor(np.stack([s['recorded_lidar2cam'] for s in samples]),
                           dtype=torch.float32)
        inputs.update(lidar2cam=rec, cam2lidar=torch.linalg.inv(rec))
    h, w = H // STRIDE, W // STRIDE
    lss = LSSViewTransform(in_channels=1, out_channels=1, apply_lidar_aug=apply_lidar_aug,
                           num_views=6, **GEOM)
    grid, d_num = lss.grid, lss.num_depth_bins
    # one channel per test point: its feature cell holds 1, its depth is one-hot at the
    # bin of its true depth; distinct (sample, view, cell) so the channels do not mix
    records, used = [], set()
    for b, sample in enumerate(samples):
        for view in range(6):
            pts, uv, depth = _points_in_view(sample, view, rng)
            for p, (u, v), d in zip(pts, uv, depth):
                j, i = int((u + 0.5) // STRIDE), int((v + 0.5) // STRIDE)
                if (b, view, i, j) not in used:
                    used.add((b, view, i, j))
                    records.append((b, view, i, j, int((d - DEPTH_BINS[0]) // 0.1), p))
    assert {(r[0], r[1]) for r in records} == {(b, v) for b in range(4) for v in range(6)}
    n = len(records)
    feats = torch.zeros(4, 6, n, h, w)
    probs = torch.zeros(4, 6, d_num, h, w)
    for c, (b, view, i, j, k, _) in enumerate(records):
        feats[b, view, c, i, j] = 1.0
        probs[b, view, k, i, j] = 1.0
    bev = lss(feats, inputs, depth_probs=probs)['bev_feats']            # (4, n, H, W)
    assert bev.shape == (4, n, grid.height, grid.width)
    for c, (b, view, i, j, k, p) in enumerate(records):
        row = int((p[1] - grid.y_range[0]) // grid.resolution)
        col = int((p[0] - grid.x_range[0]) // grid.resolution)
        assert float(bev[b, c].sum()) == pytest.approx(1.0), (b, view)
        assert bev[b, c, row, col] == 1.0, (b, view, p, torch.nonzero(bev[b, c]))


@pytest.mark.parametrize('img_aug,bev_aug', AUG_CASES)
def test_bev_feature_lands_on_the_view_points_pixel(img_aug, bev_aug):
    rng = np.random.default_rng(1)
    sample = packed_sample(img_aug, bev_aug)
    h, w = H // STRIDE, W // STRIDE
    to_cam = BEVToCamera(num_views=1, **GEOM)
    grid = to_cam.grid
    for view in range(6):
        inputs = {k: torch.tensor(np.asarray(sample[k])[view:view + 1][None],
                                  dtype=torch.float32)
                  for k in ('cam2img', 'cam2lidar', 'img_aug_matrix')}
        pts, uv, depth = _points_in_view(sample, view, rng, count=3)
        for p, (u, v), d in zip(pts, uv, depth):
            bev = torch.zeros(1, 1, grid.height, grid.width)
            bev[0, 0, int((p[1] + 16) // 1), int((p[0] + 16) // 1)] = 1.0
            probs = torch.zeros(1, 1, to_cam.num_depth_bins, h, w)
            probs[:, :, int((d - DEPTH_BINS[0]) // 0.1)] = 1.0
            cam = to_cam(bev, probs, inputs)[0, 0, 0]                         # (h, w)
            i, j = int((v + 0.5) // STRIDE), int((u + 0.5) // STRIDE)
            assert cam[i, j] > 0.2, (view, p)
            best = int(cam[i].argmax())
            assert abs(best - j) <= 1, (view, p, best, j)


def test_camera_to_bev_and_back_share_the_geometry():
    sample = packed_sample(True, True)
    inputs = batch_inputs([sample])
    pts = frustum_to_lidar(make_frustum((H, W), STRIDE, DEPTH_BINS), inputs['cam2img'],
                           inputs['cam2lidar'], inputs['img_aug_matrix'])
    # back into the augmented image with the packed lidar2img: the frustum's (u, v, d)
    lidar2img = (inputs['img_aug_matrix'] @ inputs['cam2img'] @ inputs['lidar2cam'])[0]
    for view in range(6):
        p = pts[0, view, ::17].reshape(-1, 3).double().numpy()
        uv = view_points(p.T, lidar2img[view].double().numpy(), normalize=True)[:2].T
        ref = make_frustum((H, W), STRIDE, DEPTH_BINS)[::17].reshape(-1, 3)[:, :2].numpy()
        assert np.abs(uv - ref).max() < 1e-2


def _reference_pool(probs, feats, points, grid, z_range):
    b_num, v_num, d_num, h, w = probs.shape
    out = torch.zeros(b_num, feats.shape[2], grid.height, grid.width, dtype=feats.dtype)
    for b in range(b_num):
        for v in range(v_num):
            for d in range(d_num):
                for i in range(h):
                    for j in range(w):
                        x, y, z = points[b, v, d, i, j].tolist()
                        col = math.floor((x - grid.x_range[0]) / grid.resolution)
                        row = math.floor((y - grid.y_range[0]) / grid.resolution)
                        if 0 <= col < grid.width and 0 <= row < grid.height and \
                                z_range[0] <= z < z_range[1]:
                            out[b, :, row, col] = out[b, :, row, col] + \
                                probs[b, v, d, i, j] * feats[b, v, :, i, j]
    return out


@pytest.mark.parametrize('max_elements', [1 << 24, 7])
def test_bev_pool_equals_a_reference_loop(max_elements):
    torch.manual_seed(0)
    grid = BEVGrid(x_range=(-4, 4), y_range=(-3, 5), resolution=1.0)
    points = torch.rand(2, 2, 4, 3, 5, 3, dtype=torch.float64) * 12 - 6      # some outside
    probs = torch.rand(2, 2, 4, 3, 5, dtype=torch.float64).softmax(2).requires_grad_()
    feats = torch.randn(2, 2, 3, 3, 5, dtype=torch.float64, requires_grad=True)
    ranks = compute_ranks(points, grid, (-2.0, 2.0))
    assert 0 < len(ranks.ranks_bev) < points[..., 0].numel()
    out = bev_pool(probs, feats, ranks, max_elements=max_elements)
    ref = _reference_pool(probs, feats, points, grid, (-2.0, 2.0))
    torch.testing.assert_close(out, ref)
    weights = torch.randn_like(ref)
    g_out = torch.autograd.grad((out * weights).sum(), (probs, feats))
    g_ref = torch.autograd.grad((ref * weights).sum(), (probs, feats))
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b)


def test_lss_with_depth_net_from_the_registry_trains():
    torch.manual_seed(0)
    cfg = dict(type='LSSViewTransform', in_channels=8, out_channels=6, num_views=6,
               depth_net=dict(mid_channels=8, num_res_blocks=1), **GEOM)
    lss = MODELS.build(cfg)
    samples = [packed_sample(False, False), packed_sample(True, True)]
    inputs = batch_inputs(samples)
    feats = torch.randn(2, 6, 8, H // STRIDE, W // STRIDE, requires_grad=True)
    out = lss(feats, inputs)
    assert out['bev_feats'].shape == (2, 6, 32, 32)
    assert out['depth_logits'].shape == (2, 6, 120, H // STRIDE, W // STRIDE)
    torch.testing.assert_close(out['depth_probs'].sum(2), torch.ones(2, 6, 24, 40))
    depth = torch.rand(2, 6, 24, 40) * 14
    onehot, valid = depth_bin_targets(depth.numpy(), *DEPTH_BINS)
    loss = DepthLoss(loss_weight=0.5, stride=STRIDE).from_inputs(
        out['depth_logits'], {f'depth_bins_s{STRIDE}': torch.from_numpy(onehot),
                              f'depth_valid_s{STRIDE}': torch.from_numpy(valid)})
    (loss + out['bev_feats'].abs().mean()).backward()
    assert feats.grad.abs().sum() > 0
    assert all(p.grad is not None for p in lss.depth_net.parameters() if p.requires_grad)
    to_cam = MODELS.build(dict(type='BEVToCamera', num_views=6, max_elements=5000, **GEOM))
    back = to_cam(out['bev_feats'], out['depth_probs'], inputs)
    assert back.shape == (2, 6, 6, 24, 40)


def test_depth_loss_is_masked_to_cells_with_lidar_points():
    torch.manual_seed(0)
    depth = np.zeros((1, 2, 4, 5), np.float32)
    depth[0, 0, 1, 2], depth[0, 1, 3, 4], depth[0, 1, 0, 0] = 3.04, 7.5, 20.0   # 20: outside
    onehot, valid = depth_bin_targets(depth, *DEPTH_BINS)
    assert valid.sum() == 2
    onehot, valid = torch.from_numpy(onehot), torch.from_numpy(valid)
    logits = torch.randn(1, 2, 120, 4, 5, requires_grad=True)
    loss_fn = DepthLoss(loss_weight=2.0)
    loss = loss_fn(logits, onehot, valid)
    logp = logits.log_softmax(2)
    manual = -(logp[0, 0, 20, 1, 2] + logp[0, 1, 65, 3, 4]) / 2
    torch.testing.assert_close(loss, 2.0 * manual)
    changed = logits.detach().clone()
    changed[:, :, :, 0, 0] += torch.randn(1, 2, 120) * 10        # cells without a target
    torch.testing.assert_close(loss_fn(changed, onehot, valid), loss.detach())
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad[:, :, :, 0, 0].abs().sum() == 0 and grad[0, 0, :, 1, 2].abs().sum() > 0
    empty = loss_fn(logits, onehot, torch.zeros_like(valid))
    assert float(empty.detach()) == 0.0 and empty.requires_grad
    with pytest.raises(KeyError, match="depth_bins_s16.*ProjectLidarDepth"):
        DepthLoss(stride=16).from_inputs(logits, {'depth_s16': torch.zeros(1)})


def test_depth_metrics_on_known_values():
    pred = torch.tensor([1.0, 2.0, 4.0, 9.0])
    gt = torch.tensor([1.0, 2.0, 2.0, 0.0])          # the last cell has no LiDAR point
    m = depth_metrics(pred, gt)
    assert m['abs_rel'] == pytest.approx(1 / 3)
    assert m['rmse'] == pytest.approx(math.sqrt(4 / 3))
    assert m['delta1'] == pytest.approx(2 / 3) and m['count'] == 3
    assert math.isnan(depth_metrics(pred, torch.zeros(4))['rmse'])
    centres = depth_bin_centres(DEPTH_BINS).float()
    probs = torch.zeros(1, 120, 1, 1)
    probs[0, 20] = probs[0, 40] = 0.5
    assert float(expected_depth(probs, centres, dim=1)) == pytest.approx(4.05)


class _Sample:
    def __init__(self, token):
        self.metainfo = dict(token=token)


def _bad(inputs, feats=None, **kwargs):
    lss = LSSViewTransform(in_channels=2, out_channels=2, num_views=6, **GEOM, **kwargs)
    feats = torch.zeros(2, 6, 2, H // STRIDE, W // STRIDE) if feats is None else feats
    probs = torch.zeros(2, 6, 120, H // STRIDE, W // STRIDE)
    with pytest.raises(ViewTransformInputError) as err:
        lss(feats, inputs, depth_probs=probs, data_samples=[_Sample('tok0'), _Sample('tok1')])
    msg = str(err.value)
    assert '\n' not in msg
    return msg


def test_bad_batches_give_one_clear_line():
    good = batch_inputs([packed_sample(False, False), packed_sample(True, True)])
    missing = {k: v for k, v in good.items() if k != 'cam2img'}
    assert "inputs['cam2img'] is missing" in _bad(missing)
    assert 'tok0' in _bad(missing)
    no_extr = {k: v for k, v in good.items() if k not in ('cam2lidar', 'lidar2cam')}
    assert "inputs['lidar2cam'] is missing" in _bad(no_extr)
    assert "inputs['lidar_aug_matrix'] is missing" in _bad(
        {k: v for k, v in good.items() if k != 'lidar_aug_matrix'}, apply_lidar_aug=True)
    five = dict(good, cam2img=good['cam2img'][:, :5])
    msg = _bad(five)
    assert "inputs['cam2img'] has 5 cameras" in msg and 'num_views=6' in msg
    msg = _bad(good, feats=torch.zeros(2, 5, 2, H // STRIDE, W // STRIDE))
    assert 'img_feats has 5 cameras' in msg and "'tok1'" in msg
    nan = good['cam2lidar'].clone()
    nan[1, 3, 0, 0] = float('nan')
    msg = _bad(dict(good, cam2lidar=nan))
    assert "inputs['cam2lidar']" in msg and "camera 3 of sample 'tok1'" in msg
    msg = _bad(dict(good, imgs=torch.zeros(2, 6, 3, 90, 160)))
    assert "inputs['imgs'] are (90, 160)" in msg and f'{(H, W)}' in msg and 'tok0' in msg
    msg = _bad(good, feats=torch.zeros(2, 6, 2, 12, 20))
    assert 'img_feats is (12, 20)' in msg and 'downsample 2' in msg


def test_bev_to_camera_chunked_over_depth_equals_one_pass():
    torch.manual_seed(0)
    inputs = batch_inputs([packed_sample(True, True)])
    bev = torch.randn(1, 3, 32, 32, requires_grad=True)
    logits = torch.randn(1, 6, 120, H // STRIDE, W // STRIDE, requires_grad=True)
    outs, grads = [], []
    for max_elements in (1 << 24, 3 * 6 * 24 * 40 * 7):       # one pass / chunks of 7 bins
        to_cam = BEVToCamera(num_views=6, max_elements=max_elements, **GEOM)
        out = to_cam(bev, logits.softmax(2), inputs)
        outs.append(out.detach())
        grads.append(torch.autograd.grad(out.square().sum(), (bev, logits)))
    torch.testing.assert_close(outs[0], outs[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)   # float32 summation order


def test_oracle_lidar_depth_replaces_the_net_distribution_at_lidar_cells():
    torch.manual_seed(0)
    cfg = dict(type='LSSViewTransform', in_channels=8, out_channels=6, num_views=6,
               depth_net=dict(mid_channels=8, num_res_blocks=1), **GEOM)
    net, oracle = MODELS.build(cfg), MODELS.build(dict(cfg, depth_source='lidar'))
    oracle.load_state_dict(net.state_dict())
    net.eval(), oracle.eval()           # the ASPP dropout would differ between the two
    inputs = batch_inputs([packed_sample(True, True)])
    feats = torch.randn(1, 6, 8, H // STRIDE, W // STRIDE)
    depth = np.zeros((1, 6, H // STRIDE, W // STRIDE), np.float32)
    depth[0, 2, 5, 7], depth[0, 4, 10, 30] = 4.04, 9.55
    onehot, valid = depth_bin_targets(depth, *DEPTH_BINS)
    targets = {f'depth_bins_s{STRIDE}': torch.from_numpy(onehot),
               f'depth_valid_s{STRIDE}': torch.from_numpy(valid)}
    ref, out = net(feats, inputs), oracle(feats, dict(inputs, **targets))
    probs, ref_probs = out['depth_probs'], ref['depth_probs']
    assert float(probs[0, 2, 30, 5, 7]) == 1.0 and float(probs[0, 2, :, 5, 7].sum()) == 1.0
    assert float(probs[0, 4, 85, 10, 30]) == 1.0
    keep = torch.ones(6, H // STRIDE, W // STRIDE, dtype=torch.bool)
    keep[2, 5, 7] = keep[4, 10, 30] = False
    torch.testing.assert_close(probs[0].permute(0, 2, 3, 1)[keep],
                               ref_probs[0].permute(0, 2, 3, 1)[keep])
    assert not torch.allclose(out['bev_feats'], ref['bev_feats'])
    with pytest.raises(ViewTransformInputError, match=r"depth_source='lidar' needs "
                       r"inputs\['depth_bins_s2'\].*ProjectLidarDepth") as err:
        oracle(feats, inputs, data_samples=[_Sample('tok0')])
    assert '\n' not in str(err.value) and 'tok0' in str(err.value)
    with pytest.raises(ValueError, match="depth_source='camera'"):
        MODELS.build(dict(cfg, depth_source='camera'))


def test_teacher_forcing_mixes_the_lidar_onehot_in_training_only():
    """``teacher_forcing=r`` lifts with ``r * onehot + (1 - r) * P_net`` at LiDAR cells while
    training, and with ``P_net`` alone in eval."""
    torch.manual_seed(0)
    cfg = dict(type='LSSViewTransform', in_channels=8, out_channels=6, num_views=6,
               depth_net=dict(mid_channels=8, num_res_blocks=1), **GEOM)
    vt = MODELS.build(cfg)
    inputs = batch_inputs([packed_sample(True, True)])
    feats = torch.randn(1, 6, 8, H // STRIDE, W // STRIDE)
    depth = np.zeros((1, 6, H // STRIDE, W // STRIDE), np.float32)
    depth[0, 1, 3, 9] = 6.33
    onehot, valid = depth_bin_targets(depth, *DEPTH_BINS)
    targets = dict(inputs, **{f'depth_bins_s{STRIDE}': torch.from_numpy(onehot),
                              f'depth_valid_s{STRIDE}': torch.from_numpy(valid)})
    vt.train()

    def lift(r):
        vt.teacher_forcing = r
        torch.manual_seed(1)                # same ASPP dropout draw for every r
        return vt(feats, targets)['depth_probs']

    net, mixed = lift(0.0), lift(0.25)
    cell = (0, 1, slice(None), 3, 9)
    expected = 0.75 * net[cell]
    expected[53] += 0.25                    # bin of 6.33 m: (6.33 - 1.0) / 0.1 -> 53
    torch.testing.assert_close(mixed[cell], expected)
    keep = torch.ones(6, H // STRIDE, W // STRIDE, dtype=torch.bool)
    keep[1, 3, 9] = False
    torch.testing.assert_close(mixed[0].permute(0, 2, 3, 1)[keep],
                               net[0].permute(0, 2, 3, 1)[keep])
    vt.eval()
    torch.testing.assert_close(vt(feats, inputs)['depth_probs'][cell],
                               vt(feats, targets)['depth_probs'][cell])   # no targets needed
    vt.train()
    with pytest.raises(ViewTransformInputError, match=r'teacher_forcing=0.5 needs') as err:
        vt.teacher_forcing = 0.5
        vt(feats, inputs)
    assert '\n' not in str(err.value)
    for bad in (dict(teacher_forcing=1.5), dict(teacher_forcing=0.5, depth_net=None,
                                                in_channels=6)):
        with pytest.raises(ValueError, match='teacher_forcing'):
            MODELS.build(dict(cfg, **bad))
