"""``LiDARTokenizer``: the VQ-VAE that turns a sweep into a grid of BEV tokens and back.

    points (list of (N_b, >=3), LiDAR frame)
      -> SparseBEVEncoder -> z (B, D, h, w) -> VectorQuantizer -> codes (B, h, w)
      -> OccupancyDecoder -> occupancy logits (B, Z, H, W) [+ intensity]
      -> ScanSampler (predict only) -> a scan-like sweep (N, 5)

Loss: ``occupancy_loss_weight * BCE(logits, occupancy)`` (mean over voxels) +
``vq_loss_weight * (commitment [+ codebook])`` [+ ``intensity_loss_weight * L1`` at occupied
voxels]; the quantizer's code-usage statistics are logged beside the losses (``vq_perplexity``,
``vq_usage``, ``vq_dead``). The empty-space code (:meth:`blank_code`) is the code of an empty
sweep, computed from the model. Docs: ``docs/lidar_gen.md``.
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from holodrive.registry import MODELS
from .scan_sampler import ScanSampler


@MODELS.register_module()
class LiDARTokenizer(BaseModel):
    """VQ-VAE LiDAR tokenizer (module docstring).

    Args:
        encoder: ``SparseBEVEncoder`` config.
        quantizer: ``VectorQuantizer`` config (``code_dim`` = encoder ``out_channels``).
        decoder: ``OccupancyDecoder`` config (same grid as the encoder).
        scan: ``ScanSampler`` keyword arguments other than the grid (beams, ranges), or None
            to skip the points in ``predict``.
        occupancy_loss_weight, vq_loss_weight, intensity_loss_weight: loss weights.
        intensity_scale: raw intensity / this = the [0, 1] target (255 for nuScenes).
    """

    def __init__(self, encoder: dict, quantizer: dict, decoder: dict,
                 scan: Optional[dict] = None, occupancy_loss_weight: float = 1.0,
                 vq_loss_weight: float = 1.0, intensity_loss_weight: float = 0.0,
                 intensity_scale: float = 255.0, data_preprocessor: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.encoder = MODELS.build(encoder)
        self.quantizer = MODELS.build(quantizer)
        self.decoder = MODELS.build(decoder)
        self.grid = self.encoder.grid
        if (self.decoder.grid.point_cloud_range != self.grid.point_cloud_range
                or self.decoder.grid.voxel_size != self.grid.voxel_size):
            raise ValueError(f'tokenizer encoder grid {self.grid} and decoder grid '
                             f'{self.decoder.grid} differ: give both the same '
                             'point_cloud_range and voxel_size')
        self.scan = (ScanSampler(self.grid.point_cloud_range, self.grid.voxel_size, **scan)
                     if scan is not None else None)
        self.occupancy_loss_weight = float(occupancy_loss_weight)
        self.vq_loss_weight = float(vq_loss_weight)
        self.intensity_loss_weight = float(intensity_loss_weight)
        self.intensity_scale = float(intensity_scale)

    # ------------------------------------------------------------------ tokens
    @property
    def token_shape(self):
        """``(h, w)`` of the token grid."""
        return self.encoder.token_shape

    def quantize(self, points_list: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Encoder + quantizer outputs for a batch of sweeps (see ``VectorQuantizer``)."""
        return self.quantizer(self.encoder(points_list))

    @torch.no_grad()
    def tokenize(self, points_list: List[torch.Tensor]) -> torch.Tensor:
        """Sweeps -> token ids ``(B, h, w)`` long."""
        return self.quantize(points_list)['indices']

    def decode_tokens(self, indices: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Token ids ``(B, h, w)`` -> decoder outputs (``occupancy_logits`` ``(B, Z, H, W)``)."""
        if tuple(indices.shape[-2:]) != tuple(self.token_shape):
            raise ValueError(f'token grid {tuple(indices.shape[-2:])} does not match this '
                             f'tokenizer\'s {tuple(self.token_shape)}: tokens from another config?')
        return self.decoder(self.quantizer.lookup(indices))

    @torch.no_grad()
    def blank_code(self) -> int:
        """The empty-space code: the most frequent code of an empty sweep."""
        was_training = self.training
        self.eval()
        device = self.quantizer.embedding.weight.device
        lo = self.grid.point_cloud_range
        outside = torch.tensor([[lo[0] - 10.0, lo[1] - 10.0, lo[2] - 10.0]], device=device)
        ids = self.tokenize([outside])                 # no point inside: an empty volume
        self.train(was_training)
        return int(torch.mode(ids.flatten()).values)

    # ------------------------------------------------------------------ targets
    def intensity_targets(self, points_list: List[torch.Tensor]) -> torch.Tensor:
        """``(B, Z, H, W)`` mean intensity / ``intensity_scale`` of the points in each voxel."""
        nz, ny, nx = self.grid.shape
        out = []
        for points in points_list:
            keep, lin = self.grid.linear_cells(points)
            total = points.new_zeros(nz * ny * nx).index_add_(0, lin, points[keep, 3])
            count = points.new_zeros(nz * ny * nx).index_add_(
                0, lin, torch.ones_like(lin, dtype=points.dtype))
            out.append((total / count.clamp(min=1) / self.intensity_scale).clamp(0, 1))
        return torch.stack(out).view(len(points_list), nz, ny, nx)

    # ------------------------------------------------------------------ mmengine API
    def forward(self, inputs: dict, data_samples=None, mode: str = 'tensor'):
        points = inputs.get('points') if isinstance(inputs, dict) else None
        if not points:
            raise ValueError('LiDARTokenizer needs inputs["points"]: pack "points" in the '
                             'pipeline (PackSceneInputs keys=[..., "points"])')
        if mode == 'loss':
            return self.loss(points)
        if mode == 'predict':
            return self.predict(points, data_samples)
        vq = self.quantize(points)
        return self.decoder(vq['quantized'])['occupancy_logits']

    def loss(self, points_list: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        vq = self.quantize(points_list)
        out = self.decoder(vq['quantized'])
        target = self.grid.occupancy(points_list)
        losses = dict(loss_occupancy=self.occupancy_loss_weight * F.binary_cross_entropy_with_logits(
            out['occupancy_logits'], target))
        losses['loss_commit'] = self.vq_loss_weight * vq['loss_commit']
        if 'loss_codebook' in vq:
            losses['loss_codebook'] = self.vq_loss_weight * vq['loss_codebook']
        if self.intensity_loss_weight > 0 and 'intensity' in out:
            occupied = target > 0
            err = (out['intensity'] - self.intensity_targets(points_list)).abs()
            losses['loss_intensity'] = self.intensity_loss_weight * (
                err[occupied].mean() if occupied.any() else err.sum() * 0)
        with torch.no_grad():
            pred = out['occupancy_logits'] > 0
            inter = (pred & (target > 0)).sum().float()
            union = (pred | (target > 0)).sum().float().clamp(min=1)
        losses.update(vq_perplexity=vq['vq_perplexity'], vq_usage=vq['vq_usage'],
                      vq_dead=vq['vq_dead'], occupancy_iou=inter / union)
        return losses

    @torch.no_grad()
    def predict(self, points_list: List[torch.Tensor], data_samples=None) -> list:
        """Reconstructions: each data sample gets ``pred_occupancy`` / ``gt_occupancy``
        (``(M, 3)`` occupied cells k, i, j), ``pred_tokens`` ``(h, w)`` and, with a scan
        sampler, ``pred_points`` ``(N, 5)``."""
        vq = self.quantize(points_list)
        out = self.decoder(vq['quantized'])
        samples = data_samples if data_samples is not None else [None] * len(points_list)
        results = []
        for b, points in enumerate(points_list):
            sample = samples[b] if samples[b] is not None else _new_sample()
            occ = out['occupancy_logits'][b] > 0
            sample.pred_occupancy = torch.nonzero(occ)
            sample.gt_occupancy = self.grid.voxel_indices(points)
            sample.gt_points = points[:, :3]
            sample.pred_tokens = vq['indices'][b]
            if self.scan is not None:
                sample.pred_points = self.scan(
                    occ, out['intensity'][b] * self.intensity_scale
                    if 'intensity' in out else None)
            results.append(sample)
        return results


def _new_sample():
    from mmdet3d.structures import Det3DDataSample
    return Det3DDataSample()
