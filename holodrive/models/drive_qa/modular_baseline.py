"""The modular (encoder + projector + LLM) baseline of the monolithic driving-QA head.

Used by ``tools/analysis_tools/qa_latency_benchmark.py`` to compare first-token latency at an
equal total parameter count (Mono-InternVL's claim, ``mllm.md`` §2, against InternVL-1.5):

- monolithic: :class:`MonoDriveForCausalLM` as is (patch embedding + pixel shuffle + ``mlp1``,
  visual FFN experts inside the LLM on the visual tokens);
- modular: a transformers ``ViTModel`` (patch 14, exact position embeddings for the camera image
  size, no pooler) on every view, its patch tokens (CLS dropped) pixel-shuffled by the same ratio
  (:func:`~.visual_tokens.pixel_shuffle`) and projected to the LLM width by an ``mlp1``-shaped
  MLP, scattered into the same ``<IMG_CONTEXT>`` slots; then the SAME LLM weights run as a plain
  LLM (``visual_mask=None``: the text experts for every token). Its parameters are the ViT, the
  projector and the LLM without the visual experts, patch model and ``mlp1``.

:func:`match_vit` picks the ViT's width and depth so that the two totals match (closed form of
the parameter count, :func:`vit_parameter_count`, checked against the built model by the tests;
the MLP hidden size is solved for, so the totals agree to a few thousand parameters).
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from .modeling import MonoDriveForCausalLM
from .visual_tokens import build_mlp1, pixel_shuffle

#: name parts of the monolithic head's parameters that only visual tokens use
VISUAL_EXPERT_KEYS = ('.mlp_vis.', '_proj_vis.')
#: prefixes of the head's visual-token producers (replaced by ViT + projector in the baseline)
VISUAL_PRODUCER_PREFIXES = ('vision_model.', 'mlp1.')


def _unique_named_parameters(module: nn.Module):
    """``named_parameters`` with tied tensors counted once (the tied lm_head)."""
    return list(module.named_parameters(remove_duplicate=True))


def mono_parameter_counts(head: MonoDriveForCausalLM) -> Dict[str, int]:
    """``total`` / ``active`` / ``visual_experts`` / ``visual_producer`` / ``text_llm``
    parameters of the monolithic head (feature-map adapters, unused for cameras, left out).

    ``active``: the parameters one token runs through (one of its two FFN experts), i.e. the
    total less the visual experts."""
    counts = dict(visual_experts=0, visual_producer=0, text_llm=0)
    for name, p in _unique_named_parameters(head):
        if name.startswith('adapters.'):
            continue
        if any(k in name for k in VISUAL_EXPERT_KEYS):
            counts['visual_experts'] += p.numel()
        elif name.startswith(VISUAL_PRODUCER_PREFIXES):
            counts['visual_producer'] += p.numel()
        else:
            counts['text_llm'] += p.numel()
    counts['total'] = sum(counts[k] for k in ('visual_experts', 'visual_producer', 'text_llm'))
    counts['active'] = counts['total'] - counts['visual_experts']
    return counts


def vit_heads(width: int) -> int:
    """Attention heads of a ViT of ``width``: head dim 64 when it divides, else 32."""
    return width // 64 if width % 64 == 0 else width // 32


def vit_parameter_count(width: int, depth: int, image_hw: Sequence[int],
                        patch_size: int = 14, intermediate: Optional[int] = None) -> int:
    """Parameters of ``ViTModel(add_pooling_layer=False)`` (qkv bias; MLP hidden
    ``intermediate``, default ``4 * width``)."""
    h, w = image_hw
    inter = 4 * width if intermediate is None else intermediate
    patches = (h // patch_size) * (w // patch_size)
    embeddings = width + (patches + 1) * width + 3 * patch_size * patch_size * width + width
    layer = 4 * width * width + 4 * width + 4 * width + 2 * width * inter + inter + width
    return embeddings + depth * layer + 2 * width


def projector_parameter_count(vision_width: int, ratio: float, hidden_size: int) -> int:
    """Parameters of :func:`build_mlp1` (LayerNorm -> Linear -> GELU -> Linear)."""
    c = int(round(vision_width / ratio ** 2))
    return 2 * c + c * hidden_size + hidden_size + hidden_size * hidden_size + hidden_size


def match_vit(target: int, image_hw: Sequence[int], hidden_size: int, ratio: float = 0.5,
              patch_size: int = 14, aspect: float = 64.0, mlp_ratios: Tuple[float, float] = (2, 6),
              widths: Sequence[int] = tuple(range(32, 256, 32)) + tuple(range(256, 2049, 64)),
              depths: Sequence[int] = tuple(range(1, 33))) -> Tuple[int, int, int, int]:
    """``(width, depth, intermediate, params)`` of a ViT whose ViT + projector parameters
    (``params``) match ``target``.

    Every (width, depth) gets the MLP hidden size (a multiple of 8) that brings its count
    closest to ``target``; among those whose MLP ratio lies in ``mlp_ratios``, the one nearest
    a ViT-B shape (width / depth = ``aspect`` = 768 / 12, MLP ratio 4) wins. Widths are
    multiples of 32 below 256 and of 64 above (head dim 64 where it divides, :func:`vit_heads`)."""
    candidates = []
    for depth in depths:
        for width in widths:
            fixed = (vit_parameter_count(width, depth, image_hw, patch_size, intermediate=0)
                     + projector_parameter_count(width, ratio, hidden_size))
            inter = max(8, 8 * round((target - fixed) / (depth * (2 * width + 1)) / 8))
            n = fixed + depth * (2 * width + 1) * inter
            shape = abs(math.log(width / depth / aspect)) + abs(math.log(inter / width / 4))
            feasible = mlp_ratios[0] <= inter / width <= mlp_ratios[1]
            candidates.append((not feasible, shape, abs(n - target), width, depth, inter, n))
    *_, width, depth, inter, n = min(candidates)
    return width, depth, inter, n


def build_vit(width: int, depth: int, image_hw: Sequence[int], patch_size: int = 14,
              intermediate: Optional[int] = None):
    """A randomly initialised ``ViTModel`` for ``image_hw = (H, W)`` (exact position embeddings,
    no pooler)."""
    from transformers import ViTConfig, ViTModel
    config = ViTConfig(hidden_size=width, num_hidden_layers=depth,
                       num_attention_heads=vit_heads(width),
                       intermediate_size=4 * width if intermediate is None else intermediate,
                       image_size=tuple(int(s) for s in image_hw), patch_size=patch_size,
                       num_channels=3, qkv_bias=True)
    return ViTModel(config, add_pooling_layer=False)


class ModularDriveBaseline(nn.Module):
    """ViT + projector in front of the head's LLM run as a plain LLM (module docstring).

    Args:
        head: the monolithic head whose LLM weights are shared (not copied).
        image_hw: ``(H, W)`` of every camera image, multiples of 28.
        width, depth, intermediate: the ViT's; None: :func:`match_vit` against the head's
            visual experts + patch model + ``mlp1`` (so that the totals match).
    """

    def __init__(self, head: MonoDriveForCausalLM, image_hw: Sequence[int],
                 width: Optional[int] = None, depth: Optional[int] = None,
                 intermediate: Optional[int] = None):
        super().__init__()
        config = head.config
        self.head = head
        self.image_hw = tuple(int(s) for s in image_hw)
        side = config.pixels_per_visual_token
        if self.image_hw[0] % side or self.image_hw[1] % side:
            raise ValueError(f'ModularDriveBaseline: image (H, W) = {self.image_hw} must be '
                             f'multiples of {side}')
        counts = mono_parameter_counts(head)
        if width is None or depth is None:
            width, depth, intermediate, _ = match_vit(
                counts['total'] - counts['text_llm'], self.image_hw, config.hidden_size,
                config.downsample_ratio, config.vision_patch_size)
        self.vit = build_vit(width, depth, self.image_hw, config.vision_patch_size, intermediate)
        self.projector = build_mlp1(width, config.downsample_ratio, config.hidden_size)
        self.width, self.depth = width, depth
        self.intermediate = self.vit.config.intermediate_size

    def parameter_counts(self) -> Dict[str, int]:
        """``total`` (= ``active``: a dense model), ``vit``, ``projector``, ``text_llm``."""
        counts = dict(vit=sum(p.numel() for p in self.vit.parameters()),
                      projector=sum(p.numel() for p in self.projector.parameters()),
                      text_llm=mono_parameter_counts(self.head)['text_llm'])
        counts['total'] = counts['active'] = sum(counts.values())
        return counts

    def camera_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, V, 3, H, W)`` -> ``(B, V * H/28 * W/28, D)``, the head's token order."""
        if pixel_values.dim() == 4:
            pixel_values = pixel_values.unsqueeze(1)
        b, v, _, h, w = pixel_values.shape
        p = self.vit.config.patch_size
        images = pixel_values.flatten(0, 1).to(self.vit.embeddings.cls_token.dtype)
        tokens = self.vit(pixel_values=images).last_hidden_state[:, 1:]      # CLS dropped
        grid = tokens.reshape(b * v, h // p, w // p, -1)
        shuffled = pixel_shuffle(grid, self.head.config.downsample_ratio).flatten(1, 2)
        return self.projector(shuffled).reshape(b, -1, self.head.config.hidden_size)

    def embed(self, input_ids: torch.Tensor,
              pixel_values: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Token embeddings with the ``<IMG_CONTEXT>`` slots filled by the ViT's tokens."""
        embeds = self.head.model.embed_tokens(input_ids)
        if pixel_values is None:
            return embeds
        slots = input_ids == self.head.config.image_token_id
        visual = self.camera_tokens(pixel_values)
        if bool((slots.sum(dim=1) != visual.shape[1]).any()):
            raise ValueError(f'the prompt has {slots.sum(dim=1).tolist()} <IMG_CONTEXT> tokens '
                             f'per sample but the views make {visual.shape[1]}')
        return embeds.masked_scatter(slots.unsqueeze(-1),
                                     visual.to(embeds.dtype).reshape(-1, embeds.shape[-1]))

    def forward(self, input_ids: torch.Tensor, pixel_values: Optional[torch.Tensor] = None,
                **kwargs):
        """As ``MonoDriveForCausalLM.forward`` (``attention_mask``, ``past_key_values``,
        ``use_cache``, ``logits_to_keep``), every token through the text experts."""
        return self.head(inputs_embeds=self.embed(input_ids, pixel_values), visual_mask=None,
                         **kwargs)
