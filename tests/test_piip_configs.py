"""The PIIP configs (configs/piip/): every config loads, passes the config checker and builds
(full sizes on the meta device: no weight is allocated); each tiny config trains a few
iterations through ``tools/train.py`` with a falling loss and is evaluated by ``tools/test.py``
(mmdet ``CocoMetric`` / mmseg ``IoUMetric``) on the tiny synthetic world's 2D exports.

The tools run in this process (``main(argv)``, the code path of the command line without a
second interpreter start), one thread, so the file stays within its time budget.
"""
import functools
import importlib
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import config as mmengine_config
from mmengine.registry import MODELS, DefaultScope

import holodrive.engine.config_check as config_check
from holodrive.engine.cli import import_project, prepare_config
from piip_det.flops_table import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'configs/piip').glob('*/*.py')
                 if p.parent.name != '_base_')
TINY = {'mask_rcnn': 'configs/piip/mask_rcnn/mask_rcnn_piip_tiny_synthetic.py',
        'dino': 'configs/piip/dino/dino_4scale_piip_tiny_synthetic.py',
        'upernet': 'configs/piip/upernet/upernet_piip_tiny_synthetic.py'}
#: config -> the FLOPs table row whose backbone it must use (training-only keys aside)
ROWS = {
    'mask_rcnn/mask_rcnn_piip_tsb_1568_1120_672_fpn_1x_coco': 'PIIP-TSB 1568/1120/672',
    'mask_rcnn/mask_rcnn_piip_tsb_1568_896_448_fpn_1x_coco': 'PIIP-TSB 1568/896/448',
    'mask_rcnn/mask_rcnn_piip_tsb_1120_896_448_fpn_1x_coco': 'PIIP-TSB 1120/896/448',
    'mask_rcnn/mask_rcnn_piip_sbl_1568_896_672_fpn_1x_coco': 'PIIP-SBL 1568/896/672',
    'mask_rcnn/mask_rcnn_piip_sbl_1344_896_448_fpn_1x_coco': 'PIIP-SBL 1344/896/448',
    'mask_rcnn/mask_rcnn_piip_sbl_1120_672_448_fpn_1x_coco': 'PIIP-SBL 1120/672/448',
    'mask_rcnn/mask_rcnn_piip_tsbl_1568_1120_672_448_fpn_1x_coco': 'PIIP-TSBL 1568/1120/672/448',
    'mask_rcnn/mask_rcnn_piip_h6b_1024_512_fpn_1x_coco': 'PIIP-H6B 1024/512',
    'mask_rcnn/mask_rcnn_vit_b_fpn_1x_coco': 'ViT-B @1024 (8 win-14 + 4 global)',
    'mask_rcnn/mask_rcnn_vit_l_fpn_1x_coco': 'ViT-L @1024 (16 win-14 + 8 global)',
    'mask_rcnn/mask_rcnn_internvit_6b_fpn_1x_coco': 'InternViT-6B @1024 (baseline)',
    **{f'upernet/upernet_piip_h6b_512_{low}_80k_ade20k': f'PIIP-H6B 512/{low} (ADE20K UperNet)'
       for low in (192, 256, 384, 512)},
}
BRANCH_TRAINING_KEYS = ('drop_path_rate', 'drop_path_schedule', 'with_cp')
#: + the registered type (the table's baselines are bare ViTs) and the baselines' nominal size
TRAINING_KEYS = BRANCH_TRAINING_KEYS + ('type', 'real_size')

import_project()


def _memoised(fn):
    """``fn`` with its results and ValueErrors cached by argument (mmengine signals a base
    config that is not in the metafiles with a ValueError, then builds its path)."""
    cache = {}

    @functools.wraps(fn)
    def wrapper(*args):
        if args not in cache:
            try:
                cache[args] = (fn(*args), None)
            except ValueError as err:
                cache[args] = (None, err)
        value, err = cache[args]
        if err is not None:
            raise err
        return value
    return wrapper


def _tool(name):
    path = ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'piip_tools_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope='module')
def in_process_tools():
    """One thread; restore mmengine's default scope afterwards (the runners and the checker
    set one, which would redirect unscoped registry lookups of later tests); mmengine re-reads
    all of mmdet's ~400 model-index metafiles for every ``mmdet::`` base (about 0.3 s each), so
    that lookup is memoised here (same result).
    """
    threads, scopes = torch.get_num_threads(), dict(DefaultScope._instance_dict)
    original_path = mmengine_config._get_external_cfg_path
    torch.set_num_threads(1)
    mmengine_config._get_external_cfg_path = _memoised(original_path)
    yield
    mmengine_config._get_external_cfg_path = original_path
    torch.set_num_threads(threads)
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(scopes)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmdet3d', 'holodrive'])
def test_piip_types_resolve_from_every_scope(scope):
    """``piip_det.PIIP`` / ``piip_det.ViTBaseline`` from mmdet, mmseg, mmdet3d and HoloDrive
    configs (mmseg's and mmdet3d's registries are siblings of mmdet's, not its parents)."""
    importlib.import_module(f'{scope}.registry')
    registry = MODELS._search_child(scope)
    for name in ('PIIP', 'ViTBaseline'):
        assert registry.get(f'piip_det.{name}').__name__ == name


def test_vit_baseline_gives_piips_pyramids_and_names_a_bad_key():
    torch.manual_seed(0)
    kw = dict(type='piip_det.ViTBaseline', embed_dim=32, depth=3, num_heads=2,
              pretrain_img_size=64, window_attn=[True, True, False], window_size=2)
    x = torch.randn(1, 3, 64, 96)
    with DefaultScope.overwrite_default_scope('mmdet'):
        simple = MODELS.build(kw)
        dino = MODELS.build(dict(kw, output_mode='dino'))
        with pytest.raises(ValueError, match='ViTBaseline window_sizes'):
            MODELS.build(dict(kw, window_sizes=2))
    with torch.no_grad():
        maps = simple(x)
        assert [m.shape[-2:] for m in maps] == [(64 // s, 96 // s) for s in (4, 8, 16, 32)]
        assert simple.out_strides == (4, 8, 16, 32) and dino.out_strides == (8, 16, 32)
        dino.load_state_dict(simple.state_dict(), strict=False)       # dino has no fpn1
        assert [m.shape[1] for m in dino(x)] == [32] * 3
        torch.testing.assert_close(dino(x)[1], maps[2])                # stride 16 = the ViT


def _build(cfg):
    with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.device('meta'):
        return MODELS.build(cfg.model)


def _neck_in_channels(cfg):
    if cfg.model.type == 'EncoderDecoder':
        return list(cfg.model.decode_head.in_channels)
    return list(cfg.model.neck.in_channels)


@pytest.mark.parametrize('path', CONFIGS, ids=[Path(p).stem for p in CONFIGS])
def test_config_loads_checks_and_builds_on_the_meta_device(path):
    cfg = config_check.load_config(path)
    config_check.check_config(cfg, path, check_paths=False)
    model = _build(cfg)
    backbone = model.backbone
    assert all(p.is_meta for p in backbone.parameters())
    # (DINO's level_embed is created with the legacy torch.Tensor(), which ignores the device)
    assert sum(p.numel() for p in model.parameters() if not p.is_meta) < 10_000
    assert type(backbone).__name__ == cfg.model.backbone.type.split('.')[-1]
    assert list(backbone.out_channels) == _neck_in_channels(cfg)
    # layer decay (official rule): num_layers = depth of branch1; skip_stride maps each
    # other branch's depth onto it
    optim = cfg.optim_wrapper
    assert optim.constructor == 'PIIPLayerDecayOptimizerConstructor'
    paramwise = optim.paramwise_cfg
    branches = [getattr(backbone, f'branch{j}') for j in range(1, 5)
                if hasattr(backbone, f'branch{j}')]
    assert paramwise.num_layers == branches[0].depth
    strides = paramwise.skip_stride
    strides = strides if isinstance(strides, (list, tuple)) else [strides] * (len(branches) - 1)
    assert [b.depth * s for b, s in zip(branches[1:], strides)] == \
        [branches[0].depth] * len(strides)
    if 'tiny' in path:           # CPU: fp32 (mmengine's AmpOptimWrapper asserts a GPU)
        assert optim.type == 'OptimWrapper'
    else:                        # the official runs train in bf16
        assert optim.type == 'AmpOptimWrapper' and optim.dtype == 'bfloat16'


def _architecture(backbone):
    """The backbone dict without its training-only keys (branches too)."""
    arch = {k: v for k, v in backbone.items() if k not in TRAINING_KEYS + ('branches',)}
    arch['branches'] = [{k: v for k, v in b.items() if k not in BRANCH_TRAINING_KEYS}
                        for b in backbone.get('branches', [])]
    return arch


@pytest.mark.parametrize('config, row', sorted(ROWS.items()))
def test_backbones_are_the_flops_table_variants(config, row):
    """The configs use the FLOPs table's backbone dicts (so get_flops.py counts what trains);
    the ADE20K H6B configs switch the interactions to the speed-up form (no projections,
    no norms) as the official ones do."""
    backbone = config_check.load_config(f'configs/piip/{config}.py').model.backbone.to_dict()
    expected = _architecture(next(v.backbone for v in VARIANTS if v.name == row))
    if config.startswith('upernet'):
        expected.update(interaction_proj=False, interaction_norm='none')
    assert _architecture(backbone) == expected


def test_full_configs_read_the_real_datasets_and_switch_with_data_root(tmp_path):
    coco = config_check.load_config(
        'configs/piip/mask_rcnn/mask_rcnn_piip_tsb_1568_1120_672_fpn_1x_coco.py')
    dataset = coco.train_dataloader.dataset
    assert (dataset.data_root, dataset.ann_file, dataset.data_prefix.img) == (
        'data/coco/', 'annotations/instances_train2017.json', 'train2017/')
    assert coco.test_evaluator.ann_file == 'data/coco/annotations/instances_val2017.json'
    assert coco.test_dataloader.dataset.data_prefix.img == 'val2017/'
    ade_path = 'configs/piip/upernet/upernet_piip_h6b_512_512_80k_ade20k.py'
    ade = config_check.load_config(ade_path).val_dataloader.dataset
    assert (ade.type, ade.data_root, ade.data_prefix.img_path) == (
        'ADE20KDataset', 'data/ade/ADEChallengeData2016', 'images/validation')
    switched = prepare_config(ade_path, cfg_options={'data_root': f'{tmp_path}/ade/'},
                              check_paths=False)
    assert switched.train_dataloader.dataset.data_root == f'{tmp_path}/ade/'


def _losses(work):
    (path,) = work.glob('*/vis_data/scalars.json')
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r['loss'] for r in sorted((r for r in rows if 'loss' in r), key=lambda r: r['step'])]


def _train_and_test(task, world, work):
    """tools/train.py then tools/test.py on the tiny world; the per-iteration losses and the
    test metrics (metrics.json of tools/test.py). Each run names its own visualizer: mmengine
    keeps one instance per name in a process, and the configs' is 'visualizer'."""
    config, data = TINY[task], f'data_root={world.root}/'
    _tool('train').main([config, '--work-dir', str(work), '--cfg-options', data,
                         f'visualizer.name=piip_{task}_train'])
    (ckpt,) = work.glob('iter_*.pth')
    _tool('test').main([config, str(ckpt), '--work-dir', str(work / 'test'), '--cfg-options',
                        data, f'visualizer.name=piip_{task}_test'])
    (metrics,) = (work / 'test').glob('*/metrics.json')
    return _losses(work), json.loads(metrics.read_text())


def _assert_falls(losses, iters=4):
    assert len(losses) == iters and all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < losses[0], losses


def test_tiny_mask_rcnn_trains_and_is_evaluated_with_coco_metric(tiny_world, tmp_path):
    losses, metrics = _train_and_test('mask_rcnn', tiny_world, tmp_path / 'mask_rcnn')
    _assert_falls(losses)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)


def test_tiny_dino_trains_and_is_evaluated_with_coco_metric(tiny_world, tmp_path):
    losses, metrics = _train_and_test('dino', tiny_world, tmp_path / 'dino')
    _assert_falls(losses)
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0 and 'coco/segm_mAP' not in metrics


def test_tiny_upernet_trains_and_is_evaluated_with_iou_metric(tiny_world, tmp_path):
    losses, metrics = _train_and_test('upernet', tiny_world, tmp_path / 'upernet')
    _assert_falls(losses)
    assert 0.0 <= metrics['mIoU'] <= 100.0 and 0.0 < metrics['aAcc'] <= 100.0
