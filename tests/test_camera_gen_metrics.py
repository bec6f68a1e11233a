"""The camera-generation scores: the FID InceptionV3 layout and its seeded file, the epipolar
geometry of the multi-view consistency, and CameraGenMetric on hand-made samples."""
import numpy as np
import pytest
import torch


def _camera(yaw_deg: float, t_lidar):
    """cam2lidar of a camera looking along lidar x rotated by ``yaw`` (OpenCV axes)."""
    yaw = np.deg2rad(yaw_deg)
    base = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], np.float64)   # cam axes in lidar
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    pose = np.eye(4)
    pose[:3, :3] = rz @ base
    pose[:3, 3] = t_lidar
    return pose


K = np.array([[120.0, 0, 128], [0, 120.0, 64], [0, 0, 1]])


def _project(points_lidar, cam2lidar):
    cam = (np.linalg.inv(cam2lidar) @ np.c_[points_lidar, np.ones(len(points_lidar))].T)[:3]
    uv = (K @ cam)[:2] / cam[2]
    return uv.T, cam[2]


def test_fundamental_matrix_satisfies_the_epipolar_constraint():
    from holodrive.evaluation.multiview_consistency import epipolar_distances, fundamental_matrix
    pose_i, pose_j = _camera(0, [1.0, 0.2, 1.6]), _camera(55, [0.6, 0.8, 1.6])
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(5, 30, 200), rng.uniform(0, 25, 200), rng.uniform(-1, 3, 200)]
    uv_i, z_i = _project(pts, pose_i)
    uv_j, z_j = _project(pts, pose_j)
    keep = (z_i > 0) & (z_j > 0)
    f = fundamental_matrix(K, K, pose_i, pose_j)
    assert np.abs(epipolar_distances(f, uv_i[keep], uv_j[keep])).max() < 1e-6
    shifted = uv_j[keep] + rng.normal(0, 5, uv_j[keep].shape)
    assert np.median(epipolar_distances(f, uv_i[keep], shifted)) > 1.0


def _texture(seed, h=128, w=256):
    import cv2
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        c = tuple(int(v) for v in rng.integers(0, [w, h]))
        cv2.circle(img, c, int(rng.integers(3, 12)), tuple(float(v) for v in rng.uniform(0, 255, 3)),
                   -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_matcher_counts_matches_that_fit_the_calibration():
    """Two views of a textured plane (a homography): most SIFT matches are consistent with
    the true calibration, few with a wrong one, none with an unrelated image."""
    import cv2

    from holodrive.evaluation.multiview_consistency import EpipolarMatcher, fundamental_matrix
    pose_i, pose_j = _camera(0, [0, 0, 0]), _camera(-20, [0.0, -1.0, 0.0])
    rel = np.linalg.inv(pose_j) @ pose_i                       # cam i -> cam j
    r, t = rel[:3, :3], rel[:3, 3]
    n, d = np.array([0, 0, 1.0]), 8.0                          # the plane z_i = 8 m
    hom = K @ (r + np.outer(t, n) / d) @ np.linalg.inv(K)
    img_i = _texture(0)
    img_j = cv2.warpPerspective(img_i, hom, (256, 128))
    matcher = EpipolarMatcher(threshold_px=2.0)
    total, good = matcher(img_i, img_j, fundamental_matrix(K, K, pose_i, pose_j))
    assert total >= 20 and good >= 0.7 * total, (total, good)
    wrong = fundamental_matrix(K, K, pose_i, _camera(-20, [0.0, 1.0, 0.5]))
    assert matcher(img_i, img_j, wrong)[1] < 0.5 * good
    assert matcher(img_i, _texture(1), fundamental_matrix(K, K, pose_i, pose_j))[1] < 0.2 * good


def test_inception_layout_seeded_file_and_errors(tmp_path):
    from safetensors.torch import load_file, save_file

    from holodrive.engine.cli import UserFileNotFoundError
    from holodrive.evaluation.inception import FIDInceptionV3, seeded_inception_file
    a, sha_a = seeded_inception_file(str(tmp_path / 'a.safetensors'))
    b, sha_b = seeded_inception_file(str(tmp_path / 'b.safetensors'))
    assert sha_a == sha_b and len(sha_a) == 64                   # fixed initialisation
    assert seeded_inception_file(a)[1] == sha_a                  # not rewritten
    state = load_file(a)
    for key in ('Conv2d_1a_3x3.conv.weight', 'Conv2d_1a_3x3.bn.running_var',
                'Mixed_5b.branch5x5_2.conv.weight', 'Mixed_6e.branch7x7dbl_5.bn.weight',
                'Mixed_7c.branch3x3dbl_3b.conv.weight'):
        assert key in state, key
    assert state['Mixed_7c.branch_pool.conv.weight'].shape == (192, 2048, 1, 1)
    # a pt_inception-style file with an fc head loads (the head is dropped)
    state['fc.weight'], state['fc.bias'] = torch.zeros(1008, 2048), torch.zeros(1008)
    save_file(state, str(tmp_path / 'with_fc.safetensors'))
    net, net_fc = FIDInceptionV3(a), FIDInceptionV3(str(tmp_path / 'with_fc.safetensors'))
    imgs = torch.randint(0, 256, (2, 3, 64, 96), dtype=torch.uint8)
    feats = net(imgs)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all() and feats.std() > 0
    assert torch.equal(feats, net_fc(imgs))
    assert torch.allclose(feats, FIDInceptionV3(a, normalize=True)(imgs.float() / 255),
                          atol=1e-5)
    with pytest.raises(UserFileNotFoundError, match='missing.safetensors: feature-network'):
        FIDInceptionV3(str(tmp_path / 'missing.safetensors'))
    save_file({'conv.weight': torch.zeros(1)}, str(tmp_path / 'other.safetensors'))
    with pytest.raises(ValueError, match='not an FID InceptionV3 state dict'):
        FIDInceptionV3(str(tmp_path / 'other.safetensors'))


def _sample(gen, real, poses):
    from mmdet3d.structures import Det3DDataSample
    s = Det3DDataSample()
    s.gen_imgs, s.real_imgs = gen, real
    s.cam2img_aug = torch.as_tensor(K).expand(len(gen), 3, 3).clone()
    s.views_cam2lidar = torch.as_tensor(np.stack(poses))
    s.neighbours = torch.tensor([[1, 1], [0, 0]])
    s.sample_protocol = 'test sampler'
    gt = torch.zeros(len(gen), 4, 8)
    gt[:, :2] = 10.0
    s.gt_depth, s.real_depth, s.gen_depth = gt, torch.full_like(gt, 11.0), torch.full_like(gt, 5.0)
    return s


def test_camera_gen_metric_scores(tmp_path, monkeypatch):
    """Generated == real: FID / KID about 0 and a consistency ratio of 1; noise images: a
    large FID and fewer consistent matches; the protocol names the feature file's hash."""
    import cv2
    from mmengine.logging import MMLogger

    from holodrive.evaluation import camera_gen_metric as m
    from holodrive.evaluation.inception import sha256_file
    monkeypatch.setattr(m, 'DEFAULT_FEATURES', str(tmp_path / 'fid.safetensors'))
    pose_i, pose_j = _camera(0, [0, 0, 0]), _camera(-20, [0.0, -1.0, 0.0])
    rel = np.linalg.inv(pose_j) @ pose_i
    hom = K @ (rel[:3, :3] + np.outer(rel[:3, 3], [0, 0, 1.0]) / 8.0) @ np.linalg.inv(K)
    real, noise = [], []
    for seed in range(3):
        img = _texture(seed)
        views = np.stack([img, cv2.warpPerspective(img, hom, (256, 128))])
        real.append(torch.as_tensor(views).permute(0, 3, 1, 2).contiguous())
        noise.append(torch.randint(0, 256, real[-1].shape, dtype=torch.uint8,
                                   generator=torch.Generator().manual_seed(seed)))

    def score(gens):
        metric = m.CameraGenMetric(kid_subset_size=4, kid_subsets=10)
        metric.process({}, [_sample(g, r, [pose_i, pose_j]) for g, r in zip(gens, real)])
        return metric.compute_metrics(metric.results), metric

    MMLogger.get_instance('camgen_test')
    same, metric = score(real)
    assert abs(same['fid']) < 1e-3 and abs(same['kid_mean']) < 1e-3, same  # KID: unbiased
    assert same['mv_real'] > 10 and same['mv_ratio'] == pytest.approx(1.0)
    assert same['depth_abs_rel_real'] == pytest.approx(0.1)
    assert same['depth_abs_rel_gen'] == pytest.approx(0.5)
    assert metric.feature_sha256 == sha256_file(str(tmp_path / 'fid.safetensors'))
    assert metric.feature_sha256 in metric.protocol(metric.results)
    other, _ = score(noise)
    assert other['fid'] > 10 * max(same['fid'], 1e-3) and other['fid'] > 1e-2, other
    assert other['kid_mean'] > 10 * abs(same['kid_mean']) and other['mv_ratio'] < 0.3, other
