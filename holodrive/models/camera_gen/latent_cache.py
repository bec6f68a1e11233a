"""Cached VAE latents of a split, so the denoiser's training skips the frozen encoder.

The tiny denoiser spends about a fifth of each step encoding the six views with the frozen
VAE; with a deterministic image augmentation the encoder sees the same views every epoch, so
the posterior can be computed once:

    python tools/create_data.py latents --config configs/holodrive/camera/camera_gen_tiny_synthetic.py \
        --vae-checkpoint W/cvae/epoch_2.pth --cfg-options data_root=DIR/
    python tools/train.py configs/holodrive/camera/camera_gen_tiny_synthetic.py --cfg-options \
        data_root=DIR/ model.vae_checkpoint=W/cvae/epoch_2.pth model.latent_cache=DIR/camera_latents/train

Layout of ``camera_latents/{split}/``:

- ``{token}.safetensors``: ``moments`` float32 ``(V, 2C, h, w)`` (the diagonal-Gaussian
  posterior's mean and log-variance of the raw, unscaled latent, diffusers' layout) and
  ``img_aug_matrix`` ``(V, 4, 4)`` (the views' augmentation when they were encoded);
- ``meta.json``: the VAE checkpoint's sha256, the image size, the number of keyframes and the
  statistics of the posterior means (``mean``, ``std``; ``latent_shift = mean`` and
  ``latent_scale = 1 / std`` make the diffusion latents zero-mean and unit-variance).

:class:`LatentCache` checks the checkpoint hash once and each keyframe's augmentation against
the cached one (a random augmentation cannot use a cache) and raises one line naming the fix.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from holodrive.utils.io import atomic_open, sha256_file
from .autoencoder import CameraGenConfigError

META = 'meta.json'
CACHE_FORMAT_VERSION = 1


def _token(meta: dict, index: int) -> str:
    token = meta.get('token')
    if token is None:
        raise CameraGenConfigError(f'keyframe {index} has no "token" in its metainfo: the '
                                   'latent cache is keyed by the sample token')
    return str(token)


class LatentCache:
    """Reads ``camera_latents/{split}`` (module docstring).

    Args:
        cache_dir: the folder written by :func:`write_latent_cache`.
        vae_checkpoint: the VAE weights the model loads; their sha256 must be the cache's.
    """

    def __init__(self, cache_dir: str, vae_checkpoint: Optional[str] = None):
        meta_path = osp.join(cache_dir, META)
        if not osp.isfile(meta_path):
            raise CameraGenConfigError(
                f'model.latent_cache: {meta_path} not found; write the cache with '
                '`tools/create_data.py latents --config CFG --vae-checkpoint CKPT`')
        with open(meta_path, encoding='utf-8') as f:
            self.meta = json.load(f)
        if vae_checkpoint and self.meta.get('vae_sha256') != sha256_file(vae_checkpoint):
            raise CameraGenConfigError(
                f'model.latent_cache: {cache_dir} was written with another VAE than '
                f'{vae_checkpoint}; rewrite it with `tools/create_data.py latents '
                f'--vae-checkpoint {vae_checkpoint}`')
        self.cache_dir = cache_dir

    def load(self, data_samples: Sequence, device=None) -> torch.Tensor:
        """Posterior moments ``(B, V, 2C, h, w)`` of the batch's keyframes."""
        from safetensors.numpy import load_file
        moments = []
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            token = _token(meta, i)
            path = osp.join(self.cache_dir, f'{token}.safetensors')
            if not osp.isfile(path):
                raise CameraGenConfigError(
                    f'model.latent_cache: {path} not found (keyframe {token} is not cached); '
                    'rewrite the cache for this split')
            data = load_file(path)
            aug = meta.get('img_aug_matrix')
            if aug is not None and not np.allclose(np.asarray(aug, np.float32),
                                                   data['img_aug_matrix'], atol=1e-4):
                raise CameraGenConfigError(
                    f'model.latent_cache: the views of {token} are augmented differently '
                    'from when they were cached; a cache needs a deterministic '
                    'MultiViewImageAug (fixed resize, no flip / rotation): drop '
                    'model.latent_cache or the random augmentation')
            moments.append(torch.from_numpy(data['moments']))
        return torch.stack(moments).to(device)


@torch.no_grad()
def write_latent_cache(cfg, vae_checkpoint: str, split: str = 'train',
                       out_dir: Optional[str] = None, progress: bool = True) -> Dict:
    """Encode every keyframe of ``cfg``'s ``{split}_dataloader`` dataset with the config's
    VAE and ``vae_checkpoint``; returns the written ``meta`` (module docstring)."""
    from mmengine.dataset import pseudo_collate
    from mmengine.runner.checkpoint import load_checkpoint
    from safetensors.numpy import save
    from holodrive.registry import DATASETS, MODELS
    if split not in ('train', 'val', 'test'):
        raise CameraGenConfigError(f'split {split!r}: use train, val or test')
    if not osp.isfile(vae_checkpoint):
        raise CameraGenConfigError(f'--vae-checkpoint {vae_checkpoint}: file not found')
    dataset = DATASETS.build(cfg[f'{split}_dataloader']['dataset'])
    vae = MODELS.build(cfg.model.vae)
    load_checkpoint(vae, vae_checkpoint, map_location='cpu', logger='silent')
    vae.eval()
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    out_dir = out_dir or osp.join(cfg.data_root, 'camera_latents', split)
    os.makedirs(out_dir, exist_ok=True)
    total, total_sq, count, shape = 0.0, 0.0, 0, None
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc=f'latents {split}', unit='keyframe')
    for idx in indices:
        batch = preprocessor(pseudo_collate([dataset[idx]]), False)
        sample = batch['data_samples'][0]
        imgs = batch['inputs']['imgs']                                  # (1, V, 3, H, W)
        moments = vae.vae.encode(vae._flat(imgs)).latent_dist.parameters   # (V, 2C, h, w)
        mean = moments[:, :vae.latent_channels].double()
        total += float(mean.sum())
        total_sq += float((mean ** 2).sum())
        count += mean.numel()
        shape = tuple(imgs.shape[-2:])
        aug = sample.metainfo.get('img_aug_matrix')
        aug = np.eye(4, dtype=np.float32)[None].repeat(len(moments), 0) if aug is None \
            else np.asarray(aug, np.float32)
        with atomic_open(osp.join(out_dir, f'{_token(sample.metainfo, idx)}.safetensors')) as f:
            f.write(save(dict(moments=np.ascontiguousarray(moments.float().numpy()),
                              img_aug_matrix=np.ascontiguousarray(aug))))
    mean = total / max(count, 1)
    std = float(np.sqrt(max(total_sq / max(count, 1) - mean ** 2, 0.0)))
    meta = dict(format_version=CACHE_FORMAT_VERSION, split=split, num_keyframes=len(dataset),
                vae_checkpoint=osp.abspath(vae_checkpoint),
                vae_sha256=sha256_file(vae_checkpoint), image_hw=list(shape or ()),
                latent_channels=vae.latent_channels, mean=mean, std=std)
    with atomic_open(osp.join(out_dir, META), 'w') as f:
        json.dump(meta, f, indent=1)
    return meta

