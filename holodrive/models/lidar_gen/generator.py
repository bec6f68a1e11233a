"""``LiDARGenerator``: layout-conditioned masked-token (MaskGIT) generation of LiDAR sweeps.

Training (tokenizer frozen): sweep -> token ids ``(B, h, w)``; per sample a mask ratio
``gamma(r) = cos(pi r / 2)``, ``r ~ U(0, 1)`` (at least one token masked); masked ids -> ``mask_id``;
``BEVTokenTransformer`` predicts the masked ids from the rest and the layout; cross-entropy on
the masked positions. The layout is dropped (zeroed) with probability ``condition_dropout``,
which trains the unconditional model classifier-free guidance needs. With a ``text_encoder``
(the camera branch's ``CaptionEncoder``) the keyframe caption (``GenerateCaption``, in the
data samples' metainfo) is cross-attended by every layer and replaced by ``''`` with the same
probability, drawn independently; the unconditional branch of guidance has a zero layout
and the empty caption.

Sampling (:meth:`sample`, MaskGIT, Chang et al. 2022): start fully masked; at step
``t = 1..T`` sample every masked id from ``softmax(logits / temperature)`` (guided logits
``l_u + s (l_c - l_u)``; the blank (empty-space) code's logit shifted by ``blank_logit_offset``,
negative = suppressed), keep the ``N (1 - cos(pi t / 2T))`` most confident ids and re-mask the
rest; the confidences get Gumbel noise scaled by ``temperature * (1 - t / T)``. Tokens ->
tokenizer decoder -> occupancy -> :class:`ScanSampler` sweep. Docs: ``docs/lidar_gen.md``.
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import load_checkpoint

from holodrive.engine.config_check import ConfigError
from holodrive.models.camera_gen.text_encoder import caption_texts
from holodrive.registry import MODELS


class LayoutError(ConfigError, ValueError):
    """A layout the generator cannot use (one line naming the problem and the fix)."""


@MODELS.register_module()
class LiDARGenerator(BaseModel):
    """Masked-token LiDAR generator (module docstring).

    Args:
        tokenizer: ``LiDARTokenizer`` config (frozen; kept in eval mode).
        transformer: ``BEVTokenTransformer`` config; ``num_codes`` / ``token_shape`` default
            to the tokenizer's (a different value is an error).
        tokenizer_checkpoint: trained tokenizer weights (``tools/train.py`` checkpoint).
        layout_keys: packed BEV rasters concatenated as the layout (in this order).
        condition_dropout: probability of training a sample without its layout (and,
            independently, without its caption).
        text_encoder: ``CaptionEncoder`` config (caption conditioning), or None; its hidden
            size is the transformer's ``context_dim`` (set by default, another value is an
            error).
        num_steps, temperature, guidance_scale, blank_logit_offset: sampling defaults.
        label_smoothing: of the masked-token cross-entropy.
        seed: sampling seed (sample ``i`` of a batch uses ``seed + sample_idx``).
    """

    def __init__(self, tokenizer: dict, transformer: dict,
                 tokenizer_checkpoint: Optional[str] = None,
                 layout_keys: Sequence[str] = ('map_bev', 'box_bev'),
                 condition_dropout: float = 0.1, num_steps: int = 12,
                 temperature: float = 1.0, guidance_scale: float = 1.0,
                 blank_logit_offset: float = 0.0, label_smoothing: float = 0.1,
                 seed: int = 0, text_encoder: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.tokenizer = MODELS.build(tokenizer)
        if tokenizer_checkpoint:
            load_checkpoint(self.tokenizer, tokenizer_checkpoint, map_location='cpu',
                            strict=True, revise_keys=[(r'^module\.', '')])
        self.tokenizer.requires_grad_(False)
        self.tokenizer.eval()
        transformer = dict(transformer)
        num_codes = self.tokenizer.quantizer.num_codes
        self.text_encoder = MODELS.build(text_encoder) if text_encoder is not None else None
        checks = [('num_codes', num_codes), ('token_shape', tuple(self.tokenizer.token_shape))]
        if self.text_encoder is not None:
            checks.append(('context_dim', self.text_encoder.hidden_size))
        elif transformer.get('context_dim'):
            raise ValueError(f'transformer.context_dim={transformer["context_dim"]} needs '
                             'model.text_encoder (a CaptionEncoder config): add it or drop '
                             'context_dim')
        for key, value in checks:
            given = transformer.setdefault(key, value)
            if (tuple(given) if key == 'token_shape' else given) != value:
                owner = 'text encoder' if key == 'context_dim' else 'tokenizer'
                raise ValueError(f'transformer.{key}={given} but the {owner} has {value}: '
                                 f'drop transformer.{key} (it defaults to the {owner}\'s) or '
                                 f'use the matching {owner} config/checkpoint')
        self.transformer = MODELS.build(transformer)
        self.register_buffer('blank_code', torch.tensor(self.tokenizer.blank_code()))
        self.layout_keys = tuple(layout_keys)
        self.condition_dropout = float(condition_dropout)
        self.num_steps, self.temperature = int(num_steps), float(temperature)
        self.guidance_scale, self.blank_logit_offset = float(guidance_scale), float(
            blank_logit_offset)
        self.label_smoothing, self.seed = float(label_smoothing), int(seed)

    def init_weights(self):
        """The runner's weight init touches the transformer only: the frozen tokenizer keeps
        the weights loaded from ``tokenizer_checkpoint``."""
        if hasattr(self.transformer, 'init_weights'):
            self.transformer.init_weights()

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()                     # frozen: BN statistics stay as trained
        return self

    # ------------------------------------------------------------------ inputs
    def layout(self, inputs: dict) -> Optional[torch.Tensor]:
        """``(B, C, H_r, W_r)`` float layout from the packed rasters (None if unconditional)."""
        if self.transformer.layout_adapter is None:
            return None
        missing = [k for k in self.layout_keys if k not in inputs]
        if missing:
            raise LayoutError(f'the batch lacks the layout raster(s) {missing}: add '
                              'RasterizeMapBEV / RasterizeBoxBEV to the pipeline and pack '
                              f'{list(self.layout_keys)}')
        return torch.cat([inputs[k].float() for k in self.layout_keys], dim=1)

    def context(self, captions: Optional[Sequence[str]], batch_size: int
                ) -> Optional[torch.Tensor]:
        """Caption states ``(B, L, D_text)`` (``''`` for a missing caption), or None without a
        text encoder."""
        if self.text_encoder is None:
            return None
        return self.text_encoder(caption_texts(None if captions is None else list(captions),
                                               batch_size))

    @staticmethod
    def captions_of(data_samples) -> Optional[List[str]]:
        if data_samples is None:
            return None
        return [s.metainfo.get('caption') or '' for s in data_samples]

    def check_layout(self, layout: torch.Tensor) -> None:
        """Raise :class:`LayoutError` for an empty layout (nothing inside the grid)."""
        empty = layout.flatten(1).amax(dim=1) == 0
        if empty.any():
            raise LayoutError(f'layout of batch index {int(empty.nonzero()[0])} is empty: no box '
                              'or map cell falls inside the generator\'s grid '
                              f'{self.tokenizer.grid.point_cloud_range} (boxes outside the range, '
                              'or no layout given)')

    # ------------------------------------------------------------------ mmengine API
    def forward(self, inputs: dict, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return self.sample(self.layout(inputs), batch_size=len(inputs['points']),
                           captions=self.captions_of(data_samples))

    def loss(self, inputs: dict, data_samples=None) -> dict:
        tokens = self.tokenizer.tokenize(inputs['points'])          # (B, h, w)
        b, h, w = tokens.shape
        n = h * w
        r = torch.rand(b, device=tokens.device)
        num_masked = (torch.cos(math.pi / 2 * r) * n).ceil().clamp(1, n).long()
        rank = torch.rand(b, n, device=tokens.device).argsort(dim=1).argsort(dim=1)
        masked = (rank < num_masked[:, None]).view(b, h, w)
        layout = self.layout(inputs)
        if layout is not None and self.condition_dropout > 0:
            keep = (torch.rand(b, device=tokens.device) >= self.condition_dropout).float()
            layout = layout * keep[:, None, None, None]
        captions = None
        if self.text_encoder is not None:
            captions = caption_texts(self.captions_of(data_samples), b)
            keep = torch.rand(b, device=tokens.device) >= self.condition_dropout
            captions = [c if bool(k) else '' for c, k in zip(captions, keep)]
        logits = self.transformer(torch.where(masked, self.transformer.mask_id, tokens), layout,
                                  context=self.context(captions, b))
        loss = F.cross_entropy(logits[masked], tokens[masked],
                               label_smoothing=self.label_smoothing)
        with torch.no_grad():
            acc = (logits[masked].argmax(-1) == tokens[masked]).float().mean()
        return dict(loss_token=loss, token_acc=acc, mask_ratio=masked.float().mean())

    def _logits(self, ids, layout, context, empty_context, guidance_scale):
        cond = self.transformer(ids, layout, context=context)
        if (layout is None and context is None) or guidance_scale == 1.0:
            return cond
        uncond = self.transformer(ids, None if layout is None else torch.zeros_like(layout),
                                  context=empty_context)
        return uncond + guidance_scale * (cond - uncond)

    @torch.no_grad()
    def sample(self, layout: Optional[torch.Tensor], batch_size: int = 1,
               num_steps: Optional[int] = None, temperature: Optional[float] = None,
               guidance_scale: Optional[float] = None,
               generator: Optional[torch.Generator] = None, progress=None,
               captions: Optional[Sequence[str]] = None) -> torch.Tensor:
        """MaskGIT decoding (module docstring) -> token ids ``(B, h, w)``.

        ``progress``: optional callable run after each step (e.g. a tqdm ``update``);
        ``captions``: ``B`` strings (with a text encoder; None: empty captions)."""
        steps = self.num_steps if num_steps is None else int(num_steps)
        temp = self.temperature if temperature is None else float(temperature)
        scale = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        device = self.blank_code.device
        b = layout.shape[0] if layout is not None else batch_size
        h, w = self.transformer.token_shape
        n = h * w
        context = self.context(captions, b)
        empty = self.context(None, b) if context is not None and scale != 1.0 else None
        ids = torch.full((b, n), self.transformer.mask_id, dtype=torch.long, device=device)
        for t in range(steps):
            unknown = ids == self.transformer.mask_id
            logits = self._logits(ids.view(b, h, w), layout, context, empty,
                                  scale).view(b, n, -1)
            logits[..., int(self.blank_code)] += self.blank_logit_offset
            probs = torch.softmax(logits / max(temp, 1e-6), dim=-1)
            sampled = torch.multinomial(probs.view(-1, probs.shape[-1]), 1,
                                        generator=generator).view(b, n)
            sampled = torch.where(unknown, sampled, ids)
            conf = torch.log(probs.gather(-1, sampled[..., None]).squeeze(-1).clamp(min=1e-12))
            ratio = (t + 1) / steps
            u = torch.rand(conf.shape, generator=generator, device=device).clamp(1e-12, 1 - 1e-12)
            conf = conf + temp * (1 - ratio) * -torch.log(-torch.log(u))
            conf = torch.where(unknown, conf, torch.full_like(conf, math.inf))
            remask = int(math.floor(n * math.cos(math.pi / 2 * ratio)))
            ids = sampled
            if remask > 0:
                lowest = conf.argsort(dim=1)[:, :remask]
                ids = ids.scatter(1, lowest, self.transformer.mask_id)
            if progress is not None:
                progress()
        return ids.view(b, h, w)

    @torch.no_grad()
    def generate_points(self, tokens: torch.Tensor) -> List[torch.Tensor]:
        """Token ids ``(B, h, w)`` -> scan-like sweeps ``[(N, 5)]`` (and keeps the occupancy
        in ``self.last_occupancy`` ``(B, Z, H, W)`` bool)."""
        out = self.tokenizer.decode_tokens(tokens)
        occ = out['occupancy_logits'] > 0
        self.last_occupancy = occ
        intensity = out.get('intensity')
        scale = self.tokenizer.intensity_scale
        return [self.tokenizer.scan(occ[b], intensity[b] * scale if intensity is not None
                                    else None) for b in range(len(occ))]

    @torch.no_grad()
    def predict(self, inputs: dict, data_samples=None) -> list:
        """Generate one sweep per sample from its layout; each data sample gets
        ``pred_points``, ``pred_occupancy``, ``pred_tokens`` and the real sweep's
        ``gt_points`` / ``gt_occupancy`` (for ``LiDARGenMetric``)."""
        layout = self.layout(inputs)
        points_list = inputs['points']
        captions = self.captions_of(data_samples)
        results = []
        for b, points in enumerate(points_list):
            sample = data_samples[b] if data_samples is not None else None
            idx = sample.metainfo.get('sample_idx', b) if sample is not None else b
            gen = torch.Generator(device=self.blank_code.device)
            gen.manual_seed(self.seed + int(idx) if str(idx).isdigit() else self.seed + b)
            tokens = self.sample(layout[b:b + 1] if layout is not None else None, generator=gen,
                                 captions=None if captions is None else captions[b:b + 1])
            pred = self.generate_points(tokens)[0]
            if sample is None:
                from mmdet3d.structures import Det3DDataSample
                sample = Det3DDataSample()
            sample.pred_points = pred
            sample.pred_occupancy = torch.nonzero(self.last_occupancy[0])
            sample.pred_tokens = tokens[0]
            sample.gt_points = points[:, :3]
            sample.gt_occupancy = self.tokenizer.grid.voxel_indices(points)
            results.append(sample)
        return results
