"""The camera generator end to end on the tiny world: the caption corpus tool, the VAE and the
denoiser trained through tools/train.py, the pipeline with several schedulers, guidance per
condition, seeds, save_pretrained / from_pretrained, and the config errors."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

# one worker runs this module, so the trained fixture is built once (--dist loadgroup)
pytestmark = pytest.mark.xdist_group('camera_gen_model')
ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
CAM = 'configs/holodrive/camera/'


# session scope: the group's tests stay on one worker, but other modules' tests may run
# between them, and a module-scoped fixture would then be built again
@pytest.fixture(scope='session')
def caption_world(tiny_world):
    proc = subprocess.run([sys.executable, 'tools/create_data.py', 'captions', '--root-path',
                           str(tiny_world.root), '--vocab-size', '400'],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tiny_world


def _cfg(name, root, **extra):
    from holodrive.engine.cli import import_project, prepare_config
    import_project()
    init_default_scope('holodrive')
    return prepare_config(str(ROOT / CAM / name), cfg_options={'data_root': f'{root}/', **extra},
                          check_paths=False)


def _batch(cfg, model, idx=0):
    from holodrive.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return model.data_preprocessor(pseudo_collate([dataset[idx]]), training=False)


def test_caption_corpus_and_tokenizer(caption_world):
    from transformers import AutoTokenizer
    root = caption_world.root
    lines = (root / 'captions_train.txt').read_text().splitlines()
    assert len(lines) == len(__import__('mmengine').load(
        str(root / 'nuscenes_infos_train.pkl'))['data_list'])
    token, caption = lines[0].split('\t')
    assert len(token) == 32 and caption.startswith(('a ', 'an '))
    tok = AutoTokenizer.from_pretrained(str(root / 'caption_tokenizer'))
    ids = tok(caption.lower()).input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == caption.lower()


@pytest.fixture(scope='session')
def trained(caption_world, tmp_path_factory):
    """The tiny VAE (1 epoch, then its validation: CameraReconMetric on the val split) and the
    tiny denoiser (1 epoch) through tools/train.py, on 2 train keyframes each."""
    work = tmp_path_factory.mktemp('camgen')
    root = caption_world.root
    runs = [(CAM + 'camera_vae_tiny_synthetic.py', work / 'vae', ['train_cfg.val_interval=1']),
            (CAM + 'camera_gen_tiny_synthetic.py', work / 'gen',
             [f'model.vae_checkpoint={work}/vae/epoch_1.pth'])]
    for config, out, extra in runs:
        proc = subprocess.run(
            [sys.executable, 'tools/train.py', config, '--work-dir', str(out), '--cfg-options',
             f'data_root={root}/', 'train_cfg.max_epochs=1', 'param_scheduler.1.T_max=1',
             'param_scheduler.1.end=1', 'train_dataloader.dataset.indices=2', *extra],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        (out / 'train_output.txt').write_text(proc.stdout + proc.stderr)
    return work


def test_vae_is_scored_by_its_metric(trained):
    """The VAE config's evaluator (the one tools/test.py runs) scores the val split."""
    import re
    out = (trained / 'vae' / 'train_output.txt').read_text()
    assert 'CameraReconMetric protocol (4 samples, 24 views)' in out, out[-2000:]
    psnr = float(re.search(r'camera/psnr: ([0-9.]+)', out).group(1))
    assert 3.0 < psnr < 60.0, psnr


def _pipeline_and_inputs(caption_world, trained):
    from mmengine.runner import load_checkpoint

    from holodrive.models.camera_gen import neighbour_views
    from holodrive.pipelines import MultiViewDrivePipeline
    from holodrive.registry import MODELS
    cfg = _cfg('camera_gen_tiny_synthetic.py', caption_world.root)
    cfg.model.vae_checkpoint = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(trained / 'gen' / 'epoch_1.pth'), map_location='cpu',
                    logger='silent')
    model.eval()
    data = _batch(cfg, model)
    inp = data['inputs']
    kw = dict(cam2img=inp['cam2img'], cam2lidar=inp['cam2lidar'],
              img_aug_matrix=inp['img_aug_matrix'], layout_images=inp['layout_images'],
              captions=[data['data_samples'][0].metainfo['caption']],
              neighbours=neighbour_views(inp['camera_ring'], inp['camera_adjacency']))
    return MultiViewDrivePipeline.from_model(model), kw, model, data


def test_trained_denoiser_samples_with_every_scheduler_and_is_seeded(caption_world, trained,
                                                                     tmp_path):
    from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler,
                           EulerDiscreteScheduler, UniPCMultistepScheduler)
    pipe, kw, model, _ = _pipeline_and_inputs(caption_world, trained)
    out = pipe(**kw, num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert out['images'].shape == (1, 6, 3, 128, 256)
    assert out['depth_logits'].shape == (1, 6, 30, 16, 32)
    assert 0 <= float(out['images'].min()) and float(out['images'].max()) <= 1
    again = pipe(**kw, num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again['images'], out['images'])                     # seeded
    other = pipe(**kw, num_inference_steps=3, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(other['images'], out['images'])
    for sched in (DPMSolverMultistepScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler):
        pipe.scheduler = sched.from_config(pipe.scheduler.config)
        res = pipe(**kw, num_inference_steps=3, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(res['images']).all(), sched.__name__
    # the whole pipeline round-trips through save_pretrained / from_pretrained
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.save_pretrained(tmp_path / 'pipe')
    from holodrive.pipelines import MultiViewDrivePipeline
    loaded = MultiViewDrivePipeline.from_pretrained(str(tmp_path / 'pipe'))
    res = loaded(**kw, num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(res['images'], out['images'], atol=1e-5)


def test_dropping_a_condition_changes_the_output(caption_world, trained):
    pipe, kw, model, _ = _pipeline_and_inputs(caption_world, trained)
    # train-time zero-initialised parts have moved after one epoch; make the layout and
    # camera paths clearly non-zero so each condition matters
    with torch.no_grad():
        for zero in pipe.layout_adapter.zero_convs:
            torch.nn.init.normal_(zero.weight, std=0.05)
        torch.nn.init.normal_(pipe.denoiser.unet.class_embedding.linear_2.weight, std=0.05)
    seed = dict(num_inference_steps=2)
    ref = pipe(**kw, **seed, generator=torch.Generator().manual_seed(0))['images']
    for cond in ('text', 'boxes', 'map', 'camera'):
        dropped = pipe(**kw, **seed, condition_scales={cond: 0.0},
                       generator=torch.Generator().manual_seed(0))['images']
        assert not torch.allclose(dropped, ref, atol=1e-6), cond
    kept = pipe(**kw, **seed, condition_scales={c: 1.0 for c in ('text', 'boxes')},
                generator=torch.Generator().manual_seed(0))['images']
    assert torch.equal(kept, ref)
    boosted = pipe(**kw, **seed, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(boosted['images'], ref)
    with pytest.raises(ValueError, match='unknown condition'):
        pipe(**kw, **seed, condition_scales={'lidar': 0.0})


def test_predict_samples_every_keyframe_seeded_by_its_token(caption_world, trained):
    """predict() (what tools/test.py runs): the same keyframe gives the same frame whatever the
    batch, another seed another frame; the scores' inputs are all there."""
    _, _, model, data = _pipeline_and_inputs(caption_world, trained)
    model.sample_cfg.update(steps=2, scheduler='ddim')
    first = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))[0]
    assert first.gen_imgs.shape == first.real_imgs.shape == (6, 3, 128, 256)
    assert first.gen_imgs.dtype == torch.uint8 and first.cam2img_aug.shape == (6, 3, 3)
    assert first.gen_depth.shape == first.real_depth.shape == (6, 16, 32)
    assert first.neighbours.shape == (6, 2) and 'ddim 2 steps' in first.sample_protocol
    again = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))[0]
    assert torch.equal(again.gen_imgs, first.gen_imgs)
    model.sample_cfg['seed'] = 1
    other = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))[0]
    assert not torch.equal(other.gen_imgs, first.gen_imgs)
    # the real views are the data preprocessor's images back in uint8
    real = ((data['inputs']['imgs'][0] + 1) / 2 * 255).round().clamp(0, 255)
    assert torch.equal(first.real_imgs, real.to(torch.uint8))


def test_camera_gen_benchmark_scores_and_times(caption_world, trained, tmp_path):
    """The benchmark's tools/test.py rows (trained and --random-init, CameraGenMetric on
    sampled val frames) and its timing table, on one keyframe with 2 steps."""
    import json
    work = tmp_path / 'bench'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/camera_gen_benchmark.py', '--data-root',
         str(caption_world.root), '--vae', str(trained / 'vae' / 'epoch_1.pth'),
         '--generator', str(trained / 'gen' / 'epoch_1.pth'), '--work-dir', str(work),
         '--limit', '1', '--steps', '2', '--time-schedulers', 'ddim', 'unipc',
         '--time-steps', '2', '--repeats', '1'],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((work / 'results.json').read_text())
    for tag in ('trained', 'untrained'):
        s = res[tag]
        assert s['fid'] >= -1e-6 and 0 <= s['depth_abs_rel_real'] < 10, s
        assert s['mv_real'] >= 0 and 'mv_gen' in s
    assert 'sha256' in res['protocol'] and '1 samples / 6 views at 256x128' in res['protocol']
    assert res['trained']['fid'] != res['untrained']['fid']
    for name in ('ddim', 'unipc'):
        row = res['timing'][name]['2']
        assert row['seconds'] > 0 and 0 < row['outside_fraction'] < 1, row
    assert '| trained / untrained |' in proc.stdout and '| ddim | 2 |' in proc.stdout


def test_generator_config_errors_are_one_line(caption_world, tmp_path):
    from holodrive.models.camera_gen import CameraGenConfigError
    from holodrive.registry import MODELS
    cfg = _cfg('camera_gen_tiny_synthetic.py', caption_world.root)
    bad = cfg.model.copy()
    bad.denoiser = dict(bad.denoiser, unet_config=dict(bad.denoiser.unet_config, in_channels=8,
                                                       out_channels=8))
    with pytest.raises(CameraGenConfigError, match="latent_channels 4: set both to 4"):
        MODELS.build(bad)
    bad = cfg.model.copy()
    bad.text_encoder = dict(bad.text_encoder, tokenizer=str(tmp_path / 'nothing'))
    with pytest.raises(CameraGenConfigError, match='create_data.py captions'):
        MODELS.build(bad)
    bad = cfg.model.copy()
    bad.condition_dropout = dict(lidar=0.1)
    with pytest.raises(CameraGenConfigError, match='unknown condition'):
        MODELS.build(bad)


def test_generate_tool_writes_all_camera_outputs(caption_world, trained, tmp_path):
    import json
    out = tmp_path / 'gen'
    base = [sys.executable, 'tools/generate.py', '--modality', 'camera',
            CAM + 'camera_gen_tiny_synthetic.py', str(trained / 'gen' / 'epoch_1.pth'),
            '--data-root', str(caption_world.root), '--out-dir', str(out)]
    proc = subprocess.run(base + ['--sample-idx', '1', '--steps', '2', '--scheduler', 'dpm',
                                  '--num-samples', '2', '--condition-scale', 'boxes=2'],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for k in (0, 1):
        stem = next(out.glob(f'0001_*_s{k}_grid.png')).name[:-len('_grid.png')]
        for suffix in ('_grid.png', '_depth.png', '_conditions.json', '_CAM_FRONT.png',
                       '_CAM_BACK_LEFT.png'):
            assert (out / (stem + suffix)).is_file(), stem + suffix
        cond = json.loads((out / (stem + '_conditions.json')).read_text())
        assert cond['seed'] == k and cond['condition_scales'] == {'boxes': 2.0}
        assert cond['caption'] and len(cond['cameras']) == 6
    a = (out / next(out.glob('0001_*_s0_CAM_FRONT.png')).name).read_bytes()
    b = (out / next(out.glob('0001_*_s1_CAM_FRONT.png')).name).read_bytes()
    assert a != b                                                     # different seeds
    # a bad --condition-scale is a one-line user error (run_cli prints it), before any loading
    sys.path.insert(0, str(ROOT / 'tools'))
    import generate
    from holodrive.engine.config_check import ConfigError
    args = generate.parse_args(base[2:] + ['--sample-idx', '0', '--condition-scale', 'lidar=1'])
    with pytest.raises(ConfigError, match=r"--condition-scale 'lidar=1': use COND=SCALE"):
        generate.generate_camera(args)


def test_layout_json_gives_the_dataset_samples_conditions_and_images(
        caption_world, trained, tmp_path):
    """The ``layout`` of a sample's conditions.json, given back as ``--layout-json``, gives
    the same layout images, calibration and caption as the dataset sample, hence the same
    seeded views; an edited layout (no boxes, no map) changes them; bad layouts are one line."""
    import json

    import numpy as np
    from PIL import Image
    sys.path.insert(0, str(ROOT / 'tools'))
    import generate
    from holodrive.datasets.layout_json import LayoutJSONError
    out = tmp_path / 'gen'
    base = ['--modality', 'camera', CAM + 'camera_gen_tiny_synthetic.py',
            str(trained / 'gen' / 'epoch_1.pth'), '--data-root', str(caption_world.root),
            '--out-dir', str(out), '--steps', '2', '--scheduler', 'ddim']
    generate.main(base + ['--sample-idx', '2'])
    cond_path = next(out.glob('0002_*_s0_conditions.json'))
    layout = json.loads(cond_path.read_text())['layout']
    assert len(layout['cameras']) == 6 and layout['boxes'] and 'location' in layout
    args = generate.parse_args(base + ['--sample-idx', '2'])
    model, cfg = generate.load_generator(args, 'MultiViewDiffusion', 'camera')
    from_sample = generate.sample_batch(model, cfg, args)[0]['inputs']
    args.sample_idx, args.layout_json = None, str(cond_path)
    from_json = generate.camera_batch_from_json(model, cfg, args)[0]['inputs']
    assert from_sample['layout_images'].sum() > 0
    for key in ('layout_images', 'cam2img', 'cam2lidar', 'img_aug_matrix', 'camera_ring'):
        assert torch.equal(from_sample[key], from_json[key]), key

    def views(stem):
        return [np.asarray(Image.open(out / f'{stem}_{cam}.png')) for cam in layout['cameras']]
    generate.main(base + ['--layout-json', str(cond_path)])
    sample_stem = cond_path.name[:-len('_conditions.json')]
    json_stem = cond_path.stem + '_s0'
    assert all(np.array_equal(a, b) for a, b in zip(views(sample_stem), views(json_stem)))
    edited = dict(layout, boxes=[])
    del edited['location'], edited['ego2global']
    (tmp_path / 'empty.json').write_text(json.dumps(edited))
    generate.main(base + ['--layout-json', str(tmp_path / 'empty.json')])
    assert not np.array_equal(views(sample_stem)[0], views('empty_s0')[0])

    def bad(obj, match):
        (tmp_path / 'bad.json').write_text(json.dumps(obj))
        with pytest.raises(LayoutJSONError, match=match):
            generate.main(base + ['--layout-json', str(tmp_path / 'bad.json')])
    no_cameras = dict(layout)
    del no_cameras['cameras']
    bad(no_cameras, "key 'cameras' is missing")
    cam = dict(layout['cameras']['CAM_FRONT'], cam2img=[[1, 0], [0, 1]])
    bad(dict(layout, cameras=dict(layout['cameras'], CAM_FRONT=cam)),
        r'cameras.CAM_FRONT.cam2img must be a finite 3x3 or 4x4 matrix, got shape \(2, 2\)')
    bad({k: v for k, v in layout.items() if k != 'ego2global'}, 'needs both "location"')


def test_full_config_loads_a_stable_diffusion_layout_directory(tmp_path):
    """camera_gen_sd21_nus.py builds from a local folder in SD 2.1's diffusers layout (vae/,
    unet/, text_encoder/, tokenizer/; tiny random networks here, official key names) and one
    training step runs at its 448x256 resolution."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from mmengine.config import Config
    from transformers import CLIPTextConfig, CLIPTextModel

    from holodrive.engine.cli import import_project
    from holodrive.models.camera_gen import CameraGenConfigError, train_caption_tokenizer
    from holodrive.registry import MODELS
    import_project()
    init_default_scope('holodrive')
    sd = tmp_path / 'sd21'
    tok = train_caption_tokenizer(['a wet road at dusk', 'two moving cars ahead'] * 20,
                                  str(sd / 'tokenizer'), vocab_size=300)
    AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=8, latent_channels=4,
                  down_block_types=('DownEncoderBlock2D',) * 4,
                  up_block_types=('UpDecoderBlock2D',) * 4).save_pretrained(sd / 'vae')
    UNet2DConditionModel(
        block_out_channels=(32, 32, 64, 64), layers_per_block=1, cross_attention_dim=32,
        attention_head_dim=4, norm_num_groups=16, in_channels=4, out_channels=4,
        down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
        up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3).save_pretrained(sd / 'unet')
    CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=1, num_attention_heads=2,
                                 max_position_embeddings=77)).save_pretrained(
        sd / 'text_encoder')
    cfg = Config.fromfile(str(ROOT / CAM / 'camera_gen_sd21_nus.py'))
    m = cfg.model
    m.vae.pretrained = m.denoiser.pretrained = m.text_encoder.pretrained = str(sd)
    m.text_encoder.tokenizer = str(sd)
    m.denoiser.depth_net_config.update(mid_channels=16, context_channels=8, num_res_blocks=1)
    m.layout_adapter.update(channels=16, num_res_blocks=1, norm_groups=8)
    model = MODELS.build(m)
    assert model.denoiser.residual_channels == [32, 32, 32, 64, 64]        # 1 + 4 points
    assert model.scheduler.config.prediction_type == 'v_prediction'
    b, v, h, w = 1, 6, 256, 448
    cam2img = torch.eye(4).repeat(b, v, 1, 1)
    cam2img[..., 0, 0] = cam2img[..., 1, 1] = 300.0
    bins = torch.zeros(b, v, 30, h // 8, w // 8)
    bins[:, :, 5] = 1
    inputs = dict(imgs=torch.rand(b, v, 3, h, w) * 2 - 1, cam2img=cam2img,
                  cam2lidar=torch.eye(4).repeat(b, v, 1, 1),
                  img_aug_matrix=torch.eye(4).repeat(b, v, 1, 1),
                  layout_images=torch.zeros(b, v, 10, h, w, dtype=torch.uint8),
                  depth_bins_s8=bins, depth_valid_s8=torch.ones(b, v, h // 8, w // 8, dtype=bool))
    losses = model(inputs, mode='loss')
    assert torch.isfinite(losses['loss_diffusion']) and torch.isfinite(losses['loss_depth'])
    sum(losses.values()).backward()
    assert model.denoiser.unet.conv_in.weight.grad is not None
    assert all(p.grad is None for p in model.text_encoder.parameters())     # frozen
    with pytest.raises(CameraGenConfigError, match='model.denoiser.pretrained.*does not exist'):
        MODELS.build(dict(m, denoiser=dict(m.denoiser, pretrained=str(tmp_path / 'none'))))


def test_latent_cache_gives_the_encoders_posterior_and_the_same_loss(caption_world, trained,
                                                                     tmp_path):
    """tools/create_data.py latents writes the posterior of each train keyframe; training from
    the cache draws the same latents (and loss) as encoding, and a wrong VAE, an augmentation
    that differs or a missing cache is one clear error."""
    import json

    import numpy as np
    from mmengine.runner import load_checkpoint

    from holodrive.models.camera_gen import CameraGenConfigError
    from holodrive.registry import MODELS
    root, vae_ckpt = caption_world.root, trained / 'vae' / 'epoch_1.pth'
    cache = tmp_path / 'latents'
    proc = subprocess.run(
        [sys.executable, 'tools/create_data.py', 'latents', '--config',
         CAM + 'camera_gen_tiny_synthetic.py', '--vae-checkpoint', str(vae_ckpt), '--out-dir',
         str(cache), '--cfg-options', f'data_root={root}/', 'train_dataloader.dataset.indices=2'],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'latents: 2 keyframes' in proc.stdout and 'latent_scale' in proc.stdout, proc.stdout
    meta = json.loads((cache / 'meta.json').read_text())
    assert meta['num_keyframes'] == 2 and meta['image_hw'] == [128, 256] and meta['std'] > 0

    cfg = _cfg('camera_gen_tiny_synthetic.py', root, **{'train_dataloader.dataset.indices': 2})
    cfg.model.vae_checkpoint = str(vae_ckpt)
    plain = MODELS.build(cfg.model)
    cached = MODELS.build(dict(cfg.model, latent_cache=str(cache)))
    load_checkpoint(plain, str(trained / 'gen' / 'epoch_1.pth'), map_location='cpu',
                    logger='silent')
    cached.load_state_dict(plain.state_dict())
    data = _batch(cfg, plain, idx=1)
    inp, samples = data['inputs'], data['data_samples']
    moments = cached.latent_cache.load(samples)
    torch.testing.assert_close(plain.vae.from_moments(moments),
                               plain.vae.encode(inp['imgs']), rtol=1e-4, atol=1e-4)
    losses = []
    for model in (plain, cached):
        torch.manual_seed(0)
        losses.append({k: float(v.detach()) for k, v in model.loss(inp, samples).items()})
    assert losses[0].keys() == losses[1].keys()
    for key in losses[0]:
        assert abs(losses[0][key] - losses[1][key]) < 1e-4 * (1 + abs(losses[0][key])), key

    other = tmp_path / 'other.pth'
    other.write_bytes(vae_ckpt.read_bytes() + b'\0')
    with pytest.raises(CameraGenConfigError, match='another VAE.*rewrite'):
        MODELS.build(dict(cfg.model, vae_checkpoint=str(other), latent_cache=str(cache)))
    with pytest.raises(CameraGenConfigError, match='meta.json not found.*create_data.py latents'):
        MODELS.build(dict(cfg.model, latent_cache=str(tmp_path / 'missing')))
    shifted = copy.deepcopy(samples)
    aug = np.array(shifted[0].metainfo['img_aug_matrix'], dtype=np.float32)
    aug[:, 0, 3] += 5.0
    shifted[0].set_metainfo(dict(img_aug_matrix=aug))
    with pytest.raises(CameraGenConfigError, match='augmented differently'):
        cached.latent_cache.load(shifted)
