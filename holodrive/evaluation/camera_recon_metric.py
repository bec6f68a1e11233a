"""``CameraReconMetric``: reconstruction quality of the camera autoencoder, run by
``tools/test.py``; the protocol is printed with the scores.

Each data sample carries ``pred_imgs`` and ``gt_imgs`` (``(V, 3, H, W)`` in [-1, 1], as
``CameraAutoencoder.predict`` sets them). Scores over all views of the split, images mapped
to [0, 1] at the model's resolution:

- ``psnr``: mean per-image PSNR (dB, data range 1);
- ``ssim``: mean per-image SSIM (torchmetrics, Gaussian window 11, sigma 1.5);
- ``l1``: mean absolute error in [0, 1] units;
- ``latent_std``: RMS over samples of the scaled latents' standard deviation (when the model
  reports it); dividing the VAE's ``scaling_factor`` by it gives the diffusion model
  unit-variance latents (Stable Diffusion's convention).
"""
from typing import Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from holodrive.registry import METRICS


@METRICS.register_module()
class CameraReconMetric(BaseMetric):
    """PSNR, SSIM and L1 of reconstructed vs real camera views (module docstring)."""

    default_prefix = 'camera'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)

    @staticmethod
    def protocol() -> str:
        return ('images in [0, 1] at the model resolution, every view of every sample; PSNR: '
                'per image, data range 1, averaged; SSIM: torchmetrics '
                'structural_similarity_index_measure (Gaussian 11, sigma 1.5) per image, '
                'averaged; L1: mean absolute error')

    def process(self, data_batch, data_samples: Sequence) -> None:
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else lambda k, d=None: getattr(
                sample, k, d)
            for key in ('pred_imgs', 'gt_imgs'):
                if get(key) is None:
                    raise KeyError(f'CameraReconMetric: data sample lacks {key!r}: the model\'s '
                                   'predict() must set it (CameraAutoencoder does)')
            pred = ((get('pred_imgs').float().cpu() + 1) / 2).clamp(0, 1)
            gt = ((get('gt_imgs').float().cpu() + 1) / 2).clamp(0, 1)
            if pred.shape != gt.shape:
                raise ValueError(f'CameraReconMetric: pred_imgs {tuple(pred.shape)} and gt_imgs '
                                 f'{tuple(gt.shape)} differ')
            mse = ((pred - gt) ** 2).flatten(1).mean(1)
            std = get('latent_std')
            self.results.append(dict(
                latent_std=std,
                psnr=(10 * torch.log10(1.0 / mse.clamp(min=1e-10))).tolist(),
                ssim=ssim(pred, gt, data_range=1.0, reduction='none').tolist(),
                l1=(pred - gt).abs().flatten(1).mean(1).tolist()))

    def compute_metrics(self, results: list) -> dict:
        metrics = {}
        for key in ('psnr', 'ssim', 'l1'):
            values = [v for r in results for v in r[key]]
            metrics[key] = sum(values) / max(len(values), 1)
        stds = [r['latent_std'] for r in results if r.get('latent_std') is not None]
        if stds:
            metrics['latent_std'] = (sum(s * s for s in stds) / len(stds)) ** 0.5
        n = sum(len(r['psnr']) for r in results)
        print_log(f'CameraReconMetric protocol ({len(results)} samples, {n} views): '
                  f'{self.protocol()}', logger='current')
        return metrics
