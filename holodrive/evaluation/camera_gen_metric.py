"""``CameraGenMetric``: quality of generated multi-view frames, run by ``tools/test.py``;
the protocol (feature file and its sha256, split, resolution, crop, sample count, sampler) is
printed with the scores.

Each data sample carries what ``MultiViewDiffusion.predict`` sets: ``gen_imgs`` /
``real_imgs`` uint8 ``(V, 3, H, W)``, ``cam2img_aug`` ``(V, 3, 3)``, ``views_cam2lidar``
``(V, 4, 4)``, ``neighbours`` ``(V, 2)`` and optionally ``gen_depth`` / ``real_depth`` /
``gt_depth`` ``(V, h, w)`` metres. Scores, over every view of every sample:

- ``fid``, ``kid_mean``, ``kid_std``: torchmetrics ``FrechetInceptionDistance`` /
  ``KernelInceptionDistance`` on the 2048-d pool features of
  :class:`~holodrive.evaluation.inception.FIDInceptionV3` (generated vs real views of the
  same samples; KID subsets of ``min(kid_subset_size, N)`` views, seeded);
- ``mv_real``, ``mv_gen``, ``mv_ratio``: epipolar-consistent SIFT matches per neighbouring
  view pair (:mod:`~holodrive.evaluation.multiview_consistency`), real and generated, and
  generated / real;
- ``depth_abs_rel_real`` / ``depth_abs_rel_gen`` (+ ``_rmse``, ``_delta1``): the depth
  branch's expected depth against the LiDAR depth at the latent stride, on the real views'
  latents and at the last sampling step of the generated ones.

With ``save_dir``, every sample's views are also written to ``save_dir/TOKEN.npz``
(``gen`` / ``real`` uint8 ``(V, 3, H, W)`` RGB, ``img_aug_matrix`` ``(V, 4, 4)``,
``camera_names`` ``(V,)``; no pickled objects), which the layout-fidelity step of
``tools/analysis_tools/camera_gen_benchmark.py`` puts back into a copy of the world for the
camera detector.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from holodrive.registry import METRICS

DEFAULT_FEATURES = osp.join(osp.expanduser('~'), '.cache', 'holodrive',
                            'fid_inception_v3_seed0.safetensors')


class _Precomputed(torch.nn.Module):
    """The torchmetrics feature extractor of features computed in ``process`` (so that
    mmengine gathers them across ranks like any result)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features):
        return features


def _get(sample, key):
    return sample.get(key) if isinstance(sample, dict) else getattr(sample, key, None)


@METRICS.register_module()
class CameraGenMetric(BaseMetric):
    """FID / KID, multi-view consistency and depth of generated frames (module docstring).

    Args:
        feature_weights: safetensors of the FID InceptionV3 (a converted ``pt_inception``
            file), or None: the seeded file at ``~/.cache/holodrive/`` (written once).
        split: the split's name for the protocol line (e.g. ``'val'``).
        crop: how the views were cropped / resized, for the protocol line.
        kid_subset_size: views per KID subset (at most the number of views).
        kid_subsets: number of KID subsets.
        epipolar_px, sift_ratio, upscale: ``EpipolarMatcher`` settings.
        save_dir: write each sample's generated and real views there (module docstring),
            or None.
    """

    default_prefix = 'camera_gen'

    def __init__(self, feature_weights: Optional[str] = None, split: str = 'val',
                 crop: str = '', kid_subset_size: int = 100, kid_subsets: int = 100,
                 epipolar_px: float = 2.0, sift_ratio: float = 0.75, upscale: int = 2,
                 save_dir: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        from .inception import FIDInceptionV3, seeded_inception_file, sha256_file
        from .multiview_consistency import EpipolarMatcher
        if feature_weights is None:
            self.feature_weights, self.feature_sha256 = seeded_inception_file(DEFAULT_FEATURES)
        else:
            self.feature_weights = feature_weights
            self.feature_sha256 = None
        self.net = FIDInceptionV3(self.feature_weights)        # raises on a missing file
        if self.feature_sha256 is None:
            self.feature_sha256 = sha256_file(self.feature_weights)
        self.split, self.crop = split, crop
        self.kid_subset_size, self.kid_subsets = int(kid_subset_size), int(kid_subsets)
        self.matcher = EpipolarMatcher(epipolar_px, sift_ratio, upscale)
        self.save_dir = save_dir

    def _save(self, sample, gen: torch.Tensor, real: torch.Tensor) -> None:
        meta = sample.get('metainfo', sample) if isinstance(sample, dict) else sample.metainfo
        names, aug = meta.get('camera_names'), meta.get('img_aug_matrix')
        token = meta.get('token')
        if token is None or names is None or aug is None:
            raise KeyError('CameraGenMetric(save_dir=...): the data sample needs the metainfo '
                           'keys token, camera_names and img_aug_matrix (PackSceneInputs packs '
                           'them)')
        os.makedirs(self.save_dir, exist_ok=True)
        path = osp.join(self.save_dir, f'{token}.npz')
        tmp = path[:-4] + '.tmp.npz'
        np.savez_compressed(tmp, gen=gen.numpy(), real=real.numpy(),
                            img_aug_matrix=np.asarray(aug, np.float64),
                            camera_names=np.asarray(list(names), dtype=str))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ per batch
    def _consistency(self, imgs: torch.Tensor, k: np.ndarray, poses: np.ndarray,
                     pairs) -> list:
        from .multiview_consistency import fundamental_matrix
        views = imgs.permute(0, 2, 3, 1).numpy()
        return [self.matcher(views[i], views[j], fundamental_matrix(k[i], k[j], poses[i],
                                                                    poses[j]))[1]
                for i, j in pairs]

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            for key in ('gen_imgs', 'real_imgs', 'cam2img_aug', 'views_cam2lidar'):
                if _get(sample, key) is None:
                    raise KeyError(f'CameraGenMetric: data sample lacks {key!r}: the model\'s '
                                   'predict() must set it (MultiViewDiffusion does)')
            gen, real = _get(sample, 'gen_imgs').cpu(), _get(sample, 'real_imgs').cpu()
            if gen.shape != real.shape or gen.dtype != torch.uint8:
                raise ValueError(f'CameraGenMetric: gen_imgs {tuple(gen.shape)} {gen.dtype} '
                                 f'and real_imgs {tuple(real.shape)} must be equal uint8 shapes')
            if self.save_dir:
                self._save(sample, gen, real)
            with torch.no_grad():
                feats = self.net(torch.cat([gen, real])).numpy().astype(np.float64)
            rec = dict(gen_feats=feats[:len(gen)], real_feats=feats[len(gen):],
                       hw=tuple(gen.shape[-2:]), protocol=_get(sample, 'sample_protocol'))
            nb = _get(sample, 'neighbours')
            if nb is not None:
                pairs = sorted({tuple(sorted((i, int(j)))) for i, row in
                                enumerate(nb.tolist()) for j in row if int(j) != i})
                k = _get(sample, 'cam2img_aug').double().cpu().numpy()
                poses = _get(sample, 'views_cam2lidar').double().cpu().numpy()
                rec['mv_gen'] = self._consistency(gen, k, poses, pairs)
                rec['mv_real'] = self._consistency(real, k, poses, pairs)
            gt = _get(sample, 'gt_depth')
            if gt is not None and _get(sample, 'gen_depth') is not None:
                mask = gt > 0
                rec['depth'] = dict(gt=gt[mask].numpy(),
                                    gen=_get(sample, 'gen_depth')[mask].numpy(),
                                    real=_get(sample, 'real_depth')[mask].numpy())
            self.results.append(rec)

    # ------------------------------------------------------------------ scores
    def protocol(self, results: list) -> str:
        h, w = results[0]['hw']
        views = sum(len(r['gen_feats']) for r in results)
        return (f'split {self.split}, {len(results)} samples / {views} views at {w}x{h}'
                f'{", " + self.crop if self.crop else ""}; features: FID InceptionV3 pool '
                f'(2048-d, 299x299 bilinear) from {self.feature_weights} sha256 '
                f'{self.feature_sha256}; KID subsets {self.kid_subsets} x '
                f'{min(self.kid_subset_size, views)} (seed 0); multi-view: SIFT x'
                f'{self.matcher.upscale}, ratio {self.matcher.ratio}, epipolar '
                f'{self.matcher.threshold_px} px, ring-neighbour pairs; depth: bin-centre '
                f'expectation vs LiDAR min depth per latent cell; sampling: '
                f'{results[0]["protocol"]}')

    def compute_metrics(self, results: list) -> dict:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        from holodrive.models.view_transforms import depth_metrics
        gen = torch.as_tensor(np.concatenate([r['gen_feats'] for r in results]))
        real = torch.as_tensor(np.concatenate([r['real_feats'] for r in results]))
        fid = FrechetInceptionDistance(feature=_Precomputed(gen.shape[1]))
        fid.update(real, real=True)
        fid.update(gen, real=False)
        out = dict(fid=float(fid.compute()))
        subset = min(self.kid_subset_size, len(gen))
        with torch.random.fork_rng():
            torch.manual_seed(0)
            kid = KernelInceptionDistance(feature=_Precomputed(gen.shape[1]),
                                          subsets=self.kid_subsets, subset_size=subset)
            kid.update(real, real=True)
            kid.update(gen, real=False)
            kid_mean, kid_std = kid.compute()
        out.update(kid_mean=float(kid_mean), kid_std=float(kid_std))
        if all('mv_gen' in r for r in results):
            out['mv_gen'] = float(np.mean([c for r in results for c in r['mv_gen']]))
            out['mv_real'] = float(np.mean([c for r in results for c in r['mv_real']]))
            out['mv_ratio'] = out['mv_gen'] / max(out['mv_real'], 1e-9)
        if all('depth' in r for r in results):
            gt = torch.as_tensor(np.concatenate([r['depth']['gt'] for r in results]))
            for which in ('real', 'gen'):
                pred = torch.as_tensor(np.concatenate([r['depth'][which] for r in results]))
                m = depth_metrics(pred, gt)
                out.update({f'depth_abs_rel_{which}': m['abs_rel'],
                            f'depth_rmse_{which}': m['rmse'],
                            f'depth_delta1_{which}': m['delta1']})
        print_log(f'CameraGenMetric protocol: {self.protocol(results)}', logger='current')
        print_log('CameraGenMetric: ' + ', '.join(f'{k} {v:.4g}' for k, v in out.items()),
                  logger='current')
        return out
