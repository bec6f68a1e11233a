"""``CameraAutoencoder``: diffusers' ``AutoencoderKL`` as an mmengine model for the camera views.

    imgs (B, V, 3, H, W) in [-1, 1]  ->  encode  ->  latents (B, V, C_lat, H/f, W/f)
    (``(z - shift_factor) * scaling_factor``)  ->  decode  ->  images (B, V, 3, H, W)

``f = 2 ** (len(block_out_channels) - 1)`` is the latent factor. The tiny config trains the VAE
from scratch through ``tools/train.py``; the full config loads a Stable-Diffusion VAE from a
local directory in diffusers' layout (``AutoencoderKL.from_pretrained(path)``).

Training loss (per view, means over pixels; the LDM objective divided by the pixel count)::

    loss_rec = |x - x_hat|_1 mean                     (``rec_loss='l1'``; ``'l2'``: squared)
    loss_kl  = kl_weight * KL(q(z|x) || N(0, I)).sum() / (3 H W)

The perceptual (LPIPS) term of LDM needs pretrained VGG weights that cannot be downloaded
here, and the adversarial term is not implemented (docs/camera_gen.md says so).
"""
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.model import BaseModel

from holodrive.engine.config_check import ConfigError
from holodrive.registry import MODELS


class CameraGenConfigError(ConfigError, ValueError):
    """A camera-generator setting that cannot work (one line naming the key and the fix)."""


def load_diffusers_dir(cls, path: str, key: str, subfolder: Optional[str] = None):
    """``cls.from_pretrained(path)`` for a local directory, with a one-line error naming
    ``key`` when it is missing (nothing is downloaded: ``local_files_only``)."""
    where = osp.join(path, subfolder) if subfolder else path
    if not osp.isdir(where):
        raise CameraGenConfigError(
            f'{key}: local weights directory {where!r} does not exist: give a directory '
            f'written by {cls.__name__}.save_pretrained (diffusers layout), or null to build '
            'the network from its config')
    kwargs = dict(subfolder=subfolder) if subfolder else {}
    # low_cpu_mem_usage needs accelerate (not a dependency): load the plain way
    return cls.from_pretrained(path, local_files_only=True, low_cpu_mem_usage=False, **kwargs)


def latent_factor(vae) -> int:
    """Spatial down-sampling factor of a diffusers ``AutoencoderKL``."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def check_image_size(height: int, width: int, factor: int, key: str = 'image size'):
    if height % factor or width % factor:
        raise CameraGenConfigError(
            f'{key}: images of {width}x{height} (WxH) are not divisible by the latent factor '
            f'{factor}: set MultiViewImageAug final_size to multiples of {factor} '
            f'(e.g. ({width // factor * factor}, {height // factor * factor}))')


@MODELS.register_module()
class CameraAutoencoder(BaseModel):
    """KL autoencoder of the camera views (module docstring).

    Args:
        vae: keyword arguments of ``diffusers.AutoencoderKL`` (built from scratch), or None
            with ``pretrained``.
        pretrained: local diffusers directory of an ``AutoencoderKL`` (e.g. SD 2.1's ``vae``
            folder, or the folder holding it with ``subfolder='vae'``).
        subfolder: sub-directory of ``pretrained`` holding the VAE.
        scaling_factor: latents are ``(z - shift_factor) * scaling_factor``; None: the VAE
            config's.
        shift_factor: see ``scaling_factor``; None: the VAE config's (or 0).
        kl_weight: weight of the KL term (see the module docstring).
        rec_loss: ``'l1'`` or ``'l2'``.
        sample_posterior: train on a posterior sample (True) or its mean.
        train_views: views per sample the loss sees (a random subset each step, the same
            for the whole batch; None: all). The VAE is per-view, so this only trades
            samples per step for speed.
    """

    def __init__(self, vae: Optional[dict] = None, pretrained: Optional[str] = None,
                 subfolder: Optional[str] = None, scaling_factor: Optional[float] = None,
                 shift_factor: Optional[float] = None,
                 kl_weight: float = 1e-6, rec_loss: str = 'l1', sample_posterior: bool = True,
                 train_views: Optional[int] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from diffusers import AutoencoderKL
        if pretrained:
            self.vae = load_diffusers_dir(AutoencoderKL, pretrained, 'model.pretrained',
                                          subfolder)
        elif vae is not None:
            self.vae = AutoencoderKL(**vae)
        else:
            raise CameraGenConfigError('model: give vae=dict(...) (AutoencoderKL arguments) '
                                       'or pretrained=LOCAL_DIR')
        if rec_loss not in ('l1', 'l2'):
            raise CameraGenConfigError(f"model.rec_loss: {rec_loss!r} is not 'l1' or 'l2'")
        self.scaling_factor = float(scaling_factor if scaling_factor is not None
                                    else self.vae.config.scaling_factor)
        self.shift_factor = float(shift_factor if shift_factor is not None
                                  else (self.vae.config.shift_factor or 0.0))
        self.kl_weight = float(kl_weight)
        self.rec_loss = rec_loss
        self.sample_posterior = bool(sample_posterior)
        self.train_views = None if train_views is None else int(train_views)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def factor(self) -> int:
        return latent_factor(self.vae)

    # ------------------------------------------------------------------ encode / decode
    def _flat(self, imgs: torch.Tensor) -> torch.Tensor:
        if imgs.dim() != 5 or imgs.shape[2] != 3:
            raise ValueError(f'expected images (B, V, 3, H, W), got {tuple(imgs.shape)}')
        check_image_size(imgs.shape[-2], imgs.shape[-1], self.factor)
        return imgs.flatten(0, 1)

    def encode(self, imgs: torch.Tensor, sample: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``(B, V, 3, H, W)`` in [-1, 1] -> scaled latents ``(B, V, C, H/f, W/f)``."""
        b, v = imgs.shape[:2]
        moments = self.vae.encode(self._flat(imgs)).latent_dist.parameters
        return self.from_moments(moments.unflatten(0, (b, v)), sample, generator)

    def from_moments(self, moments: torch.Tensor, sample: bool = False,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Posterior moments ``(B, V, 2C, h, w)`` (mean, log-variance; a latent cache) ->
        scaled latents ``(B, V, C, h, w)``: a posterior sample or its mode."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
        if moments.dim() != 5 or moments.shape[2] != 2 * self.latent_channels:
            raise CameraGenConfigError(
                f'posterior moments of shape {tuple(moments.shape)} do not fit this VAE '
                f'((B, V, 2 x {self.latent_channels}, h, w)): rewrite the latent cache '
                'with this VAE')
        b, v = moments.shape[:2]
        post = DiagonalGaussianDistribution(moments.flatten(0, 1))
        z = post.sample(generator) if sample else post.mode()
        return ((z - self.shift_factor) * self.scaling_factor).unflatten(0, (b, v))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, V, C, h, w)`` -> images ``(B, V, 3, h f, w f)`` in ~[-1, 1]."""
        if latents.dim() != 5 or latents.shape[2] != self.latent_channels:
            raise CameraGenConfigError(
                f'latents of shape {tuple(latents.shape)} do not fit this VAE '
                f'({self.latent_channels} latent channels, (B, V, C, h, w)): the denoiser\'s '
                'in/out_channels must equal the VAE\'s latent_channels')
        b, v = latents.shape[:2]
        z = latents.flatten(0, 1) / self.scaling_factor + self.shift_factor
        out = self.vae.decode(z).sample
        return out.unflatten(0, (b, v))

    # ------------------------------------------------------------------ mmengine API
    def forward(self, inputs: dict, data_samples=None, mode: str = 'tensor'):
        imgs = inputs.get('imgs') if isinstance(inputs, dict) else None
        if imgs is None:
            raise ValueError('CameraAutoencoder needs inputs["imgs"]: pack "img" in the '
                             'pipeline (PackSceneInputs keys=[..., "img"])')
        if mode == 'loss':
            return self.loss(imgs)
        if mode == 'predict':
            return self.predict(imgs, data_samples)
        return self.decode(self.encode(imgs))

    def loss(self, imgs: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.train_views is not None and self.train_views < imgs.shape[1]:
            views = torch.randperm(imgs.shape[1], device=imgs.device)[:self.train_views]
            imgs = imgs[:, views]
        x = self._flat(imgs)
        post = self.vae.encode(x).latent_dist
        z = post.sample() if self.sample_posterior else post.mode()
        x_hat = self.vae.decode(z).sample
        err = (x_hat - x).abs() if self.rec_loss == 'l1' else (x_hat - x) ** 2
        losses = dict(loss_rec=err.mean())
        losses['loss_kl'] = self.kl_weight * post.kl().mean() / x[0].numel()
        with torch.no_grad():
            losses['psnr'] = psnr(x_hat, x).mean()
            losses['latent_std'] = (z * self.scaling_factor).std()
            losses['latent_mean'] = ((z - self.shift_factor) * self.scaling_factor).mean()
        return losses

    @torch.no_grad()
    def predict(self, imgs: torch.Tensor, data_samples=None) -> list:
        """Reconstructions: each data sample gets ``pred_imgs`` and ``gt_imgs``
        ``(V, 3, H, W)`` in [-1, 1] (the posterior mode is decoded) and ``latent_std`` (of
        its scaled latents; the diffusion model wants about 1: scale by 1 / this)."""
        latents = self.encode(imgs)
        rec = self.decode(latents).clamp(-1, 1)
        samples = data_samples if data_samples is not None else [None] * len(imgs)
        out = []
        for b in range(len(imgs)):
            sample = samples[b] if samples[b] is not None else _new_sample()
            sample.pred_imgs = rec[b]
            sample.gt_imgs = imgs[b].clamp(-1, 1)
            sample.latent_std = float(latents[b].std())
            out.append(sample)
        return out


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1] (peak-to-peak 2): ``(N, ...)`` -> ``(N,)``."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp(min=1e-10))


def _new_sample():
    from mmdet3d.structures import Det3DDataSample
    return Det3DDataSample()
