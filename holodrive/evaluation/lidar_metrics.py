"""LiDAR generation / reconstruction metrics (weight-free), each with its protocol stated.

- :func:`chamfer_distance`: bidirectional, exact (pure-PyTorch chunked brute force on GPU,
  scipy's KD-tree on CPU),
  ``0.5 * (mean_a min_b |a - b| + mean_b min_a |b - a|)`` in metres (Euclidean, not squared),
  on the points inside a stated ROI.
- :func:`voxel_iou`: |A and B| / |A or B| of two occupied-voxel sets on the tokenizer's grid.
- :func:`bev_histogram`, :func:`mmd`, :func:`jsd`: BEV point histograms (``bins x bins`` over a
  square field, normalised to sum 1), Gaussian-kernel MMD^2 between two sets of histograms
  (``k(p, q) = exp(-|p - q|^2 / (2 sigma^2))``) and the Jensen-Shannon distance
  (``scipy.spatial.distance.jensenshannon``, base 2) between the two sets' mean histograms.
  Defaults: 100 x 100 bins over [-50, 50]^2 m and sigma 0.5, the LidarDM protocol
  (``../shared/reference`` holodrive.md section 9).
"""
from typing import Sequence, Tuple

import numpy as np
import torch

#: default Chamfer ROI ``[x_min, y_min, z_min, x_max, y_max, z_max]`` (metres, LiDAR frame):
#: the +-40 m "inner" region used by OpenDWM.
CHAMFER_ROI = (-40.0, -40.0, -4.5, 40.0, 40.0, 4.5)


def crop_points(points: torch.Tensor, roi: Sequence[float]) -> torch.Tensor:
    """Rows of ``points`` ``(N, >=3)`` with x, y, z inside ``roi``."""
    lo, hi = points.new_tensor(roi[:3]), points.new_tensor(roi[3:])
    keep = ((points[:, :3] >= lo) & (points[:, :3] < hi)).all(dim=1)
    return points[keep]


def _nearest_torch(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """Exact nearest distances, brute force in row chunks: ``|a|^2 + |b|^2 - 2 a.b``."""
    b_sq, b_t = (b * b).sum(1)[None], b.t().contiguous()
    out = []
    for s in range(0, len(a), chunk):
        x = a[s:s + chunk]
        d2 = torch.addmm(b_sq, x, b_t, alpha=-2.0).min(dim=1).values + (x * x).sum(1)
        out.append(d2.clamp(min=0).sqrt())
    return torch.cat(out)


def _nearest_kdtree(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from scipy.spatial import cKDTree
    dist, _ = cKDTree(b.double().cpu().numpy()).query(a.double().cpu().numpy(), k=1)
    return torch.from_numpy(dist)


def chamfer_distance(points_a: torch.Tensor, points_b: torch.Tensor,
                     roi: Sequence[float] = CHAMFER_ROI, chunk: int = 2048,
                     method: str = 'auto') -> float:
    """Bidirectional Chamfer distance in metres (module docstring); ``inf`` if one side is
    empty inside the ROI.

    ``method``: ``'torch'`` (pure PyTorch, exact, chunked brute force: the GPU path),
    ``'kdtree'`` (scipy's exact KD-tree: the CPU path, where brute force over two 30k-point
    sweeps takes seconds) or ``'auto'`` (torch on CUDA tensors, else kdtree). Both give the
    same distances up to float32 rounding (test)."""
    a = crop_points(points_a[:, :3].float(), roi)
    b = crop_points(points_b[:, :3].float(), roi)
    if len(a) == 0 or len(b) == 0:
        return float('inf')
    if method == 'auto':
        method = 'torch' if a.is_cuda else 'kdtree'
    if method == 'torch':
        ab, ba = _nearest_torch(a, b, chunk), _nearest_torch(b, a, chunk)
    elif method == 'kdtree':
        ab, ba = _nearest_kdtree(a, b), _nearest_kdtree(b, a)
    else:
        raise ValueError(f"chamfer method must be 'auto', 'torch' or 'kdtree', got {method!r}")
    return float(0.5 * (ab.mean() + ba.mean()))


def voxel_iou(kij_a: torch.Tensor, kij_b: torch.Tensor) -> Tuple[int, int]:
    """Intersection and union counts of two ``(M, 3)`` occupied-cell sets (unique rows)."""
    both = torch.cat([kij_a, kij_b]).long()
    _, counts = torch.unique(both, dim=0, return_counts=True)
    return int((counts > 1).sum()), int(len(counts))


def bev_histogram(points: torch.Tensor, field: float = 50.0, bins: int = 100) -> np.ndarray:
    """``(bins, bins)`` histogram of x, y over ``[-field, field]^2``, normalised to sum 1
    (all zeros if no point falls inside)."""
    xy = points[:, :2].detach().cpu().double().numpy()
    hist, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins,
                                range=[[-field, field], [-field, field]])
    total = hist.sum()
    return hist / total if total > 0 else hist


def mmd(hists_a: Sequence[np.ndarray], hists_b: Sequence[np.ndarray],
        sigma: float = 0.5) -> float:
    """Biased Gaussian-kernel MMD^2 between two sets of histograms."""
    a = np.stack([h.ravel() for h in hists_a])
    b = np.stack([h.ravel() for h in hists_b])

    def kernel(x, y):
        d2 = (x ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None] - 2 * x @ y.T
        return np.exp(-np.maximum(d2, 0) / (2 * sigma ** 2)).mean()

    return float(kernel(a, a) + kernel(b, b) - 2 * kernel(a, b))


def jsd(hists_a: Sequence[np.ndarray], hists_b: Sequence[np.ndarray]) -> float:
    """Jensen-Shannon distance (base 2: in [0, 1]) between the mean histograms of two sets;
    1 (the maximum) when one side has no point in the field."""
    from scipy.spatial.distance import jensenshannon
    p = np.mean([h.ravel() for h in hists_a], axis=0)
    q = np.mean([h.ravel() for h in hists_b], axis=0)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0 if p.sum() == q.sum() else 1.0
    return float(jensenshannon(p, q, base=2))
