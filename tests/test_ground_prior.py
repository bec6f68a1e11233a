"""The ground-plane depth prior of the view transform (``ground_depth``, ``soft_depth_bins``,
``LSSViewTransform(ground_prior=...)``): the depths are checked against the devkit's
``view_points`` on the rig of ``test_view_transforms`` with and without image / BEV
augmentation, the soft bins against their formula, and the wiring into ``DepthNet``."""
import numpy as np
import pytest
import torch
from nuscenes.utils.geometry_utils import view_points

from holodrive.datasets.transforms.augment import pad4
from holodrive.models.view_transforms import (DepthNet, ground_depth, soft_depth_bins)
from holodrive.registry import MODELS
from tests.test_view_transforms import AUG_CASES, GEOM, H, W, batch_inputs, packed_sample

GROUND_Z = -1.0        # recorded LiDAR frame; the rig's cameras sit 0.4-0.65 m above z = 0


@pytest.mark.parametrize('img_aug,bev_aug', AUG_CASES)
def test_ground_depth_is_where_the_pixel_ray_meets_the_ground(img_aug, bev_aug):
    sample = packed_sample(img_aug, bev_aug)
    inputs = batch_inputs([sample])
    depths = ground_depth(inputs['cam2img'], inputs['cam2lidar'], inputs['img_aug_matrix'],
                          (H, W), 1, GROUND_Z, sub_rows=1,
                          lidar_aug_matrix=inputs['lidar_aug_matrix'])[0, :, 0]  # (V, H, W)
    assert depths.shape == (6, H, W)
    checked = 0
    for view in range(6):
        # recorded LiDAR frame -> augmented pixels (u*d, v*d, d), composed in numpy
        lidar2img = np.asarray(sample['img_aug_matrix'][view]) @ \
            pad4(sample['cam2img'][view]) @ sample['recorded_lidar2cam'][view]
        img2lidar = np.linalg.inv(lidar2img)
        for v in range(0, H, 5):
            for u in range(0, W, 7):
                d = float(depths[view, v, u])
                if not np.isfinite(d):
                    # the ray (origin + depth * direction) never goes down to the plane
                    direction = img2lidar @ np.array([u, v, 1.0, 0.0])
                    origin = img2lidar @ np.array([0.0, 0.0, 0.0, 1.0])
                    assert direction[2] >= 0 or (GROUND_Z - origin[2]) / direction[2] <= 0
                    continue
                point = img2lidar @ np.array([u * d, v * d, d, 1.0])
                assert point[2] == pytest.approx(GROUND_Z, abs=1e-3), (view, u, v, d)
                uvd = view_points(point[:3, None], lidar2img, normalize=False)[:, 0]
                assert uvd[2] == pytest.approx(d, rel=1e-4)              # camera depth
                assert uvd[:2] / uvd[2] == pytest.approx([u, v], abs=1e-3)
                checked += 1
    assert checked > 200
    # rows above the horizon see no ground; the bottom rows see it near
    assert torch.isinf(depths[:, 0]).all() and torch.isfinite(depths[:, -1]).all()


def test_sub_rows_are_evenly_spaced_inside_the_cell():
    inputs = batch_inputs([packed_sample(False, False)])
    args = (inputs['cam2img'], inputs['cam2lidar'], inputs['img_aug_matrix'])
    fine = ground_depth(*args, (H, W), 1, GROUND_Z, sub_rows=1)[0, :, 0]   # (V, H, W)
    coarse = ground_depth(*args, (H, W), 4, GROUND_Z, sub_rows=4)[0]       # (V, 4, H/4, W/4)
    # cell (i, j) of stride 4: column 4j + 1.5, rows 4i + 0 .. 4i + 3 (pixel centres)
    # 1 / ground depth is linear in u along a row, so the centre's is the two pixels' mean
    left, right = fine[..., 1::4], fine[..., 2::4]
    checked = 0
    for k in range(4):
        a, b = left[:, k::4], right[:, k::4]
        both = torch.isfinite(a) & torch.isfinite(b)
        ref = 1.0 / (0.5 / a + 0.5 / b)
        torch.testing.assert_close(coarse[:, k][both], ref[both], rtol=1e-4, atol=1e-4)
        assert torch.isinf(coarse[:, k][torch.isinf(a) & torch.isinf(b)]).all()
        checked += int(both.sum())
    assert checked > 100


def test_soft_depth_bins_formula():
    bins = (1.0, 5.0, 1.0)                      # centres 1.5, 2.5, 3.5, 4.5
    depths = torch.tensor([2.5, 3.0, float('inf'), 7.0]).view(1, 1, 4, 1, 1)
    out = soft_depth_bins(depths, bins, sigma_bins=1.0)
    assert out.shape == (1, 1, 5, 1, 1)
    centres = torch.tensor([1.5, 2.5, 3.5, 4.5])
    ref = torch.zeros(4)
    for d in (2.5, 3.0):                         # the two rays inside the range
        g = torch.exp(-0.5 * (centres - d) ** 2)
        ref += g / g.sum() / 4
    torch.testing.assert_close(out[0, 0, :4, 0, 0], ref)
    assert out[0, 0, 4, 0, 0].item() == pytest.approx(0.5)      # inf and beyond 5 m
    assert out.sum().item() == pytest.approx(1.0)


def test_lss_ground_prior_reaches_the_depth_logits():
    torch.manual_seed(0)
    cfg = dict(type='LSSViewTransform', in_channels=8, out_channels=6, num_views=6,
               depth_net=dict(mid_channels=8, num_res_blocks=1),
               ground_prior=dict(ground_z=GROUND_Z, sub_rows=2), **GEOM)
    lss = MODELS.build(cfg).eval()
    d = lss.num_depth_bins
    assert lss.depth_net.prior_channels == d + 1
    assert lss.depth_net.prior_logits.weight.abs().sum() == 0       # starts as without it
    inputs = batch_inputs([packed_sample(True, True)])
    h, w = lss.feature_size
    feats = torch.randn(1, 6, 8, h, w)
    prior = lss.ground_prior_bins(lss.ground_geometry(inputs, lss.check_inputs(inputs, 1)))
    assert prior.shape == (1, 6, d + 1, h, w)
    torch.testing.assert_close(prior.sum(2), torch.ones(1, 6, h, w))
    with torch.no_grad():
        lss.depth_net.prior_logits.weight.copy_(torch.eye(d, d + 1)[:, :, None, None] * 5)
        base = lss(feats, inputs)['depth_logits']
        lifted = {k: v.clone() for k, v in inputs.items()}      # cameras 0.3 m higher
        lifted['cam2lidar'][..., 2, 3] += 0.3
        lifted['lidar2cam'] = torch.linalg.inv(lifted['cam2lidar'])
        higher = lss(feats, lifted)['depth_logits']
    assert not torch.allclose(base, higher)                         # the camera height counts
    lss.train()
    out = lss(feats, inputs)
    out['depth_logits'].logsumexp(2).mean().backward()
    assert lss.depth_net.prior_logits.weight.grad.abs().sum() > 0


def test_ground_prior_errors_are_one_line():
    geom = dict(GEOM, num_views=6)
    with pytest.raises(ValueError, match='needs a depth_net'):
        MODELS.build(dict(type='LSSViewTransform', in_channels=6, out_channels=6,
                          ground_prior=dict(ground_z=-1.0), **geom))
    with pytest.raises(ValueError, match='keys are ground_z, sub_rows, sigma_bins'):
        MODELS.build(dict(type='LSSViewTransform', in_channels=6, out_channels=6,
                          depth_net=dict(mid_channels=8), ground_prior=dict(height=1.8),
                          **geom))
    net = DepthNet(8, 8, 6, num_depth_bins=4, num_res_blocks=1, prior_channels=5)
    x, cam = torch.randn(2, 8, 3, 4), torch.randn(2, 22)
    with pytest.raises(ValueError, match=r'geometry prior None .* expected \(2, 5, 3, 4\)'):
        net(x, cam)
    with pytest.raises(ValueError, match='prior_channels=0'):
        DepthNet(8, 8, 6, num_depth_bins=4, num_res_blocks=1)(x, cam, torch.zeros(2, 5, 3, 4))
    lss = MODELS.build(dict(type='LSSViewTransform', in_channels=8, out_channels=6,
                            depth_net=dict(mid_channels=8, num_res_blocks=1),
                            ground_prior=dict(ground_z=GROUND_Z), **geom))
    inputs = batch_inputs([packed_sample(True, True)])
    del inputs['lidar_aug_matrix']
    with pytest.raises(ValueError, match=r"inputs\['lidar_aug_matrix'\] is missing"):
        lss(torch.randn(1, 6, 8, *lss.feature_size), inputs)
