"""Visual tokens for the driving-QA head: the Mono-InternVL patch model for raw camera images and
the adapters for feature maps (PIIP pyramids, BEV maps).

Camera images (``MonoPatchEmbed`` + ``pixel_shuffle`` + ``mlp1``, Mono-InternVL v1):
``(N, 3, H, W)`` -> ``Conv2d(3, C, k=s=p)`` -> ``(N, H/p * W/p, C)`` + position embedding (a CLS slot
and a ``G x G`` grid, bicubically interpolated to ``(H/p, W/p)``; the CLS token is dropped) ->
pixel shuffle by r = 0.5 (each 2 x 2 patch block becomes one token of ``4C`` channels, the
InternVL 'v2' order) -> ``mlp1`` = LayerNorm(4C) -> Linear(4C, D) -> GELU -> Linear(D, D):
one token per ``28 x 28`` pixels (p = 14). State-dict names follow ``InternVisionPatchModel``
(``embeddings.patch_embedding`` / ``class_embedding`` / ``position_embedding``) and ``mlp1.{0,1,3}``.

Feature maps (``VisualAdapter``, design rule of ``mllm.md`` §7): ``(N, C, H, W)`` (or a list of
levels) -> k x k fold (``pixel_unshuffle``) -> LayerNorm -> Linear per level; levels resized to the
coarsest level's grid and summed (the PIIP-LLaVA branch merge) -> GELU -> Linear(D, D) + a learned
2-D position embedding interpolated to the grid: ``(N, H/k * W/k, D)`` tokens.
"""
from typing import List, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn


def pixel_shuffle(grid: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """InternVL's pixel shuffle ('v2'): ``(N, A, B, C)`` -> ``(N, A*r, B*r, C/r^2)``.

    With r = 0.5 the token at ``(i, j)`` of the output concatenates the 2 x 2 input block
    ``(2i..2i+1, 2j..2j+1)`` (in the order of the reference implementation).
    """
    n, a, b, c = grid.shape
    inv = int(round(1 / ratio))
    if a % inv or b % inv:
        raise ValueError(f'pixel_shuffle: a {a} x {b} patch grid is not divisible by {inv}')
    x = grid.reshape(n, a, b // inv, c * inv)                # fold pairs along B
    x = x.permute(0, 2, 1, 3).reshape(n, b // inv, a // inv, c * inv * inv)   # then along A
    return x.permute(0, 2, 1, 3).contiguous()                # back to (A/2, B/2) order


def interpolate_grid_embedding(embed: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A learned ``(1, G*G, C)`` (or ``(1, Gh, Gw, C)``) grid embedding resized bicubically to
    ``size = (h, w)``: returns ``(1, h*w, C)``."""
    if embed.dim() == 3:
        side = int(round(embed.shape[1] ** 0.5))
        embed = embed.reshape(1, side, side, embed.shape[-1])
    grid = embed.permute(0, 3, 1, 2).float()
    if tuple(grid.shape[-2:]) != tuple(size):
        grid = F.interpolate(grid, size=tuple(size), mode='bicubic', align_corners=False)
    return grid.flatten(2).transpose(1, 2).to(embed.dtype)


class PatchEmbeddings(nn.Module):
    """Conv patches + CLS + interpolated absolute position embedding (``InternVisionEmbeddings``)."""

    def __init__(self, hidden_size: int, patch_size: int, base_grid: int):
        super().__init__()
        self.patch_size = patch_size
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.patch_embedding = nn.Conv2d(3, hidden_size, patch_size, stride=patch_size)
        self.position_embedding = nn.Parameter(torch.zeros(1, 1 + base_grid * base_grid,
                                                           hidden_size))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, 3, H, W)`` -> ``(N, 1 + H/p * W/p, C)`` (CLS first)."""
        patches = self.patch_embedding(images.to(self.patch_embedding.weight.dtype))
        n, c, h, w = patches.shape
        tokens = patches.flatten(2).transpose(1, 2)
        pos = self.position_embedding
        grid_pos = interpolate_grid_embedding(pos[:, 1:], (h, w))
        cls = self.class_embedding.expand(n, -1, -1) + pos[:, :1]
        return torch.cat([cls, tokens + grid_pos], dim=1)


class MonoPatchEmbed(nn.Module):
    """``InternVisionPatchModel``: the embedding only, no encoder layers."""

    def __init__(self, hidden_size: int, patch_size: int = 14, base_grid: int = 32):
        super().__init__()
        self.embeddings = PatchEmbeddings(hidden_size, patch_size, base_grid)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> patch grid ``(N, H/p, W/p, C)`` without the CLS token."""
        p = self.embeddings.patch_size
        tokens = self.embeddings(images)[:, 1:]
        return tokens.reshape(images.shape[0], images.shape[2] // p, images.shape[3] // p, -1)


def build_mlp1(vision_hidden: int, ratio: float, hidden_size: int) -> nn.Sequential:
    """Mono-InternVL's projector: LayerNorm(C/r^2) -> Linear -> GELU -> Linear (keys 0, 1, 3)."""
    in_dim = int(round(vision_hidden / ratio ** 2))
    return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden_size), nn.GELU(),
                         nn.Linear(hidden_size, hidden_size))


class VisualAdapter(nn.Module):
    """Feature map(s) -> visual tokens (module docstring).

    Args:
        in_channels: channels of the map, or one entry per pyramid level (e.g. PIIP's outputs).
        hidden_size: the LLM width D.
        fold: k of the k x k fold (``pixel_unshuffle``) applied to every level first.
        base_grid: side of the learned position-embedding grid (interpolated to the map).
    """

    def __init__(self, in_channels: Union[int, Sequence[int]], hidden_size: int, fold: int = 1,
                 base_grid: int = 16):
        super().__init__()
        self.in_channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
        self.fold = fold
        self.proj = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(c * fold * fold), nn.Linear(c * fold * fold, hidden_size))
            for c in self.in_channels)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(hidden_size, hidden_size))
        self.position_embedding = nn.Parameter(torch.zeros(1, base_grid, base_grid, hidden_size))

    def output_grid(self, shapes: Sequence[Sequence[int]]) -> tuple:
        """The token grid ``(h, w)`` for level shapes ``[(H, W), ...]``: the coarsest level / k."""
        h, w = min(shapes, key=lambda s: s[0] * s[1])
        return h // self.fold, w // self.fold

    def forward(self, features: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """``(N, C, H, W)`` or ``[(N, C_l, H_l, W_l)]`` -> ``(N, h*w, D)`` (row-major grid)."""
        levels = [features] if torch.is_tensor(features) else list(features)
        if len(levels) != len(self.in_channels):
            raise ValueError(f'VisualAdapter: got {len(levels)} feature levels, configured for '
                             f'{len(self.in_channels)} (adapter_in_channels)')
        for level, channels in zip(levels, self.in_channels):
            if level.dim() != 4 or level.shape[1] != channels:
                raise ValueError(f'VisualAdapter: a feature map of shape {tuple(level.shape)}, '
                                 f'expected (N, {channels}, H, W) (adapter_in_channels)')
            if level.shape[2] % self.fold or level.shape[3] % self.fold:
                raise ValueError(f'VisualAdapter: map {tuple(level.shape[2:])} is not divisible '
                                 f'by adapter_fold={self.fold}')
        h, w = self.output_grid([lvl.shape[2:] for lvl in levels])
        merged = 0
        for level, proj in zip(levels, self.proj):
            x = F.pixel_unshuffle(level, self.fold) if self.fold > 1 else level
            x = proj(x.flatten(2).transpose(1, 2))                     # (N, h_l*w_l, D)
            if tuple(level.shape[2:]) != (h * self.fold, w * self.fold):
                hl, wl = level.shape[2] // self.fold, level.shape[3] // self.fold
                x = x.transpose(1, 2).reshape(x.shape[0], -1, hl, wl)
                x = F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False)
                x = x.flatten(2).transpose(1, 2)
            merged = merged + x
        return self.out(merged) + interpolate_grid_embedding(self.position_embedding, (h, w))
