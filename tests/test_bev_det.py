"""The camera-only BEV detector (``BEVDet``, configs/bev_det/): built from its config, trained
on a real packed batch of the tiny world, through tools/train.py and tools/test.py (devkit
metric), one-line errors for bad batches, and the temporal warp by a known ego motion."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.dataset import pseudo_collate

from holodrive.engine.cli import import_project, prepare_config

import_project()
ROOT = Path(__file__).resolve().parents[1]
PIIP = 'configs/bev_det/bev_det_piip_tiny_synthetic.py'
VIT = 'configs/bev_det/bev_det_vit_tiny_synthetic.py'
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')


def _cfg(root, config=PIIP):
    from mmengine.registry import init_default_scope
    init_default_scope('holodrive')
    return prepare_config(str(ROOT / config), cfg_options={'data_root': f'{root}/'},
                          check_paths=False)


def _batch(cfg, model, n=2):
    from holodrive.registry import DATASETS
    ds_cfg = cfg.train_dataloader.dataset
    ds = DATASETS.build(ds_cfg)
    data = pseudo_collate([ds[i] for i in range(n)])
    return model.data_preprocessor(data, training=True)


@pytest.fixture(scope='module')
def piip_model(tiny_world):
    from holodrive.registry import MODELS
    cfg = _cfg(tiny_world.root)
    torch.manual_seed(0)
    return cfg, MODELS.build(cfg.model)


def test_forward_backward_on_a_packed_batch(piip_model):
    cfg, model = piip_model
    model.train()
    batch = _batch(cfg, model)
    inputs = batch['inputs']
    assert inputs['imgs'].shape == (2, 6, 3, 128, 256)
    assert inputs['depth_bins_s16'].shape == (2, 6, 52, 8, 16)
    losses = model.loss(inputs, batch['data_samples'])
    assert 'loss_depth' in losses and 'task0.loss_heatmap' in losses
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    for part in ('img_backbone', 'img_neck', 'view_transform', 'bev_backbone', 'bbox_head'):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part)
                 and p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part
    model.eval()
    with torch.no_grad():
        (pred, *_) = model.predict(inputs, batch['data_samples'])
    boxes = pred.pred_instances_3d
    assert boxes.bboxes_3d.tensor.shape[1] == 9 and len(boxes.scores_3d) == len(boxes.labels_3d)


def test_bad_batches_give_one_line_naming_key_and_sample(piip_model):
    from holodrive.models.detectors import BEVDetInputError
    cfg, model = piip_model
    model.eval()
    batch = _batch(cfg, model, n=1)
    token = batch['data_samples'][0].metainfo['token']
    cases = {
        'cam2img': lambda x: x.pop('cam2img'),
        'imgs': lambda x: x.update(imgs=x['imgs'][:, :5]),       # a missing camera
        'image_size': lambda x: x.update(imgs=x['imgs'][..., :96, :]),
    }
    for name, corrupt in cases.items():
        inputs = dict(batch['inputs'])
        corrupt(inputs)
        with pytest.raises(BEVDetInputError) as err, torch.no_grad():
            model.predict(inputs, batch['data_samples'])
        msg = str(err.value)
        assert '\n' not in msg and token in msg, msg
        assert ("'cam2img'" if name == 'cam2img' else "'imgs'") in msg, msg


@pytest.mark.parametrize('piip, vit, hw', [
    (PIIP, VIT, (128, 256)),
    ('configs/bev_det/bev_det_piip_tiny_512x256_synthetic.py',
     'configs/bev_det/bev_det_vit_tiny_512x256_synthetic.py', (256, 512))])
def test_vit_baseline_config_has_about_the_piip_backbone_flops(piip, vit, hw):
    """Each ViT baseline is within 15 % of its PIIP twin's backbone MACs at their input."""
    from mmengine.config import Config

    from piip_det.flops import build_backbone, count_backbone
    gmacs = {}
    for path in (piip, vit):
        cfg = Config.fromfile(str(ROOT / path))
        assert tuple(cfg.model.view_transform.image_size) == hw
        report = count_backbone(build_backbone(cfg.model.img_backbone), (1, 3) + hw,
                                as_built=False)
        gmacs[path] = sum(report.paper.values())
    ratio = gmacs[vit] / gmacs[piip]
    assert 0.85 < ratio < 1.15, gmacs


def test_temporal_warp_moves_a_bev_feature_by_the_ego_motion():
    from holodrive.models.detectors import TemporalBEVFusion, warp_bev
    from holodrive.datasets.transforms.bev import BEVGrid
    grid = BEVGrid(x_range=(-8.0, 8.0), y_range=(-8.0, 8.0), resolution=1.0)
    prev = torch.zeros(1, 1, 16, 16)
    prev[0, 0, 8 + 2, 8 + 3] = 1.0           # cell centred at x = 3.5, y = 2.5 (previous frame)
    # previous frame -> current frame: rotate 90 deg about z, then move 1 m forward (+x)
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    prev2cur = torch.tensor([[[c, -s, 0, 1.0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]])
    out = warp_bev(prev, prev2cur, grid)
    # (3.5, 2.5) -> rotated (-2.5, 3.5) -> moved (-1.5, 3.5): column 6, row 11
    i, j = divmod(int(out[0, 0].argmax()), 16)
    assert (i, j) == (11, 6) and out[0, 0, i, j] > 0.99
    assert torch.allclose(warp_bev(prev, torch.eye(4)[None], grid), prev)
    fusion = TemporalBEVFusion(in_channels=1, out_channels=4,
                               bev_grid=dict(x_range=(-8.0, 8.0), y_range=(-8.0, 8.0),
                                             resolution=1.0))
    assert fusion(torch.zeros_like(prev), prev, prev2cur).shape == (1, 4, 16, 16)


def _losses(work):
    (path,) = work.glob('*/vis_data/scalars.json')
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r['loss'] for r in sorted((r for r in rows if 'loss' in r), key=lambda r: r['step'])]


def _opts(root, epochs):
    return ['--cfg-options', f'data_root={root}/', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs + 1}', f'param_scheduler.1.T_max={epochs}',
            f'param_scheduler.1.end={epochs}', 'param_scheduler.0.end=2',
            'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
            'default_hooks.logger.interval=1', 'log_processor.window_size=1']


def test_train_and_test_tools(tiny_world, tmp_path):
    """A few iterations through tools/train.py on the 4 val keyframes: the loss falls;
    tools/test.py scores the checkpoint with the devkit metric."""
    epochs = 4
    opts = _opts(tiny_world.root, epochs) + [
        'train_dataloader.dataset.ann_file=nuscenes_infos_val.pkl']
    proc = subprocess.run([sys.executable, 'tools/train.py', PIIP, '--work-dir', str(tmp_path),
                           *opts], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = _losses(tmp_path)
    assert len(losses) == 2 * epochs, losses
    assert sum(losses[-2:]) < 0.9 * sum(losses[:2]), losses
    ckpt = str(tmp_path / f'epoch_{epochs}.pth')
    test = subprocess.run([sys.executable, 'tools/test.py', PIIP, ckpt,
                           '--work-dir', str(tmp_path / 'test'), *opts],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    (saved,) = (tmp_path / 'test').glob('*/metrics.json')
    metrics = {k.rsplit('/', 1)[-1]: v for k, v in json.loads(saved.read_text()).items()}
    for key in ('mAP', 'NDS', 'car_AP_dist_2.0'):
        assert 0.0 <= metrics[key] <= 1.0, metrics


def test_image_size_mismatch_is_one_error_line_through_train_py(tiny_world, tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', PIIP, '--work-dir', str(tmp_path),
         *_opts(tiny_world.root, 1), 'model.view_transform.image_size=[144,256]'],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith('error:')]
    assert "inputs['imgs']" in line and 'image_size' in line and 'sample' in line, line
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]


def test_visualize_tool_draws_the_detector_views(piip_model, tiny_world, tmp_path):
    """tools/visualize.py --config --checkpoint runs the detector and writes the BEV / energy /
    depth figure next to the camera grid; the expected depth lies inside the configured bins."""
    cfg, model = piip_model
    ckpt = tmp_path / 'random.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    proc = subprocess.run(
        [sys.executable, 'tools/visualize.py', '--data-root', str(tiny_world.root),
         '--info', str(tiny_world.infos['val']), '--out-dir', str(tmp_path / 'vis'), '--num', '1',
         '--no-layout', '--config', PIIP, '--checkpoint', str(ckpt), '--score-thr', '0.0',
         '--depth-camera', 'CAM_BACK'],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / 'vis').glob('*_bev_det.png'))) == 1
    assert len(list((tmp_path / 'vis').glob('*_cameras.jpg'))) == 1
    assert 'boxes >= 0.0' in proc.stdout

    from holodrive.registry import DATASETS
    from holodrive.visualization.bev_det_views import bev_det_figure, bev_det_outputs
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    model.eval()
    out = bev_det_outputs(model, ds[0], score_thr=0.0)
    assert out['images'].shape == (6, 128, 256, 3) and out['images'].dtype.name == 'uint8'
    assert out['depth_m'].shape == (6, 8, 16)
    assert (out['depth_m'] > 1.0).all() and (out['depth_m'] < 53.0).all()
    assert out['bev_energy'].shape == (64, 64) and out['pred_boxes'].shape[1] == 7
    assert out['camera_names'][0] == 'CAM_FRONT'
    with pytest.raises(ValueError, match='CAM_TOP'):
        bev_det_figure(out, camera='CAM_TOP')
    missing = subprocess.run(
        [sys.executable, 'tools/visualize.py', '--data-root', str(tiny_world.root),
         '--info', str(tiny_world.infos['val']), '--out-dir', str(tmp_path / 'vis2'),
         '--no-layout', '--config', PIIP, '--checkpoint', str(tmp_path / 'nope.pth')],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and 'nope.pth: checkpoint not found' in missing.stderr


def test_temporal_config_trains_and_predicts_with_the_previous_keyframe(tiny_world):
    """The temporal config end to end on packed batches: the previous keyframe's images are
    packed with their own geometry, the fusion conv gets gradients, the previous frame's
    images change the BEV features, and predict runs with the neighbour."""
    from holodrive.registry import MODELS
    temporal = 'configs/bev_det/bev_det_piip_tiny_temporal_synthetic.py'
    cfg = _cfg(tiny_world.root, temporal)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    batch = _batch(cfg, model)
    inputs, samples = batch['inputs'], batch['data_samples']
    prev = inputs['adjacent'][0]
    assert prev['imgs'].shape == inputs['imgs'].shape == (2, 6, 3, 128, 256)
    assert prev['img_aug_matrix'].shape == (2, 6, 4, 4)
    assert all(len(s.metainfo['adjacent_adj2cur_lidar']) == 1 for s in samples)
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    fusion = [p.grad for p in model.temporal_fusion.parameters()]
    assert all(g is not None for g in fusion) and any(g.abs().sum() > 0 for g in fusion)
    # the previous frame changes the output: its images matter through the warped BEV
    model.eval()
    with torch.no_grad():
        feats, _ = model.extract_feat(inputs, samples)
        prev['imgs'] = torch.zeros_like(prev['imgs'])
        feats_zero, _ = model.extract_feat(inputs, samples)
        assert not torch.allclose(feats[0], feats_zero[0])
        (pred, *_) = model.predict(batch['inputs'], samples)
    assert pred.pred_instances_3d.bboxes_3d.tensor.shape[1] == 9
