"""Layout fidelity of ``tools/analysis_tools/camera_gen_benchmark.py``: the views that
``CameraGenMetric(save_dir=...)`` saves are written back into a copy of the world so that the
camera detector's own test pipeline gives back the same crops, and the detector is scored by
``tools/test.py`` (devkit) on both copies."""
import importlib.util
import math
import os.path as osp
import sys
import types

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DETECTOR = osp.join(ROOT, 'configs/bev_det/bev_det_piip_tiny_synthetic.py')


def _bench():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
    spec = importlib.util.spec_from_file_location(
        'camera_gen_benchmark', osp.join(ROOT, 'tools/analysis_tools/camera_gen_benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _detector_cfg(root):
    from holodrive.engine.cli import import_project, prepare_config
    import_project()
    return prepare_config(DETECTOR, cfg_options={'data_root': f'{root}/'}, check_paths=False)


def _crops(root):
    """``[(rgb uint8 (V, 3, H, W), data sample)]`` of the detector's val pipeline."""
    from holodrive.registry import DATASETS
    dataset = DATASETS.build(_detector_cfg(root).test_dataloader.dataset)
    out = []
    for idx in range(len(dataset)):
        item = dataset[idx]
        out.append((torch.as_tensor(item['inputs']['img']).flip(1).contiguous(),
                    item['data_samples']))
    return out


def test_saved_views_come_back_through_the_detector_pipeline(tiny_world, tmp_path):
    from holodrive.evaluation import CameraGenMetric
    work = tmp_path / 'bench'
    metric = CameraGenMetric(save_dir=str(work / 'trained' / 'views'))
    real_crops = _crops(tiny_world.root)
    assert real_crops and real_crops[0][0].shape[1:] == (3, 128, 256)
    for real, sample in real_crops:
        metric._save(sample, 255 - real, real)          # "generated": the negative image
    bench = _bench()
    args = types.SimpleNamespace(data_root=str(tiny_world.root), work_dir=str(work))
    for kind in ('real', 'gen'):
        back = _crops(bench.views_world(args, kind))
        assert len(back) == len(real_crops)
        for (img, sample), (real, src) in zip(back, real_crops):
            assert sample.metainfo['token'] == src.metainfo['token']
            expect = real if kind == 'real' else 255 - real
            diff = (img.float() - expect.float()).abs()
            # resampled twice (bicubic back, bilinear resize again) and JPEG at quality 95
            assert diff.mean() < 4.0 and diff.median() < 4.0, (kind, float(diff.mean()))
            other = 255 - expect
            assert (img.float() - other.float()).abs().mean() > 40
    # the source world keeps its real images
    again = _crops(tiny_world.root)
    assert torch.equal(again[0][0], real_crops[0][0])

    # the detector (random weights here) scored by tools/test.py on both copies
    from mmengine.registry import MODELS, DefaultScope
    cfg = _detector_cfg(tiny_world.root)
    with DefaultScope.overwrite_default_scope('holodrive'):
        model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'detector.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    args.detector, args.detector_config = str(ckpt), DETECTOR
    rows = bench.fidelity(args)
    for kind in ('real', 'gen'):
        for key in ('mAP', 'NDS', 'car_AP'):
            value = rows[kind][key]
            assert value is not None and math.isfinite(value) and 0 <= value <= 1, rows
    assert (work / 'detector_gen' / 'test.log').is_file()
    assert np.load(next((work / 'trained' / 'views').glob('*.npz')),
                   allow_pickle=False)['camera_names'].shape == (6,)
