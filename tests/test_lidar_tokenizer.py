"""LiDAR tokenizer parts: voxel grid, sparse encoder (== dense), quantizer, decoder, scan
sampler, metrics, and the tokenizer through tools/train.py / tools/test.py."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import holodrive.models  # noqa: F401  (registers; applies the runtime fixes)
from holodrive.evaluation.lidar_metrics import (bev_histogram, chamfer_distance, jsd, mmd,
                                                voxel_iou)
from holodrive.models.lidar_gen import (OccupancyDecoder, ScanSampler, SparseBEVEncoder,
                                        VectorQuantizer, VoxelGrid, write_pcd_bin)

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
CONFIG = 'configs/holodrive/lidar/lidar_tokenizer_tiny_synthetic.py'
SMALL = dict(point_cloud_range=[-8, -8, -2, 8, 8, 2], voxel_size=[0.5, 0.5, 0.5])


def _cloud(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g) * torch.tensor([16, 16, 4.]) - torch.tensor([8, 8, 2.])


def test_voxel_grid_cells_contain_their_points():
    grid = VoxelGrid(**SMALL)
    assert grid.shape == (8, 32, 32)
    pts = torch.cat([_cloud(), torch.tensor([[100.0, 0, 0]])])    # one point outside
    kij = grid.voxel_indices(pts)
    assert len(kij) == len(torch.unique(kij, dim=0)) and len(kij) <= 400
    centres = grid.cell_centres(grid.voxel_indices(pts[:1]))
    assert (centres - pts[:1]).abs().max() <= 0.25 + 1e-6
    occ = grid.occupancy([pts])
    assert occ.shape == (1, 8, 32, 32) and int(occ.sum()) == len(kij)
    assert occ[0, kij[:, 0], kij[:, 1], kij[:, 2]].all()
    with pytest.raises(ValueError, match='whole'):
        VoxelGrid([-8, -8, -2, 8, 8, 2], [0.3, 0.5, 0.5])


def _randomise_bn(module):
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.6 - 0.3)


def test_sparse_encoder_equals_dense_conv3d():
    enc = SparseBEVEncoder(**SMALL, sparse_stages=[
        dict(channels=4, stride=1, num_blocks=1), dict(channels=8, stride=2, num_blocks=1),
        dict(channels=8, stride=(1, 2, 2), num_blocks=0)],
        bev_stages=[dict(channels=16, stride=1)], out_channels=8)
    _randomise_bn(enc)
    enc.eval()
    pts = [_cloud(300, 0), _cloud(60, 1) * 0.3]
    with torch.no_grad():
        sparse = enc.sparse_stages(enc.grid.sparse_indices(pts), 2)
        dense = enc.sparse_stages_dense(enc.grid.occupancy(pts))
        assert sparse.shape == dense.shape == (2, 8, *enc.sparse_out_shape)
        assert (sparse != 0).any()
        torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-4)
        tokens = enc(pts)
        assert tokens.shape == (2, 8, *enc.token_shape)
        # an empty sweep is an all-zero volume, not a spconv error
        empty = enc.sparse_stages(enc.grid.sparse_indices([torch.full((1, 3), 99.0)]), 1)
        assert not empty.any()
    enc.train()
    with pytest.raises(RuntimeError, match='eval'):
        enc.sparse_stages_dense(enc.grid.occupancy(pts))


def test_quantizer_nearest_code_straight_through_ema_and_restarts():
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=8, code_dim=4, beta=0.25, ema_decay=0.5,
                         dead_code_threshold=0.2)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(z)
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(flat, vq.embedding.weight.detach()).argmin(1)
    # codes are nearest before the EMA moved them (training mode updates after the choice)
    vq.eval()
    vq2 = VectorQuantizer(num_codes=8, code_dim=4, ema_decay=None)
    vq2.embedding.weight.data.copy_(torch.randn(8, 4))
    o2 = vq2(z)
    assert torch.equal(o2['indices'].flatten(),
                       torch.cdist(flat, vq2.embedding.weight.detach()).argmin(1))
    assert out['indices'].shape == (2, 3, 3) and brute.shape == (18,)
    # straight-through: the decoder's gradient reaches z unchanged
    (o2['quantized'] * 3).sum().backward()
    torch.testing.assert_close(z.grad, torch.full_like(z, 3.0))
    assert 'loss_codebook' in o2 and 'loss_codebook' not in out
    # EMA: one cluster pulls its code toward the data; unused codes are restarted from data
    vq.train()
    data = torch.randn(1, 4, 4, 4) * 0.1 + 5.0
    for _ in range(6):
        res = vq(data)
    used = res['indices'].unique()
    mean = data.permute(0, 2, 3, 1).reshape(-1, 4).mean(0)
    assert (vq.embedding.weight[used] - mean).norm(dim=1).min() < 1.0
    restarted = (vq.embedding.weight - 5.0).abs().max(dim=1).values < 1.0
    assert restarted.sum() >= 4, vq.embedding.weight   # dead codes moved next to the data
    assert 0 < float(res['vq_usage']) <= 1 and float(res['vq_perplexity']) >= 1
    with pytest.raises(ValueError, match='codebook size'):
        vq.lookup(torch.tensor([[[8]]]))
    with pytest.raises(ValueError, match='code_dim'):
        vq(torch.randn(1, 5, 2, 2))


def test_occupancy_decoder_shapes_bias_and_mismatch():
    dec = OccupancyDecoder(8, **SMALL, token_stride=4, channels=16, with_intensity=True)
    out = dec(torch.randn(2, 8, 8, 8))
    assert out['occupancy_logits'].shape == (2, 8, 32, 32) == out['intensity'].shape
    assert torch.sigmoid(dec.occupancy_head[0].bias).max() < 0.01
    with pytest.raises(ValueError, match='disagree'):
        dec(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match='token stride'):
        OccupancyDecoder(8, **SMALL, token_stride=5)


def test_scan_sampler_keeps_the_first_hit_per_beam(tmp_path):
    rng = [-30.0, -30.0, -3.0, 30.0, 30.0, 5.0]
    sampler = ScanSampler(rng, [0.5, 0.5, 0.5], elevations=[-2.0, 0.0, 2.0],
                          azimuth_steps=360, max_range=40.0)
    grid = sampler.grid
    occ = torch.zeros(grid.shape, dtype=torch.bool)
    # two walls across +x: at x = 10 m (y in [-2, 2]) and behind it at x = 20 m (y in [-8, 8])
    for x, half in ((10.0, 2.0), (20.0, 8.0)):
        j = int((x - rng[0]) / 0.5)
        i0, i1 = int((-half - rng[1]) / 0.5), int((half - rng[1]) / 0.5)
        occ[:, i0:i1, j] = True
    pts = sampler(occ)
    assert pts.shape[1] == 5 and len(pts) > 0
    r = pts[:, :2].norm(dim=1)
    az = torch.atan2(pts[:, 1], pts[:, 0])
    front = az.abs() < math.atan2(1.5, 10.0)            # beams that meet the near wall
    assert front.any() and (pts[front, 0] < 10.6).all()   # the far wall is occluded there
    assert ((pts[~front, 0] > 19.4) | (pts[~front, 0] < 10.6)).all()
    assert (pts[:, 0] > 19.4).any()                       # the far wall is seen beside it
    key = pts[:, 4] * 1000 + torch.round((az + math.pi) / (2 * math.pi / 360))
    assert len(key.unique()) == len(pts)                  # at most one return per beam
    assert set(pts[:, 4].long().tolist()) <= {0, 1, 2}
    assert (r > 1.0).all()
    # written in nuScenes' format, it loads with the devkit and the project's checked loader
    path = str(tmp_path / 'gen.pcd.bin')
    write_pcd_bin(path, pts)
    from nuscenes.utils.data_classes import LidarPointCloud

    from holodrive.datasets.transforms.loading import read_points_checked
    cloud = LidarPointCloud.from_file(path)
    assert cloud.points.shape == (4, len(pts))
    np.testing.assert_allclose(read_points_checked(path, 5, None, 1).reshape(-1, 5), pts.numpy())
    with pytest.raises(ValueError, match='grid'):
        sampler(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r'\(N, 5\)'):
        write_pcd_bin(path, pts[:, :3])


def test_metrics_against_brute_force():
    a, b = _cloud(200, 0), _cloud(150, 1)
    d = torch.cdist(a, b)
    expected = 0.5 * (d.min(1).values.mean() + d.min(0).values.mean())
    roi = (-50, -50, -50, 50, 50, 50)
    for method in ('torch', 'kdtree'):
        got = chamfer_distance(a, b, roi, chunk=17, method=method)
        assert got == pytest.approx(float(expected), rel=1e-5), method
    assert chamfer_distance(a, a, roi, method='torch') < 1e-3   # matmul-form rounding
    assert chamfer_distance(a, a, roi) == 0.0
    inside = chamfer_distance(a, b, (-2, -2, -2, 2, 2, 2))       # ROI crop
    crop = [p[(p.abs() < 2).all(1)] for p in (a, b)]
    d_roi = torch.cdist(*crop)
    assert inside == pytest.approx(float(0.5 * (d_roi.min(1).values.mean()
                                                + d_roi.min(0).values.mean())), rel=1e-5)
    assert math.isinf(chamfer_distance(a, b + 1000, roi))
    inter, union = voxel_iou(torch.tensor([[0, 0, 0], [0, 0, 1]]),
                             torch.tensor([[0, 0, 1], [1, 2, 3]]))
    assert (inter, union) == (1, 3)
    ha = [bev_histogram(_cloud(500, s) * 3) for s in range(4)]
    hb = [bev_histogram(_cloud(500, s) * 0.5) for s in range(4, 8)]
    assert all(abs(h.sum() - 1) < 1e-9 for h in ha)
    assert mmd(ha, ha) == pytest.approx(0.0, abs=1e-12) and mmd(ha, hb) > 0
    assert jsd(ha, ha) == pytest.approx(0.0, abs=1e-6) and jsd(ha, hb) > 0.3


def _metrics(work_dir):
    (saved,) = Path(work_dir).glob('*/metrics.json')
    return {k.rsplit('/', 1)[-1]: v for k, v in json.loads(saved.read_text()).items()}


def test_tokenizer_trains_and_is_scored_through_the_tools(tiny_world, tmp_path):
    """tools/train.py on the tiny world: the occupancy loss falls;
    tools/test.py scores the reconstructions (IoU, Chamfer, MMD, JSD) and prints the protocol."""
    epochs = 6
    opts = ['--cfg-options', f'data_root={tiny_world.root}/', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs + 1}', f'param_scheduler.1.T_max={epochs}',
            f'param_scheduler.1.end={epochs}', 'param_scheduler.0.end=2',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'val_dataloader.num_workers=0', 'default_hooks.logger.interval=1',
            'log_processor.window_size=1']
    proc = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                           *opts], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (log,) = tmp_path.glob('*/vis_data/scalars.json')
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    rows = [r for r in rows if 'loss_occupancy' in r]
    first, last = rows[:2], rows[-2:]
    assert sum(r['loss_occupancy'] for r in last) < 0.85 * sum(r['loss_occupancy'] for r in first)
    assert 'vq_perplexity' in rows[-1] and 'vq_usage' in rows[-1]
    test = subprocess.run([sys.executable, 'tools/test.py', CONFIG,
                           str(tmp_path / f'epoch_{epochs}.pth'), '--work-dir',
                           str(tmp_path / 'test'), *opts],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'LiDARGenMetric protocol' in test.stdout + test.stderr
    metrics = _metrics(tmp_path / 'test')
    assert 0.0 <= metrics['voxel_iou'] <= 1.0 and metrics['chamfer'] > 0
    assert metrics['mmd'] >= 0 and 0 <= metrics['jsd'] <= 1


def test_jsd_with_an_empty_side_is_the_maximum():
    full = [bev_histogram(_cloud(100) * 3)]
    empty = [bev_histogram(torch.zeros(0, 3))]
    assert jsd(full, empty) == 1.0 and jsd(empty, empty) == 0.0
