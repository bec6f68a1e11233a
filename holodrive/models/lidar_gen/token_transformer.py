"""``BEVTokenTransformer``: the bidirectional transformer of the masked-token LiDAR generator.

    token ids (B, h, w) (``mask_id = num_codes`` where masked)
      -> token embedding + learned 2-D position embedding -> (B, h*w, D)
      -> ``depth`` x [ + layout residual_l + external residual_l ; pre-norm TransformerEncoderLayer ]
      -> LayerNorm -> Linear -> logits over the codebook (B, h*w, num_codes)

With ``context_dim > 0`` (caption conditioning) each layer is a pre-norm
``TransformerDecoderLayer`` instead: self-attention over the tokens, cross-attention to the
caption's text-encoder states ``context (B, L, context_dim)`` (projected to ``D`` by
``context_proj``), FFN; the cross-attention's output projection is zero-initialised, so an
untrained text branch leaves the transformer unchanged (as the layout adapter does).

Layout condition (OpenDWM ``BidirectionalTransformerWithAdapter``: an image adapter whose
output is added in each layer): the data path's BEV rasters (``map_bev`` + ``box_bev``,
``(B, C, H_r, W_r)`` 0/1 on the LiDAR grid) pass a strided conv stem down to the token grid,
then one zero-initialised ``Linear`` per layer, so an untrained adapter leaves the
transformer unchanged. ``extra_residuals`` (a ``(B, h*w, D)`` tensor, or one per layer) is added
at the same points: the plug for the camera-to-BEV features of the joint model.
"""
import math
from typing import List, Optional, Sequence, Union

import torch
from torch import nn

from holodrive.registry import MODELS


class LayoutAdapter(nn.Module):
    """BEV layout rasters ``(B, C, H_r, W_r)`` -> per-layer residuals ``[(B, h*w, D)] * depth``.

    ``stride = H_r / h`` must be a power of two; the stem halves the size ``log2(stride)``
    times (conv 3x3 stride 2 + GELU), then a 1x1 conv to ``D``; each layer's projection is a
    zero-initialised ``Linear(D, D)``.
    """

    def __init__(self, in_channels: int, embed_dim: int, depth: int, stride: int,
                 hidden: int = 64):
        super().__init__()
        steps = int(round(math.log2(stride))) if stride >= 1 else -1
        if steps < 0 or 2 ** steps != stride:
            raise ValueError(f'layout raster / token grid ratio must be a power of two, got '
                             f'{stride}: give the rasters a resolution of token_size / 2^k')
        layers, ch = [], in_channels
        for _ in range(steps):
            layers += [nn.Conv2d(ch, hidden, 3, stride=2, padding=1), nn.GELU()]
            ch = hidden
        layers.append(nn.Conv2d(ch, embed_dim, 1))
        self.stem = nn.Sequential(*layers)
        self.proj = nn.ModuleList(nn.Linear(embed_dim, embed_dim) for _ in range(depth))
        for p in self.proj:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def forward(self, layout: torch.Tensor) -> List[torch.Tensor]:
        feat = self.stem(layout).flatten(2).transpose(1, 2)           # (B, h*w, D)
        return [p(feat) for p in self.proj]


@MODELS.register_module()
class BEVTokenTransformer(nn.Module):
    """Bidirectional BEV-token transformer (module docstring).

    Args:
        num_codes: codebook size (the tokenizer's); ``mask_id = num_codes``.
        token_shape: ``(h, w)`` of the token grid.
        embed_dim, depth, num_heads, mlp_ratio, dropout: transformer shape.
        layout_channels: channels of the layout rasters (0: unconditional).
        layout_stride: raster cells per token side.
        context_dim: width of the caption states cross-attended by every layer (0: none).
    """

    def __init__(self, num_codes: int, token_shape: Sequence[int], embed_dim: int = 256,
                 depth: int = 6, num_heads: int = 8, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, layout_channels: int = 0, layout_stride: int = 1,
                 context_dim: int = 0):
        super().__init__()
        self.num_codes, self.mask_id = int(num_codes), int(num_codes)
        self.token_shape = tuple(int(v) for v in token_shape)
        n = self.token_shape[0] * self.token_shape[1]
        self.token_embed = nn.Embedding(self.num_codes + 1, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, n, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.context_dim = int(context_dim)
        layer = nn.TransformerDecoderLayer if self.context_dim else nn.TransformerEncoderLayer
        self.layers = nn.ModuleList(
            layer(embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout, activation='gelu',
                  batch_first=True, norm_first=True)
            for _ in range(depth))
        self.context_proj = nn.Linear(self.context_dim, embed_dim) if self.context_dim else None
        for layer in self.layers if self.context_dim else ():
            nn.init.zeros_(layer.multihead_attn.out_proj.weight)
            nn.init.zeros_(layer.multihead_attn.out_proj.bias)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, self.num_codes)
        self.layout_adapter = (LayoutAdapter(layout_channels, embed_dim, depth, layout_stride)
                               if layout_channels else None)
        self.embed_dim, self.depth = embed_dim, depth

    def forward(self, tokens: torch.Tensor, layout: Optional[torch.Tensor] = None,
                extra_residuals: Union[None, torch.Tensor, Sequence[torch.Tensor]] = None,
                context: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``tokens`` ``(B, h, w)`` long (mask_id allowed), ``layout`` ``(B, C, H_r, W_r)``,
        ``context`` ``(B, L, context_dim)`` (needed iff ``context_dim``)
        -> logits ``(B, h, w, num_codes)``."""
        b, h, w = tokens.shape
        if (h, w) != self.token_shape:
            raise ValueError(f'token grid {(h, w)} differs from the transformer\'s '
                             f'{self.token_shape}: tokenizer and generator configs disagree')
        if (context is None) != (self.context_proj is None) or (
                context is not None and context.shape[-1] != self.context_dim):
            raise ValueError(f'BEVTokenTransformer(context_dim={self.context_dim}) got context '
                             f'{None if context is None else tuple(context.shape)}: a caption '
                             'model needs model.text_encoder with that hidden size, and only '
                             'then transformer.context_dim')
        memory = self.context_proj(context) if context is not None else None
        x = self.token_embed(tokens.flatten(1)) + self.pos_embed
        residuals = [None] * self.depth
        if self.layout_adapter is not None and layout is not None:
            residuals = self.layout_adapter(layout.float())
        if isinstance(extra_residuals, torch.Tensor):
            extra_residuals = [extra_residuals] * self.depth
        for i, layer in enumerate(self.layers):
            if residuals[i] is not None:
                x = x + residuals[i]
            if extra_residuals is not None:
                x = x + extra_residuals[i]
            x = layer(x, memory) if memory is not None else layer(x)
        return self.head(self.norm(x)).view(b, h, w, self.num_codes)
