"""Registries mix our modules with mmdet3d/mmdet ones; the visualize tool writes pictures."""
import subprocess
import sys
from pathlib import Path

import numpy as np

import holodrive.registry as hreg
import piip_det.registry as preg
from holodrive.engine.cli import import_project

ROOT = Path(__file__).resolve().parents[1]
import_project()


def test_holodrive_registries_reach_mmdet3d_and_mmdet():
    from mmengine.registry import init_default_scope
    init_default_scope('holodrive')
    assert hreg.MODELS.parent.scope == 'mmdet3d'
    assert hreg.DATASETS.get('NuScenesSceneDataset').__name__ == 'NuScenesSceneDataset'
    assert hreg.DATASETS.get('NuScenesDataset').__module__.startswith('mmdet3d')  # parent
    assert hreg.MODELS.get('CenterPoint').__module__.startswith('mmdet3d')
    assert hreg.MODELS.get('mmdet.GaussianFocalLoss').__module__.startswith('mmdet')  # other scope
    assert hreg.HOOKS.get('StepSeedHook').__module__ == 'holodrive.engine.hooks'


def test_piip_registry_is_a_child_of_mmdet():
    assert preg.MODELS.scope == 'piip_det' and preg.MODELS.parent.scope == 'mmdet'
    assert preg.MODELS.get('ResNet').__module__.startswith('mmdet')


def test_visualize_tool_writes_camera_grid_and_bev(tiny_world, tmp_path):
    info = tiny_world.infos['val']
    proc = subprocess.run(
        [sys.executable, 'tools/visualize.py', '--data-root', str(tiny_world.root), '--info', str(info),
         '--out-dir', str(tmp_path), '--num', '1'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import cv2
    grids = list(tmp_path.glob('*_cameras.jpg'))
    bevs = list(tmp_path.glob('*_bev.png'))
    assert len(grids) == 1 and len(bevs) == 1
    grid = cv2.imread(str(grids[0]))
    # 2 rows of cameras, 2 rows of layout images (half size, upscaled to the tile width:
    # same height), then the caption strip
    assert grid.shape[1] == 3 * 320 and grid.shape[0] > 4 * 180
    cams, layout, caption = grid[:360], grid[360:720], grid[720:]
    # green ground-truth box edges were drawn on the camera views
    green = (cams[:, :, 1] > 180) & (cams[:, :, 0] < 90) & (cams[:, :, 2] < 90)
    assert green.sum() > 50
    # the layout rows show the drivable area (BGR 80, 70, 70) and boxes (vehicles: blue)
    drivable = (np.abs(layout.astype(int) - [80, 70, 70]).max(-1) < 12).mean()
    vehicles = ((layout[:, :, 0] > 200) & (layout[:, :, 2] < 80)).sum()
    assert drivable > 0.05 and vehicles > 50
    # white caption text on black
    assert (caption > 200).any() and (caption < 30).mean() > 0.6


def test_visualize_tool_missing_info_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/visualize.py', '--data-root', str(tmp_path), '--info',
         str(tmp_path / 'none.pkl'), '--out-dir', str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'error: {tmp_path / "none.pkl"}: info file not found (run tools/create_data.py)']


def test_open3d_render_draws_ground_truth_green_and_predictions_red(tmp_path):
    """Headless open3d (Vulkan lavapipe, installed by tools/install.sh) renders both box sets."""
    import cv2

    from holodrive.visualization.open3d_render import render_points

    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-20, 20, (2000, 2)), rng.uniform(-1.5, 0, (2000, 1))], 1)
    gt = np.array([[5.0, 0.0, -1.0, 4.5, 1.9, 1.6, 0.3]], np.float32)
    pred = np.array([[-5.0, 5.0, -1.0, 4.5, 1.9, 1.6, -0.4]], np.float32)
    out = tmp_path / 'points3d.png'
    assert render_points(points, gt, str(out), pred_boxes_lidar=pred)
    img = cv2.imread(str(out))
    assert img.shape == (720, 960, 3)
    assert (img[0, 0] == 255).all()   # white background, no tone mapping
    b, g, r = (img[:, :, i].astype(int) for i in range(3))
    green = np.argwhere(g - np.maximum(r, b) > 60)   # ground-truth edges
    red = np.argwhere(r - np.maximum(g, b) > 60)     # prediction edges
    assert len(green) > 30 and len(red) > 30
    # two separate boxes, 11 m apart in the scene
    assert np.linalg.norm(green.mean(0) - red.mean(0)) > 50
