"""Depth supervision of the view transforms: masked depth-bin cross-entropy and metrics.

Targets come from the data path (``ProjectLidarDepth(strides=(s,), depth_bins=...)`` packed by
``SceneDataPreprocessor``): ``depth_bins_s{s}`` uint8 one-hot ``(B, V, D, h, w)``,
``depth_valid_s{s}`` bool ``(B, V, h, w)`` (a LiDAR point in the cell, depth inside the bins)
and ``depth_s{s}`` float32 ``(B, V, h, w)`` metres (minimum depth in the cell, 0 = none).
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from holodrive.registry import MODELS


def _target(inputs: dict, key: str, who: str) -> torch.Tensor:
    if key not in inputs:
        have = sorted(k for k in inputs if str(k).startswith('depth'))
        raise KeyError(f'{who}: inputs[{key!r}] is missing (depth keys present: {have}); '
                       f'add ProjectLidarDepth(strides=(...), depth_bins=...) to the pipeline '
                       f'and {key!r} to PackSceneInputs keys')
    return inputs[key]


@MODELS.register_module()
class DepthLoss(nn.Module):
    """Cross-entropy over depth bins at cells with a LiDAR point, masked elsewhere.

    ``loss = loss_weight * mean over valid cells of -log softmax(logits)[target bin]``; a
    batch without a valid cell gives 0 (still connected to the graph).

    Args:
        loss_weight: multiplier (the config's weight of the depth term).
        stride: feature stride ``s`` of the target keys ``depth_bins_s{s}`` /
            ``depth_valid_s{s}`` read by :meth:`from_inputs`.
    """

    def __init__(self, loss_weight: float = 1.0, stride: int = 16):
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.stride = int(stride)

    def forward(self, depth_logits: torch.Tensor, target_onehot: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        """
        Args:
            depth_logits: ``(B, V, D, h, w)`` (or ``(N, D, h, w)``) logits.
            target_onehot: same shape, one-hot over ``D`` (any dtype).
            valid: ``(B, V, h, w)`` (or ``(N, h, w)``) bool.
        """
        if target_onehot.shape != depth_logits.shape:
            raise ValueError(f'DepthLoss: depth targets {tuple(target_onehot.shape)} and logits '
                             f'{tuple(depth_logits.shape)} differ: the depth_bins and stride of '
                             'ProjectLidarDepth must match the view transform\'s')
        dim = depth_logits.dim() - 3
        onehot = target_onehot.to(depth_logits.dtype)
        mask = valid.bool() & (onehot.sum(dim) > 0)
        nll = -(onehot * F.log_softmax(depth_logits, dim=dim)).sum(dim)   # (..., h, w)
        count = mask.sum()
        loss = (nll * mask).sum() / count.clamp(min=1)
        return self.loss_weight * loss

    def from_inputs(self, depth_logits: torch.Tensor, inputs: dict) -> torch.Tensor:
        """The loss with the targets ``depth_bins_s{stride}`` / ``depth_valid_s{stride}``."""
        s = self.stride
        onehot = _target(inputs, f'depth_bins_s{s}', type(self).__name__)
        valid = _target(inputs, f'depth_valid_s{s}', type(self).__name__)
        return self(depth_logits, onehot, valid)


def expected_depth(depth_probs: torch.Tensor, bin_centres: torch.Tensor,
                   dim: int = 2) -> torch.Tensor:
    """``sum_d P(d) * centre_d``: ``(B, V, D, h, w)`` probabilities -> ``(B, V, h, w)`` metres."""
    shape = [1] * depth_probs.dim()
    shape[dim] = -1
    return (depth_probs * bin_centres.to(depth_probs).view(shape)).sum(dim)


@torch.no_grad()
def depth_metrics(pred_depth: torch.Tensor, gt_depth: torch.Tensor,
                  valid: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """AbsRel, RMSE and delta < 1.25 over the cells with ground truth.

    Args:
        pred_depth, gt_depth: same shape, metres (``gt_depth`` 0 = no point).
        valid: optional bool mask (default ``gt_depth > 0``).

    Returns:
        ``{'abs_rel': mean |p - g| / g, 'rmse': sqrt(mean (p - g)^2),
        'delta1': fraction with max(p / g, g / p) < 1.25, 'count': cells}``; NaN metrics
        when no cell has ground truth.
    """
    mask = gt_depth > 0 if valid is None else valid.bool() & (gt_depth > 0)
    p, g = pred_depth[mask].double(), gt_depth[mask].double()
    if g.numel() == 0:
        nan = float('nan')
        return dict(abs_rel=nan, rmse=nan, delta1=nan, count=0)
    ratio = torch.maximum(p / g, g / p.clamp(min=1e-6))
    return dict(abs_rel=float(((p - g).abs() / g).mean()),
                rmse=float(((p - g) ** 2).mean().sqrt()),
                delta1=float((ratio < 1.25).double().mean()),
                count=int(g.numel()))
