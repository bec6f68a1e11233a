"""``LayoutAdapter``: T2I-adapter-style encoder of the per-camera layout images into the
denoiser's residuals, zero-initialised (OpenDWM's ``ImageAdapter`` design).

    layout_images (B, V, C_layout, H, W) (0/1; boxes + map from ``ProjectLayoutToCameras``)
      -> pixel-unshuffle by ``downscale`` (to the latent size) -> conv
      -> per injection point i: [down-sample x2 where the UNet does] -> ResNet blocks
      -> zero-initialised 1x1 conv to ``residual_channels[i]``
      -> [(B, V, residual_channels[i], h / s_i, w / s_i)] x R

``residual_channels`` / ``residual_strides`` are the denoiser's
(``MultiViewUNet.residual_channels`` / ``residual_strides``). The ResNet blocks are diffusers'
``ResnetBlock2D`` (no time embedding).
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.resnet import ResnetBlock2D

from holodrive.registry import MODELS
from .autoencoder import CameraGenConfigError


@MODELS.register_module()
class LayoutAdapter(ModelMixin, ConfigMixin):
    """Layout images -> multi-scale residuals (module docstring).

    Args:
        in_channels: layout channels (map layers + box class groups).
        residual_channels: widths of the denoiser's injection points.
        residual_strides: their strides w.r.t. the latent (non-decreasing powers of 2).
        downscale: image pixels per latent pixel (the layout images have the image size).
        channels: width of the adapter's first stage (the others follow
            ``residual_channels``).
        num_res_blocks: ResNet blocks per injection point.
    """

    @register_to_config
    def __init__(self, in_channels: int, residual_channels: Sequence[int],
                 residual_strides: Sequence[int], downscale: int = 8, channels: int = 64,
                 num_res_blocks: int = 1, norm_groups: int = 16):
        super().__init__()
        residual_channels, residual_strides = list(residual_channels), list(residual_strides)
        if len(residual_channels) != len(residual_strides):
            raise CameraGenConfigError('LayoutAdapter: residual_channels and residual_strides '
                                       'differ in length (use the denoiser\'s)')
        self.num_layout_channels, self.downscale = int(in_channels), int(downscale)
        self.unshuffle = nn.PixelUnshuffle(self.downscale)
        self.conv_in = nn.Conv2d(in_channels * self.downscale ** 2, channels, 3, padding=1)
        self.stages, self.zero_convs = nn.ModuleList(), nn.ModuleList()
        width, stride = channels, 1
        for out_ch, s in zip(residual_channels, residual_strides):
            if s not in (stride, 2 * stride):
                raise CameraGenConfigError(f'LayoutAdapter: residual strides must grow by 1x or '
                                           f'2x per point, got {list(residual_strides)}')
            layers = [nn.Conv2d(width, width, 3, stride=2, padding=1)] if s == 2 * stride else []
            for _ in range(num_res_blocks):
                layers.append(ResnetBlock2D(in_channels=width, out_channels=out_ch,
                                            temb_channels=None,
                                            groups=min(norm_groups, width),
                                            groups_out=min(norm_groups, out_ch)))
                width = out_ch
            if not num_res_blocks and width != out_ch:
                layers.append(nn.Conv2d(width, out_ch, 1))
                width = out_ch
            self.stages.append(_Sequential(*layers))
            zero = nn.Conv2d(out_ch, out_ch, 1)
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)
            self.zero_convs.append(zero)
            stride = s

    def forward(self, layout_images: torch.Tensor) -> List[torch.Tensor]:
        if layout_images.dim() != 5 or layout_images.shape[2] != self.num_layout_channels:
            raise CameraGenConfigError(
                f'LayoutAdapter: layout images {tuple(layout_images.shape)} are not '
                f'(B, V, {self.num_layout_channels}, H, W): set the adapter in_channels to the '
                'number of layout channels (map layers + box groups of ProjectLayoutToCameras)')
        b, v = layout_images.shape[:2]
        h, w = layout_images.shape[-2:]
        if h % self.downscale or w % self.downscale:
            raise CameraGenConfigError(
                f'LayoutAdapter: layout images of {w}x{h} are not divisible by {self.downscale}:'
                ' give ProjectLayoutToCameras the image size (scale=1.0)')
        x = self.conv_in(self.unshuffle(layout_images.flatten(0, 1).float()))
        out = []
        for stage, zero in zip(self.stages, self.zero_convs):
            x = stage(x)
            out.append(zero(x).unflatten(0, (b, v)))
        return out


class _Sequential(nn.Sequential):
    """``nn.Sequential`` whose ResNet blocks get no time embedding."""

    def forward(self, x):
        for layer in self:
            x = layer(x, None) if isinstance(layer, ResnetBlock2D) else layer(x)
        return x
