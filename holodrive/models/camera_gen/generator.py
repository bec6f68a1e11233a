"""``MultiViewDiffusion``: the camera generator as an mmengine model (training).

    imgs (B, V, 3, H, W) -> frozen VAE -> latents x0 (B, V, C, h, w)
    x_t = DDPMScheduler.add_noise(x0, eps, t),  t ~ U{0 .. T-1} per sample
    conditions: caption -> CaptionEncoder (B, L, D); layout_images (B, V, C_map + G, H, W)
      -> LayoutAdapter -> residuals; camera matrices -> camera embedding; ring neighbours
    MultiViewUNet(x_t, t, ...) -> prediction, depth logits, features

Loss: ``|| prediction - target ||^2`` (target ``eps`` or ``v = sqrt(a_t) eps - sqrt(1-a_t) x0``
by ``scheduler.prediction_type``) + ``DepthLoss`` on the depth logits at the latent stride
(LiDAR depth bins of ``ProjectLidarDepth``). Classifier-free guidance dropout: each condition of
``condition_dropout`` (``text``, ``boxes``, ``map``, ``camera``) is dropped per sample with its
probability (empty caption, zeroed layout channels, zero camera vector).

``predict()`` (``tools/test.py``, the ``CameraGenMetric``) samples every keyframe with
:class:`holodrive.pipelines.MultiViewDrivePipeline` and ``sample_cfg`` (scheduler name, steps,
guidance, per-condition scales, seed; the initial noise of a keyframe is seeded by ``seed`` and
its token, so a score does not depend on the batch order), and runs the depth branch once more
on the real latents noised to ``depth_timestep`` (the depth of real views). Docs:
``docs/camera_gen.md``.
"""
import hashlib
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import load_checkpoint

from holodrive.registry import MODELS
from .autoencoder import CameraGenConfigError
from .latent_cache import LatentCache
from .multiview_unet import neighbour_views
from .text_encoder import caption_texts

CONDITIONS = ('text', 'boxes', 'map', 'camera')
SAMPLE_DEFAULTS = dict(scheduler='dpm', steps=20, guidance_scale=1.0, condition_scales={},
                       seed=0, depth_timestep=100)


@MODELS.register_module()
class MultiViewDiffusion(BaseModel):
    """Layout-, camera- and text-conditioned multi-view latent diffusion (module docstring).

    Args:
        vae: ``CameraAutoencoder`` config (frozen, eval mode).
        vae_checkpoint: its trained weights (``tools/train.py`` checkpoint), or None when the
            config loads a pretrained VAE directory.
        denoiser: ``MultiViewUNet`` config (``in/out_channels`` = the VAE's latent channels).
        layout_adapter: ``LayoutAdapter`` config without the residual widths / strides (taken
            from the denoiser), or None.
        num_map_channels: the first ``num_map_channels`` layout channels are the map (the rest
            the box groups), for their separate dropout.
        text_encoder: ``CaptionEncoder`` config, or None (no text: a zero context).
        scheduler: ``diffusers.DDPMScheduler`` keyword arguments.
        condition_dropout: ``{condition: probability}`` for ``CONDITIONS``.
        depth_loss: ``DepthLoss`` config (``stride`` = the latent factor), or None.
        depth_bins: ``(start, stop, step)`` metres of the depth branch's bins (the
            ``ProjectLidarDepth`` setting), for the expected depth of ``predict()``.
        sample_cfg: ``predict()`` sampling, keys of ``SAMPLE_DEFAULTS``: ``scheduler``
            (ddim, dpm, euler, unipc), ``steps``, ``guidance_scale``, ``condition_scales``,
            ``seed``, ``depth_timestep`` (the noise level of the real-latent depth pass).
        latent_cache: a ``camera_latents/{split}`` folder of ``tools/create_data.py latents``
            (``latent_cache.py``): training takes the views' posterior from it instead of
            encoding them (the images are still loaded for ``predict()``).
    """

    def __init__(self, vae: dict, denoiser: dict, vae_checkpoint: Optional[str] = None,
                 layout_adapter: Optional[dict] = None, num_map_channels: int = 0,
                 text_encoder: Optional[dict] = None, scheduler: Optional[dict] = None,
                 condition_dropout: Optional[Dict[str, float]] = None,
                 depth_loss: Optional[dict] = None, depth_bins: Optional[Sequence[float]] = None,
                 sample_cfg: Optional[dict] = None, latent_cache: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from diffusers import DDPMScheduler
        self.vae = MODELS.build(vae)
        if vae_checkpoint:
            load_checkpoint(self.vae, vae_checkpoint, map_location='cpu', logger='silent')
        self.vae.requires_grad_(False)
        self.denoiser = MODELS.build(denoiser)
        if self.denoiser.in_channels != self.vae.latent_channels or \
                self.denoiser.unet.config.out_channels != self.vae.latent_channels:
            raise CameraGenConfigError(
                f'model.denoiser.unet_config: in/out_channels {self.denoiser.in_channels}/'
                f'{self.denoiser.unet.config.out_channels} differ from the VAE\'s '
                f'latent_channels {self.vae.latent_channels}: set both to '
                f'{self.vae.latent_channels}')
        if self.denoiser.vae_scale_factor != self.vae.factor:
            raise CameraGenConfigError(
                f'model.denoiser.vae_scale_factor {self.denoiser.vae_scale_factor} is not the '
                f'VAE\'s latent factor {self.vae.factor}: set it to {self.vae.factor}')
        self.layout_adapter = None
        if layout_adapter is not None:
            self.layout_adapter = MODELS.build(dict(
                layout_adapter, residual_channels=self.denoiser.residual_channels,
                residual_strides=self.denoiser.residual_strides, downscale=self.vae.factor))
        self.num_map_channels = int(num_map_channels)
        self.text_encoder = MODELS.build(text_encoder) if text_encoder is not None else None
        cross_dim = self.denoiser.unet.config.cross_attention_dim
        if self.text_encoder is not None and self.text_encoder.hidden_size != cross_dim:
            raise CameraGenConfigError(
                f'model.text_encoder hidden size {self.text_encoder.hidden_size} is not the '
                f'denoiser\'s cross_attention_dim {cross_dim}: make them equal')
        self.scheduler = DDPMScheduler(**(scheduler or {}))
        dropout = dict(condition_dropout or {})
        unknown = set(dropout) - set(CONDITIONS)
        if unknown:
            raise CameraGenConfigError(f'model.condition_dropout: unknown condition(s) '
                                       f'{sorted(unknown)}; use {list(CONDITIONS)}')
        self.condition_dropout = {c: float(dropout.get(c, 0.0)) for c in CONDITIONS}
        self.depth_loss = MODELS.build(depth_loss) if depth_loss is not None else None
        if self.depth_loss is not None and self.denoiser.depth_net is None:
            raise CameraGenConfigError('model.depth_loss needs model.denoiser.depth_net')
        self.depth_bins = None if depth_bins is None else tuple(float(v) for v in depth_bins)
        unknown = set(sample_cfg or {}) - set(SAMPLE_DEFAULTS)
        if unknown:
            raise CameraGenConfigError(f'model.sample_cfg: unknown key(s) {sorted(unknown)}; '
                                       f'use {sorted(SAMPLE_DEFAULTS)}')
        self.sample_cfg = dict(SAMPLE_DEFAULTS, **(sample_cfg or {}))
        self.latent_cache = LatentCache(latent_cache, vae_checkpoint) if latent_cache else None

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()
        return self

    # ------------------------------------------------------------------ conditions
    def conditions(self, inputs: dict, data_samples=None,
                   keep: Optional[Dict[str, torch.Tensor]] = None) -> dict:
        """Denoiser keyword arguments from a batch; ``keep[c]`` ``(B,)`` bool drops
        condition ``c`` where False (None: keep everything)."""
        imgs = inputs.get('imgs')
        b = len(imgs) if imgs is not None else len(inputs['cam2img'])
        device = inputs['cam2img'].device
        keep = keep or {}
        ones = torch.ones(b, dtype=torch.bool, device=device)
        kw = dict(cam2img=inputs['cam2img'], cam2lidar=inputs['cam2lidar'],
                  img_aug_matrix=inputs.get('img_aug_matrix'),
                  camera_keep=keep.get('camera', ones))
        if 'camera_ring' in inputs and 'camera_adjacency' in inputs:
            kw['neighbours'] = neighbour_views(inputs['camera_ring'], inputs['camera_adjacency'])
        captions = None
        if data_samples is not None:
            captions = [s.metainfo.get('caption') for s in data_samples]
        texts = caption_texts(captions, b)
        text_keep = keep.get('text', ones)
        texts = [t if bool(k) else '' for t, k in zip(texts, text_keep)]
        if self.text_encoder is not None:
            kw['encoder_hidden_states'] = self.text_encoder(texts)
        else:
            kw['encoder_hidden_states'] = torch.zeros(
                b, 1, self.denoiser.unet.config.cross_attention_dim, device=device)
        if self.layout_adapter is not None:
            layout = inputs.get('layout_images')
            if layout is None:
                raise ValueError('the layout adapter needs inputs["layout_images"]: add '
                                 'ProjectLayoutToCameras and pack "layout_images"')
            layout = layout.float()
            m = self.num_map_channels
            mask = torch.ones_like(layout[:, 0, :, :1, :1])             # (B, C, 1, 1)
            mask[:, :m] *= keep.get('map', ones).float()[:, None, None, None]
            mask[:, m:] *= keep.get('boxes', ones).float()[:, None, None, None]
            kw['residuals'] = self.layout_adapter(layout * mask[:, None])
        return kw

    def _dropout_keep(self, b: int, device) -> Dict[str, torch.Tensor]:
        return {c: torch.rand(b, device=device) >= p for c, p in self.condition_dropout.items()}

    # ------------------------------------------------------------------ mmengine API
    def forward(self, inputs: dict, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return self.loss(inputs, data_samples)

    def loss(self, inputs: dict, data_samples=None) -> Dict[str, torch.Tensor]:
        imgs = inputs.get('imgs')
        if imgs is None:
            raise ValueError('MultiViewDiffusion needs inputs["imgs"]: pack "img"')
        with torch.no_grad():
            if self.latent_cache is not None:
                x0 = self.vae.from_moments(self.latent_cache.load(data_samples, imgs.device),
                                           sample=True)
            else:
                x0 = self.vae.encode(imgs, sample=True)
        b = len(x0)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (b,), device=x0.device)
        x_t = self.scheduler.add_noise(x0, noise, t)
        if self.scheduler.config.prediction_type == 'v_prediction':
            target = self.scheduler.get_velocity(x0, noise, t)
        else:
            target = noise
        kw = self.conditions(inputs, data_samples, self._dropout_keep(b, x0.device))
        pred, depth_logits, _ = self.denoiser(x_t, t, **kw)
        losses = dict(loss_diffusion=F.mse_loss(pred.float(), target.float()))
        if self.depth_loss is not None:
            losses['loss_depth'] = self.depth_loss.from_inputs(depth_logits, inputs)
        return losses

    # ------------------------------------------------------------------ sampling
    def _expected_depth(self, depth_logits: torch.Tensor) -> torch.Tensor:
        """``(B, V, D, h, w)`` logits -> ``(B, V, h, w)`` metres (bin centres)."""
        from holodrive.models.view_transforms import expected_depth
        start, stop, step = self.depth_bins
        centres = torch.arange(start, stop - 1e-6, step) + step / 2
        if len(centres) != depth_logits.shape[2]:
            raise CameraGenConfigError(
                f'model.depth_bins {self.depth_bins} give {len(centres)} bins, the depth '
                f'branch predicts {depth_logits.shape[2]}: use the ProjectLidarDepth setting')
        return expected_depth(depth_logits.float().softmax(2), centres)

    def _initial_noise(self, data_samples, shape, device) -> torch.Tensor:
        """``(B, V, C, h, w)`` noise, each keyframe's from ``seed`` + its token."""
        noise = []
        for b in range(shape[0]):
            meta = data_samples[b].metainfo if data_samples is not None else {}
            key = str(meta.get('token', meta.get('sample_idx', b)))
            offset = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
            gen = torch.Generator().manual_seed(int(self.sample_cfg['seed']) + offset)
            noise.append(torch.randn(shape[1:], generator=gen))
        return torch.stack(noise).to(device)

    @torch.no_grad()
    def predict(self, inputs: dict, data_samples=None) -> list:
        """Sample every keyframe of the batch (``sample_cfg``); each data sample gets
        ``gen_imgs`` / ``real_imgs`` uint8 ``(V, 3, H, W)``, ``cam2img_aug`` ``(V, 3, 3)``
        (intrinsics after the image augmentation), ``views_cam2lidar`` ``(V, 4, 4)``
        (``cam2lidar`` is taken by the metainfo), ``neighbours`` ``(V, 2)``, ``sample_protocol`` (str) and, with a depth branch,
        ``gen_depth`` (last sampling step) / ``real_depth`` (real latents at
        ``depth_timestep``) ``(V, h, w)`` metres, with ``gt_depth`` ``(V, h, w)`` (LiDAR,
        0 = none; times ``depth_valid_s{stride}`` when packed) when the pipeline packs
        ``depth_s{stride}``."""
        from holodrive.pipelines import MultiViewDrivePipeline, make_scheduler
        from .autoencoder import _new_sample
        cfg = self.sample_cfg
        imgs = inputs.get('imgs')
        if imgs is None:
            raise ValueError('MultiViewDiffusion.predict needs inputs["imgs"] (the real views '
                             'the scores compare with): pack "img"')
        b, v = imgs.shape[:2]
        pipe = MultiViewDrivePipeline.from_model(
            self, scheduler=make_scheduler(cfg['scheduler'], self.scheduler.config))
        kw = self.conditions(inputs, data_samples)
        factor = self.vae.factor
        shape = (b, v, self.denoiser.in_channels, imgs.shape[-2] // factor,
                 imgs.shape[-1] // factor)
        captions = [s.metainfo.get('caption') or '' for s in data_samples] \
            if data_samples is not None else None
        out = pipe(cam2img=inputs['cam2img'], cam2lidar=inputs['cam2lidar'],
                   img_aug_matrix=inputs.get('img_aug_matrix'),
                   layout_images=inputs.get('layout_images'), captions=captions,
                   neighbours=kw.get('neighbours'), image_size=imgs.shape[-2:],
                   num_inference_steps=int(cfg['steps']),
                   guidance_scale=float(cfg['guidance_scale']),
                   condition_scales=dict(cfg['condition_scales']),
                   latents=self._initial_noise(data_samples, shape, imgs.device))
        gen_depth = real_depth = None
        if out['depth_logits'] is not None and self.depth_bins is not None:
            gen_depth = self._expected_depth(out['depth_logits'])
            x0 = self.vae.encode(imgs, sample=False)
            t = torch.full((b,), int(cfg['depth_timestep']), device=imgs.device)
            x_t = self.scheduler.add_noise(x0, self._initial_noise(data_samples, x0.shape,
                                                                   x0.device), t)
            real_depth = self._expected_depth(self.denoiser(x_t, t, **kw)[1])
        k = torch.eye(4, device=imgs.device).expand(b, v, 4, 4)
        if inputs.get('img_aug_matrix') is not None:
            k = inputs['img_aug_matrix'].float()
        k = (k @ inputs['cam2img'].float())[..., :3, :3]
        gt = inputs.get(f'depth_s{factor}')
        if gt is not None and inputs.get(f'depth_valid_s{factor}') is not None:
            gt = gt * inputs[f'depth_valid_s{factor}']            # inside the bins' range
        protocol = (f'{cfg["scheduler"]} {cfg["steps"]} steps, guidance '
                    f'{cfg["guidance_scale"]}, condition scales {dict(cfg["condition_scales"])}'
                    f', seed {cfg["seed"]} + token; real-view depth at t={cfg["depth_timestep"]}')
        samples = data_samples if data_samples is not None else [_new_sample() for _ in
                                                                   range(b)]
        for i, sample in enumerate(samples):
            sample.gen_imgs = (out['images'][i] * 255).round().to(torch.uint8).cpu()
            sample.real_imgs = (((imgs[i].float() + 1) / 2).clamp(0, 1) * 255).round().to(
                torch.uint8).cpu()
            sample.cam2img_aug = k[i].cpu()
            sample.views_cam2lidar = inputs['cam2lidar'][i].float().cpu()
            if kw.get('neighbours') is not None:
                sample.neighbours = kw['neighbours'][i].cpu()
            sample.sample_protocol = protocol
            if gen_depth is not None:
                sample.gen_depth, sample.real_depth = gen_depth[i].cpu(), real_depth[i].cpu()
                if gt is not None:
                    sample.gt_depth = gt[i].float().cpu()
        return samples
