"""The full-size camera BEV detector configs (PIIP-TSB / PIIP-SBL at 1600 x 640, ResNet-50 at
704 x 256) and their recipe parts: built on the meta device with the sizes they promise,
CBGS over a real scene dataset, image augmentation of the right output size, and layer-wise
lr decay applied to ``img_backbone`` only."""
from pathlib import Path

import pytest
import torch

from holodrive.engine.cli import import_project, prepare_config

import_project()
ROOT = Path(__file__).resolve().parents[1]
FULL = {'tsb': 'configs/bev_det/bev_det_piip_tsb_1600x640_nus.py',
        'sbl': 'configs/bev_det/bev_det_piip_sbl_1600x640_nus.py',
        'r50': 'configs/bev_det/bev_det_r50_704x256_nus.py'}


def _cfg(name, root='data/nuscenes'):
    from mmengine.registry import init_default_scope
    init_default_scope('holodrive')
    path = FULL.get(name, name)
    return prepare_config(str(ROOT / path), cfg_options={'data_root': f'{root}/'},
                          check_paths=False)


@pytest.mark.parametrize('name,image_size,feature_hw', [
    ('tsb', (640, 1600), (40, 100)), ('sbl', (640, 1600), (40, 100)),
    ('r50', (256, 704), (16, 44))])
def test_full_size_configs_build_with_the_promised_geometry(name, image_size, feature_hw):
    from piip_det.flops import empty_weights

    from holodrive.registry import MODELS
    cfg = _cfg(name)
    with empty_weights():
        model = MODELS.build(cfg.model)
    vt = model.view_transform
    assert vt.image_size == image_size and vt.feature_size == feature_hw
    assert vt.num_depth_bins == 118 and vt.grid.shape == (128, 128)
    final = [t for t in cfg.train_pipeline if t['type'] == 'MultiViewImageAug'][0]
    test = [t for t in cfg.test_pipeline if t['type'] == 'MultiViewImageAug'][0]
    assert tuple(final['final_size']) == tuple(test['final_size']) == image_size[::-1]
    assert final['flip_prob'] > 0 and final['rot_range'][1] > 0
    assert cfg.train_dataloader.dataset.type == 'CBGSDataset'
    assert cfg.train_dataloader.dataset.dataset.pipeline == cfg.train_pipeline
    # the FPN output the LSS uses has the neck's width and the transform's stride
    assert model.img_neck.out_channels == vt.in_channels
    if name != 'r50':
        branches = model.img_backbone.real_sizes
        assert branches[-1] == image_size[1] and branches == sorted(branches)


def test_piip_sbl_costs_more_than_tsb_at_the_same_input():
    from piip_det.flops import build_backbone, count_backbone
    gmacs = {}
    for name in ('tsb', 'sbl'):
        cfg = _cfg(name)
        report = count_backbone(build_backbone(cfg.model.img_backbone.to_dict()),
                                (1, 3, 640, 1600), as_built=False)
        gmacs[name] = report.paper_total / 1e9
    assert 50 < gmacs['tsb'] < gmacs['sbl'], gmacs


def test_cbgs_resamples_the_scene_dataset(tiny_world):
    from holodrive.registry import DATASETS
    cfg = _cfg('r50', tiny_world.root)
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.dataset.update(ann_file=str(tiny_world.root / 'nuscenes_infos_train.pkl'))
    cbgs = DATASETS.build(ds_cfg)
    base = cbgs.dataset
    assert type(base).__name__ == 'NuScenesSceneDataset'
    assert len(cbgs) >= len(base)
    sample = cbgs[0]
    img = sample['inputs']['img']
    assert tuple(img.shape[-2:]) == (256, 704), img.shape      # resized + cropped per config


def test_layer_decay_scales_only_the_image_backbone(tiny_world):
    import piip_det.optim  # noqa: F401  (registers the constructor, as custom_imports does)
    from mmengine.optim import build_optim_wrapper

    from holodrive.registry import MODELS
    cfg = _cfg('configs/bev_det/bev_det_piip_tiny_synthetic.py', tiny_world.root)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='PIIPLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=2, layer_decay_rate=0.5, backbone_name='img_backbone')))
    group_of = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    names = dict(model.named_parameters())
    # 2 blocks + 2: embeddings id 0, block i id i + 1, everything else id 3 (full lr)
    embed = group_of[id(names['img_backbone.branch1.pos_embed'])]
    block0 = group_of[id(names['img_backbone.branch1.blocks.0.attn.qkv.weight'])]
    head = group_of[id(names['bbox_head.shared_conv.conv.weight'])]
    bev = group_of[id(names['bev_backbone.blocks.0.0.weight'])]
    assert embed['lr'] == pytest.approx(1e-3 * 0.5 ** 3) and embed['weight_decay'] == 0
    assert block0['lr'] == pytest.approx(1e-3 * 0.5 ** 2)
    assert head['lr'] == bev['lr'] == pytest.approx(1e-3) and head['weight_decay'] == 0.05
    assert sum(len(g['params']) for g in wrapper.optimizer.param_groups) == len(names)
    assert all(torch.is_tensor(p) for g in wrapper.optimizer.param_groups for p in g['params'])


def test_oracle_depth_config_packs_lidar_depth_at_test_time_and_predicts(tiny_world):
    from mmengine.dataset import pseudo_collate

    from holodrive.registry import DATASETS, MODELS
    cfg = _cfg('configs/bev_det/bev_det_piip_tiny_oracle_depth_synthetic.py', tiny_world.root)
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.update(ann_file=str(tiny_world.root / 'nuscenes_infos_val.pkl'))
    sample = DATASETS.build(ds_cfg)[0]
    valid = sample['inputs']['depth_valid_s16']
    assert valid.shape == (6, 8, 16) and 0 < int(valid.sum()) < valid.numel()
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    assert model.view_transform.depth_source == 'lidar'
    batch = model.data_preprocessor(pseudo_collate([sample]), False)
    with torch.no_grad():
        _, out = model.extract_feat(batch['inputs'], batch['data_samples'])
        (pred,) = model.predict(batch['inputs'], batch['data_samples'])
    onehot = batch['inputs']['depth_bins_s16'][0].float()         # (V, D, h, w)
    cells = batch['inputs']['depth_valid_s16'][0].bool()
    torch.testing.assert_close(out['depth_probs'][0].permute(0, 2, 3, 1)[cells],
                               onehot.permute(0, 2, 3, 1)[cells])
    assert len(pred.pred_instances_3d.scores_3d) > 0


def test_teacher_forcing_hook_anneals_the_lift_of_the_config_model(tiny_world):
    """bev_det_piip_tiny_teacher_forcing_synthetic.py: the hook sets the LSS teacher-forcing
    weight from the iteration (1 -> 0 over the first half), a train-mode lift at weight 1 uses
    the packed LiDAR one-hot, and the hook refuses the oracle model."""
    from types import SimpleNamespace

    from mmengine.dataset import pseudo_collate
    from mmengine.logging import MessageHub

    from holodrive.registry import DATASETS, HOOKS, MODELS
    cfg = _cfg('configs/bev_det/bev_det_piip_tiny_teacher_forcing_synthetic.py', tiny_world.root)
    assert cfg.model.depth_loss.loss_weight == 10.0
    (hook_cfg,) = [h for h in cfg.custom_hooks if h['type'] == 'DepthTeacherForcingHook']
    hook = HOOKS.build(hook_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    hub = MessageHub.get_instance('test_teacher_forcing')
    runner = SimpleNamespace(model=model, iter=0, max_iters=1920, message_hub=hub)
    hook.before_train(runner)
    for it, expected in ((0, 1.0), (480, 0.5), (960, 0.0), (1919, 0.0)):
        runner.iter = it
        hook.before_train_iter(runner, 0)
        assert model.view_transform.teacher_forcing == pytest.approx(expected)
        assert hub.get_scalar('train/depth_teacher_forcing').current() == pytest.approx(expected)
    runner.iter = 0
    hook.before_train_iter(runner, 0)
    ds_cfg = cfg.train_dataloader.dataset
    sample = DATASETS.build(ds_cfg)[0]
    model.train()
    batch = model.data_preprocessor(pseudo_collate([sample]), True)
    with torch.no_grad():
        _, out = model.extract_feat(batch['inputs'], batch['data_samples'])
    cells = batch['inputs']['depth_valid_s16'][0].bool()
    assert int(cells.sum()) > 0
    torch.testing.assert_close(out['depth_probs'][0].permute(0, 2, 3, 1)[cells],
                               batch['inputs']['depth_bins_s16'][0].float()
                               .permute(0, 2, 3, 1)[cells])
    oracle = MODELS.build(_cfg('configs/bev_det/bev_det_piip_tiny_oracle_depth_synthetic.py',
                               tiny_world.root).model)
    with pytest.raises(ValueError, match="depth_source='net'"):
        hook.before_train(SimpleNamespace(model=oracle))
    with pytest.raises(ValueError, match='no LSSViewTransform'):
        hook.before_train(SimpleNamespace(model=torch.nn.Linear(2, 2)))


def test_512x256_config_geometry_head_width_and_world_resolution_check(tiny_world):
    """bev_det_piip_tiny_512x256_synthetic.py: 512x256 input (16 x 32 stride-16 cells per
    view), 16-wide CenterHead branches, and a world of another resolution is one line."""
    from holodrive.engine.config_check import ConfigError
    from holodrive.registry import DATASETS, MODELS
    cfg = _cfg('configs/bev_det/bev_det_piip_tiny_512x256_synthetic.py', tiny_world.root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.view_transform.image_size == (256, 512)
    assert model.view_transform.feature_size == (16, 32)
    assert model.img_backbone.real_sizes == [256, 512]
    branch = model.bbox_head.task_heads[0].heatmap
    assert branch[0].conv.out_channels == 16          # the hidden conv of one branch
    imgs = torch.randn(6, 3, 256, 512)
    feats = model.img_backbone(imgs)
    assert feats[cfg.model.img_in_indices[0]].shape[-2:] == (16, 32)   # stride 16
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    with pytest.raises(ConfigError, match=r'the config expects 640x360 camera images .*'
                                          r'--image-size 640 360'):
        ds[0]


def test_vit_512x256_twin_keeps_the_piip_config_but_the_backbone(tiny_world):
    """bev_det_vit_tiny_512x256_synthetic.py: a ViTBaseline at 512 wide input whose simple
    FPN gives the neck stride-16 maps of the same 16 x 32 cells; the rest is the PIIP
    config's (teacher hook, head width, 640x360 world check)."""
    from holodrive.registry import MODELS
    piip = _cfg('configs/bev_det/bev_det_piip_tiny_512x256_synthetic.py', tiny_world.root)
    cfg = _cfg('configs/bev_det/bev_det_vit_tiny_512x256_synthetic.py', tiny_world.root)
    assert cfg.model.img_backbone.type == 'piip_det.ViTBaseline'
    assert cfg.custom_hooks == piip.custom_hooks
    assert cfg.model.bbox_head == piip.model.bbox_head
    assert cfg.train_pipeline == piip.train_pipeline and cfg.test_pipeline == piip.test_pipeline
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    feats = model.img_backbone(torch.randn(2, 3, 256, 512))
    idx = model.img_in_indices or range(len(feats))
    maps = model.img_neck([feats[i] for i in idx])
    assert maps[model.img_out_index].shape[-2:] == model.view_transform.feature_size == (16, 32)
