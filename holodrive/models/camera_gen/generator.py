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
probability (empty caption, zeroed layout channels, zero camera vector). Sampling lives in
:class:`holodrive.pipelines.MultiViewDrivePipeline`. Docs: ``docs/camera_gen.md``.
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import load_checkpoint

from holodrive.registry import MODELS
from .autoencoder import CameraGenConfigError
from .multiview_unet import neighbour_views
from .text_encoder import caption_texts

CONDITIONS = ('text', 'boxes', 'map', 'camera')


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
    """

    def __init__(self, vae: dict, denoiser: dict, vae_checkpoint: Optional[str] = None,
                 layout_adapter: Optional[dict] = None, num_map_channels: int = 0,
                 text_encoder: Optional[dict] = None, scheduler: Optional[dict] = None,
                 condition_dropout: Optional[Dict[str, float]] = None,
                 depth_loss: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg=None):
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
            raise NotImplementedError('MultiViewDiffusion.predict: sample with '
                                      'holodrive.pipelines.MultiViewDrivePipeline')
        return self.loss(inputs, data_samples)

    def loss(self, inputs: dict, data_samples=None) -> Dict[str, torch.Tensor]:
        imgs = inputs.get('imgs')
        if imgs is None:
            raise ValueError('MultiViewDiffusion needs inputs["imgs"]: pack "img"')
        with torch.no_grad():
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
