"""Masked-token LiDAR generator: transformer + adapter, MaskGIT sampling, frozen tokenizer,
errors, and tools/train.py + tools/test.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import holodrive.models  # noqa: F401
from holodrive.models.lidar_gen import BEVTokenTransformer, LayoutError
from holodrive.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
CONFIG = 'configs/holodrive/lidar/lidar_generator_tiny_synthetic.py'


def _small_generator(**overrides):
    init_default_scope('holodrive')
    cfg = Config.fromfile(str(ROOT / CONFIG)).model
    tok = cfg.tokenizer
    tok.encoder.bev_stages = [dict(channels=16, stride=2, num_blocks=1)]
    tok.encoder.sparse_stages = [dict(channels=4, stride=1, num_blocks=1),
                                 dict(channels=8, stride=2, num_blocks=1)]
    tok.encoder.out_channels = tok.quantizer.code_dim = tok.decoder.in_channels = 16
    tok.quantizer.num_codes = 32
    tok.decoder.channels = 16
    cfg.transformer.update(embed_dim=32, depth=2, num_heads=2)
    cfg.update(overrides)
    return MODELS.build(cfg)


def test_zero_initialised_adapter_and_external_residuals():
    torch.manual_seed(0)
    net = BEVTokenTransformer(num_codes=16, token_shape=(4, 4), embed_dim=32, depth=2,
                              num_heads=2, layout_channels=3, layout_stride=4).eval()
    ids = torch.randint(0, 17, (2, 4, 4))
    layout = (torch.rand(2, 3, 16, 16) > 0.5).float()
    base = net(ids)
    assert base.shape == (2, 4, 4, 16)
    torch.testing.assert_close(net(ids, layout), base)      # untrained adapter: no change
    torch.nn.init.normal_(net.layout_adapter.proj[1].weight)
    assert not torch.allclose(net(ids, layout), base)
    assert not torch.allclose(net(ids, None, torch.randn(2, 16, 32)), base)
    with pytest.raises(ValueError, match='disagree'):
        net(torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match='power of two'):
        BEVTokenTransformer(16, (4, 4), 32, 1, 2, layout_channels=3, layout_stride=3)


def test_generator_freezes_the_tokenizer_and_samples_reproducibly():
    gen = _small_generator()
    before = {k: v.clone() for k, v in gen.tokenizer.state_dict().items()}
    gen.init_weights()                        # what the runner calls before training
    after = gen.tokenizer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    gen.train()
    assert not gen.tokenizer.training and not any(
        p.requires_grad for p in gen.tokenizer.parameters())
    g = torch.Generator().manual_seed(3)
    layout = (torch.rand(1, 10, 128, 128, generator=g) > 0.9).float()
    gen.eval()
    mask_id = gen.transformer.mask_id
    a = gen.sample(layout, num_steps=3, generator=torch.Generator().manual_seed(1))
    b = gen.sample(layout, num_steps=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (1, *gen.tokenizer.token_shape)
    assert (a != mask_id).all() and a.max() < gen.transformer.num_codes
    steps = []
    gen.sample(layout, num_steps=4, progress=lambda: steps.append(1))
    assert len(steps) == 4
    # blank-code suppression: a large negative offset removes the blank code
    gen.blank_logit_offset = -1e9
    assert (gen.sample(layout, num_steps=2) != int(gen.blank_code)).all()
    gen.check_layout(layout)
    with pytest.raises(LayoutError, match='empty'):
        gen.check_layout(torch.zeros(1, 10, 128, 128))
    points = gen.generate_points(a)
    assert points[0].shape[1] == 5


def test_codebook_mismatch_is_one_clear_error():
    init_default_scope('holodrive')
    cfg = Config.fromfile(str(ROOT / CONFIG)).model
    cfg.transformer.num_codes = 100
    with pytest.raises(ValueError, match='num_codes=100 but the tokenizer has 512'):
        MODELS.build(cfg)
    gen = _small_generator()
    with pytest.raises(ValueError, match='codebook'):
        gen.tokenizer.decode_tokens(torch.full((1, 32, 32), 99))
    with pytest.raises(LayoutError, match='box_bev'):
        gen.layout({'map_bev': torch.zeros(1, 6, 128, 128)})


def test_generator_trains_and_is_scored_through_the_tools(tiny_world, tmp_path):
    epochs = 4
    opts = ['--cfg-options', f'data_root={tiny_world.root}/', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs + 1}', f'param_scheduler.1.T_max={epochs}',
            f'param_scheduler.1.end={epochs}', 'param_scheduler.0.end=2',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'val_dataloader.num_workers=0', 'default_hooks.logger.interval=1',
            'log_processor.window_size=1', 'model.num_steps=2']
    proc = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                           *opts], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (log,) = tmp_path.glob('*/vis_data/scalars.json')
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    losses = [r['loss_token'] for r in rows if 'loss_token' in r]
    assert len(losses) == 2 * epochs and sum(losses[-2:]) < sum(losses[:2]), losses
    test = subprocess.run([sys.executable, 'tools/test.py', CONFIG,
                           str(tmp_path / f'epoch_{epochs}.pth'), '--work-dir',
                           str(tmp_path / 'test'), *opts],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    (saved,) = (tmp_path / 'test').glob('*/metrics.json')
    metrics = {k.rsplit('/', 1)[-1]: v for k, v in json.loads(saved.read_text()).items()}
    assert {'voxel_iou', 'chamfer', 'mmd', 'jsd'} <= set(metrics)
