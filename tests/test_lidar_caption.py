"""Caption conditioning of the masked-token LiDAR generator: zero-initialised cross-attention,
guidance with the empty caption, independent caption dropout, config errors, and the caption
config through tools/train.py and tools/generate.py."""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import holodrive.models  # noqa: F401
from holodrive.models.lidar_gen import BEVTokenTransformer
from holodrive.registry import MODELS
from tests.tool_loader import load_tool

ROOT = Path(__file__).resolve().parents[1]
CONFIG = 'configs/holodrive/lidar/lidar_generator_tiny_caption_synthetic.py'
# a smaller tokenizer and transformer than the tiny config (dict-valued overrides cannot go
# through --cfg-options, so the tool test writes them into a derived config file)
SMALL = {'model.tokenizer.encoder.bev_stages': [dict(channels=16, stride=2, num_blocks=1)],
         'model.tokenizer.encoder.sparse_stages': [dict(channels=4, stride=1, num_blocks=1),
                                                   dict(channels=8, stride=2, num_blocks=1)],
         'model.tokenizer.encoder.out_channels': 16, 'model.tokenizer.quantizer.code_dim': 16,
         'model.tokenizer.decoder.in_channels': 16, 'model.tokenizer.quantizer.num_codes': 32,
         'model.tokenizer.decoder.channels': 16, 'model.transformer.embed_dim': 32,
         'model.transformer.depth': 2, 'model.transformer.num_heads': 2}


@pytest.fixture(scope='module')
def caption_tokenizer(tmp_path_factory):
    from holodrive.models.camera_gen.text_encoder import train_caption_tokenizer
    out = tmp_path_factory.mktemp('caption_tok')
    texts = ['a two-lane road by day, two cars ahead', 'an intersection at night in the rain',
             'a wet road at dusk, a bus on the left, ego turning left'] * 4
    train_caption_tokenizer(texts, str(out), vocab_size=300)
    return str(out)


def _generator(tokenizer, **overrides):
    init_default_scope('holodrive')
    cfg = Config.fromfile(str(ROOT / CONFIG))
    cfg.merge_from_dict(SMALL)
    cfg.model.text_encoder.tokenizer = tokenizer
    cfg.model.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _perturb_cross_attention(transformer):
    for layer in transformer.layers:
        torch.nn.init.normal_(layer.multihead_attn.out_proj.weight, std=0.2)


def test_cross_attention_starts_as_identity_and_context_is_checked():
    torch.manual_seed(0)
    net = BEVTokenTransformer(num_codes=16, token_shape=(4, 4), embed_dim=32, depth=2,
                              num_heads=2, context_dim=8).eval()
    ids = torch.randint(0, 17, (2, 4, 4))
    a, b = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    torch.testing.assert_close(net(ids, context=a), net(ids, context=b))   # untrained: no-op
    _perturb_cross_attention(net)
    assert not torch.allclose(net(ids, context=a), net(ids, context=b))
    with pytest.raises(ValueError, match=r'context_dim=8\) got context None'):
        net(ids)
    with pytest.raises(ValueError, match=r'got context \(2, 5, 3\)'):
        net(ids, context=torch.randn(2, 5, 3))
    plain = BEVTokenTransformer(16, (4, 4), 32, 1, 2)
    with pytest.raises(ValueError, match='context_dim=0'):
        plain(ids, context=a)


def test_caption_guidance_dropout_and_config_errors(caption_tokenizer):
    gen = _generator(caption_tokenizer).eval()
    assert gen.transformer.context_dim == gen.text_encoder.hidden_size == 64
    _perturb_cross_attention(gen.transformer)
    g = torch.Generator().manual_seed(3)
    layout = (torch.rand(1, 10, 128, 128, generator=g) > 0.9).float()
    ids = torch.randint(0, 33, (1, 32, 32), generator=g)
    captions = ['an intersection at night in the rain']
    with torch.no_grad():
        context, empty = gen.context(captions, 1), gen.context(None, 1)
        cond = gen.transformer(ids, layout, context=context)
        uncond = gen.transformer(ids, torch.zeros_like(layout), context=empty)
        torch.testing.assert_close(gen._logits(ids, layout, context, empty, 3.0),
                                   uncond + 3.0 * (cond - uncond))
        other = gen.transformer(ids, layout, context=gen.context(['a two-lane road by day'], 1))
    assert not torch.allclose(cond, other), 'the caption does not reach the logits'
    tokens = gen.sample(layout, num_steps=2, captions=captions,
                        generator=torch.Generator().manual_seed(1))
    again = gen.sample(layout, num_steps=2, captions=captions,
                       generator=torch.Generator().manual_seed(1))
    assert torch.equal(tokens, again)

    seen = []
    encode = gen.text_encoder.forward
    gen.text_encoder.forward = lambda texts: seen.extend(texts) or encode(texts)
    from mmdet3d.structures import Det3DDataSample
    samples = [Det3DDataSample(metainfo=dict(caption=c)) for c in ('a bus ahead', 'two cars')]
    points = [torch.randn(500, 5) * 10 for _ in samples]
    inputs = dict(points=points, map_bev=torch.zeros(2, 6, 128, 128),
                  box_bev=layout[:, :4].repeat(2, 1, 1, 1))
    gen.train()
    gen.condition_dropout = 0.0
    gen.loss(inputs, samples)['loss_token'].backward()
    assert seen == ['a bus ahead', 'two cars']
    assert gen.transformer.layers[0].multihead_attn.out_proj.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in gen.text_encoder.parameters()), 'the text encoder gets no gradient'
    seen.clear()
    gen.condition_dropout = 1.0
    gen.loss(inputs, samples)
    assert seen == ['', '']

    with pytest.raises(ValueError, match='transformer.context_dim=32 but the text encoder has 64'):
        _generator(caption_tokenizer, transformer=dict(
            type='BEVTokenTransformer', embed_dim=32, depth=1, num_heads=2, layout_channels=10,
            layout_stride=4, context_dim=32))
    with pytest.raises(ValueError, match='needs model.text_encoder'):
        _generator(caption_tokenizer, text_encoder=None)


def test_caption_config_trains_and_generates_through_the_tools(
        tiny_world, tmp_path, caption_tokenizer, capsys):
    small = Config.fromfile(str(ROOT / CONFIG))
    small.merge_from_dict(SMALL)
    config = str(tmp_path / 'caption_small.py')
    small.dump(config)
    opts = ['--cfg-options', f'data_root={tiny_world.root}/',
            f'model.text_encoder.tokenizer={caption_tokenizer}', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=2', 'train_dataloader.batch_size=4',
            'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
            'default_hooks.logger.interval=1', 'model.num_steps=2']
    load_tool('tools/train.py').main([config, '--work-dir', str(tmp_path), *opts])
    ckpt = tmp_path / 'epoch_1.pth'
    weights = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert any(k.startswith('text_encoder.text_model.') for k in weights)
    assert any('.multihead_attn.' in k for k in weights)
    layout = tmp_path / 'layout.json'
    layout.write_text(json.dumps({
        'caption': 'a two-lane road by day, a car ahead',
        'boxes': [{'name': 'car', 'center': [8, 2, -1.8], 'size': [4.5, 1.9, 1.6], 'yaw': 0.3}]}))
    generate = load_tool('tools/generate.py')
    argv = ['--modality', 'lidar', config, str(ckpt), '--out-dir', str(tmp_path / 'gen'),
            '--num-steps', '1', *opts]
    capsys.readouterr()
    generate.main(argv[:4] + ['--layout-json', str(layout)] + argv[4:])
    out = capsys.readouterr().out
    assert "caption: 'a two-lane road by day, a car ahead'" in out
    assert (tmp_path / 'gen' / 'layout.pcd.bin').is_file()
    generate.main(argv[:4] + ['--data-root', str(tiny_world.root), '--sample-idx', '0',
                              '--caption', 'an intersection at night'] + argv[4:])
    assert "caption: 'an intersection at night'" in capsys.readouterr().out
