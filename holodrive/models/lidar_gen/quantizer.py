"""Vector quantizer of the LiDAR tokenizer (VQ-VAE, van den Oord et al. 2017).

For encoder outputs ``z`` (one ``D``-vector per BEV token) the code is the nearest codebook
entry ``k = argmin_j ||z - e_j||^2``; the decoder sees ``z + sg(e_k - z)`` (straight-through).
Two codebook updates (config ``ema_decay``):

- ``ema_decay=None``: codebook loss ``||sg(z) - e_k||^2`` plus commitment ``beta ||z - sg(e_k)||^2``;
- ``ema_decay=d``: no codebook loss; per-code counts ``N_j`` and sums ``m_j`` follow exponential
  moving averages, ``N_j <- d N_j + (1 - d) n_j``, ``m_j <- d m_j + (1 - d) sum_{z -> j} z``,
  ``e_j = m_j / N~_j`` with Laplace smoothing ``N~_j = (N_j + eps) / (N + K eps) * N``; commitment
  loss as above.

Dead-code restarts: every training step, codes whose EMA count (or, without EMA, whose
usage-count EMA) fell below ``dead_code_threshold`` take the value of random encoder outputs of
the batch. Counts and restarts are synchronised across DDP ranks. Statistics returned for
logging: ``vq_perplexity`` (exp of the entropy of the batch's code histogram), ``vq_usage``
(fraction of codes used in the batch) and ``vq_dead`` (codes below the threshold).
This is written here rather than taken from a package: no vector-quantisation library on the
index covers EMA + restarts + DDP; diffusers' ``VectorQuantizer`` has the straight-through
variant only.
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine import dist
from torch import nn

from holodrive.registry import MODELS


@MODELS.register_module()
class VectorQuantizer(nn.Module):
    """Nearest-code quantizer (module docstring).

    Args:
        num_codes: codebook size ``K``.
        code_dim: code width ``D`` (the encoder's ``out_channels``).
        beta: commitment weight.
        ema_decay: EMA decay ``d`` or None for the codebook-loss variant.
        dead_code_threshold: restart codes whose count EMA is below this (0 disables).
        eps: Laplace smoothing of the EMA counts.
    """

    def __init__(self, num_codes: int = 512, code_dim: int = 64, beta: float = 0.25,
                 ema_decay: Optional[float] = 0.99, dead_code_threshold: float = 1e-2,
                 eps: float = 1e-5):
        super().__init__()
        self.num_codes, self.code_dim, self.beta = int(num_codes), int(code_dim), float(beta)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.dead_code_threshold, self.eps = float(dead_code_threshold), float(eps)
        self.embedding = nn.Embedding(self.num_codes, self.code_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / self.num_codes, 1.0 / self.num_codes)
        # usage EMA: tokens per step assigned to each code (also the EMA counts N_j)
        self.register_buffer('cluster_size', torch.ones(self.num_codes))
        if self.ema_decay is not None:
            self.embedding.weight.requires_grad_(False)
            self.register_buffer('embed_avg', self.embedding.weight.detach().clone())

    def codes(self, z_flat: torch.Tensor) -> torch.Tensor:
        """Nearest code of each row of ``z_flat`` ``(N, D)`` -> ``(N,)`` long."""
        e = self.embedding.weight
        dist_sq = (z_flat.pow(2).sum(1, keepdim=True) - 2 * z_flat @ e.t()
                   + e.pow(2).sum(1)[None])
        return dist_sq.argmin(dim=1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, h, w)`` -> code vectors ``(B, D, h, w)``."""
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(f'token ids must lie in [0, {self.num_codes}) (the codebook size of '
                             f'this tokenizer); got {int(indices.min())}..{int(indices.max())}: '
                             'tokens from another codebook/config?')
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``z`` ``(B, D, h, w)`` -> dict ``quantized`` (straight-through, same shape),
        ``indices`` ``(B, h, w)``, ``loss_commit`` [+ ``loss_codebook``] and the statistics."""
        b, d, h, w = z.shape
        if d != self.code_dim:
            raise ValueError(f'quantizer code_dim is {self.code_dim} but the encoder gives {d} '
                             'channels: set quantizer.code_dim = encoder.out_channels')
        z_flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        indices = self.codes(z_flat.detach())
        one_hot = F.one_hot(indices, self.num_codes).type_as(z_flat)
        counts = one_hot.sum(0)
        if self.training:
            self._update(z_flat.detach(), one_hot, counts)
        e_k = self.embedding(indices)
        out = dict(loss_commit=self.beta * F.mse_loss(z_flat, e_k.detach()))
        if self.ema_decay is None:
            out['loss_codebook'] = F.mse_loss(e_k, z_flat.detach())
        quantized = z_flat + (e_k - z_flat).detach()
        probs = counts / counts.sum().clamp(min=1)
        out.update(
            quantized=quantized.view(b, h, w, d).permute(0, 3, 1, 2).contiguous(),
            indices=indices.view(b, h, w),
            vq_perplexity=torch.exp(-(probs * torch.log(probs + 1e-10)).sum()).detach(),
            vq_usage=(counts > 0).float().mean().detach(),
            vq_dead=(self.cluster_size < self.dead_code_threshold).float().sum().detach())
        return out

    @torch.no_grad()
    def _update(self, z_flat: torch.Tensor, one_hot: torch.Tensor, counts: torch.Tensor):
        counts = counts.clone()
        dist.all_reduce(counts, op='sum')
        decay = 0.99 if self.ema_decay is None else self.ema_decay
        self.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        if self.ema_decay is not None:
            sums = one_hot.t() @ z_flat
            dist.all_reduce(sums, op='sum')
            self.embed_avg.mul_(decay).add_(sums, alpha=1 - decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
            self.embedding.weight.copy_(self.embed_avg / smoothed[:, None])
        if self.dead_code_threshold > 0:
            self._restart_dead(z_flat)

    @torch.no_grad()
    def _restart_dead(self, z_flat: torch.Tensor):
        dead = self.cluster_size < self.dead_code_threshold
        num_dead = int(dead.sum())
        if num_dead == 0 or len(z_flat) == 0:
            return
        pick = torch.randint(0, len(z_flat), (num_dead,), device=z_flat.device)
        new = z_flat[pick].clone()
        dist.broadcast(new, src=0)                     # every rank restarts to the same codes
        self.embedding.weight[dead] = new
        self.cluster_size[dead] = 1.0
        if self.ema_decay is not None:
            self.embed_avg[dead] = new
