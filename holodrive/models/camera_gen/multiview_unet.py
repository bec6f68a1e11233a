"""``MultiViewUNet``: a diffusers ``UNet2DConditionModel`` extended (not forked) for six views.

    latents (B, V, C, h, w), timesteps (B,), text states (B, L, D) or (B, V, L, D),
    camera matrices (B, V, 4, 4), neighbours (B, V, 2), residuals [(B, V, C_i, h_i, w_i)] x R
      -> noise / v prediction (B, V, C, h, w), depth logits (B, V, D, h, w) | None,
         features [(B, V, C_i, h_i, w_i)] x R

Additions to the wrapped UNet (``self.unet``, whose parameter names are untouched, so a
Stable-Diffusion UNet loads into it as is); every one starts as an exact no-op:

- **cross-view attention** after every ``Transformer2DModel`` of the UNet: each view's tokens
  attend to the tokens of its two ring neighbours (``neighbours``: view indices, from the data
  path's ``camera_ring`` / ``camera_adjacency``, see :func:`neighbour_views`); diffusers'
  ``Attention`` with a zero-initialised output projection, added as a residual;
- **camera conditioning**: the UNet's class embedding (``class_embed_type='projection'``) takes
  the camera vector of :func:`camera_embedding_input` (intrinsics composed with the image
  augmentation, normalised by the image size, and the camera-to-LiDAR extrinsics); its last
  linear layer is zero-initialised, so the time embedding starts unchanged;
- **residual injection**: ``R = 1 + len(down_blocks)`` residuals are added after ``conv_in``
  and after each down block (the hidden state and its skip connection), the points of
  OpenDWM's layout adapter and of HoloDrive's BEV-to-camera features
  (:attr:`residual_channels`, :attr:`residual_strides`);
- **features**: the hidden states at the same ``R`` points are returned (the camera-to-BEV
  source), and the **depth branch** (``DepthNet`` of :mod:`holodrive.models.view_transforms`)
  reads them, interpolated to the latent size and concatenated, with the camera vector.

The injection uses forward hooks on the UNet's modules, active only inside
:meth:`MultiViewUNet.forward`.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import ModelMixin, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding

from holodrive.registry import MODELS
from ..view_transforms.depth_net import camera_params
from .autoencoder import CameraGenConfigError, load_diffusers_dir

CAMERA_EMBED_DIM = 18


def neighbour_views(camera_ring: torch.Tensor, camera_adjacency: torch.Tensor) -> torch.Tensor:
    """View indices of the left / right ring neighbours of every view.

    Args:
        camera_ring: ``(B, V)`` view index at each ring position.
        camera_adjacency: ``(B, V, 2)`` ring positions of the neighbours of each ring position.

    Returns:
        ``(B, V, 2)`` int64, in the views' own (data) order.
    """
    b, v = camera_ring.shape
    position_of_view = torch.empty_like(camera_ring)
    position_of_view.scatter_(1, camera_ring, torch.arange(v, device=camera_ring.device)
                              .expand(b, v))
    adj_of_view = torch.gather(camera_adjacency, 1, position_of_view[..., None].expand(b, v, 2))
    return torch.gather(camera_ring[:, None, :].expand(b, v, v), 2, adj_of_view)


def camera_embedding_input(cam2img: torch.Tensor, cam2lidar: torch.Tensor,
                           img_aug_matrix: Optional[torch.Tensor], image_hw: Sequence[int]
                           ) -> torch.Tensor:
    """``(..., 4, 4)`` matrices -> ``(..., 18)`` camera vector of the UNet's class embedding:
    the first two rows of ``img_aug_matrix @ cam2img`` (3 columns; divided by the image width
    and height) and the 3x4 ``cam2lidar``."""
    k = cam2img if img_aug_matrix is None else img_aug_matrix @ cam2img
    scale = torch.tensor([image_hw[1], image_hw[0]], dtype=k.dtype, device=k.device)
    intr = (k[..., :2, :3] / scale[:, None]).flatten(-2)
    return torch.cat([intr, cam2lidar[..., :3, :4].flatten(-2)], dim=-1).float()


class CrossViewAttention(nn.Module):
    """Tokens of a view attend to the tokens of its neighbour views; zero-initialised output.

    ``x`` ``(B * V, C, h, w)`` -> ``x + attn(norm(x_v), norm(x_neighbours))``.
    """

    def __init__(self, channels: int, num_heads: int = 8, norm_groups: int = 32):
        super().__init__()
        if channels % num_heads:
            raise CameraGenConfigError(f'crossview_heads: {num_heads} heads do not divide a '
                                       f'block width of {channels}: pick a divisor')
        self.norm = nn.GroupNorm(min(norm_groups, channels), channels, eps=1e-6)
        self.attn = Attention(channels, cross_attention_dim=channels, heads=num_heads,
                              dim_head=channels // num_heads, out_bias=True)
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        b, v, k = neighbours.shape
        n, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2).unflatten(0, (b, v))   # (B, V, hw, C)
        idx = neighbours[..., None, None].expand(b, v, k, h * w, c).flatten(1, 2)
        context = torch.gather(tokens, 1, idx).unflatten(1, (v, k))         # (B, V, k, hw, C)
        out = self.attn(tokens.flatten(0, 1), context.flatten(0, 1).flatten(1, 2))
        return x + out.transpose(1, 2).reshape(n, c, h, w)


@MODELS.register_module()
class MultiViewUNet(ModelMixin, ConfigMixin):
    """Multi-view denoiser (module docstring).

    Args:
        unet_config: ``UNet2DConditionModel`` keyword arguments (built from scratch), or None with
            ``pretrained``.
        pretrained: local diffusers directory of a ``UNet2DConditionModel`` (``subfolder``:
            e.g. ``'unet'`` of a Stable-Diffusion folder).
        crossview_heads: heads of the cross-view attention blocks (None: no cross-view).
        camera_conditioning: embed the camera vector into the time embedding.
        depth_net_config: ``DepthNet`` keyword arguments other than ``in_channels`` / ``cam_dim``
            (``mid_channels``, ``context_channels``, ``num_depth_bins``, ...), or None.
        vae_scale_factor: image pixels per latent pixel (the VAE's factor; the camera
            vector is normalised by the image size ``latent size * vae_scale_factor``).
        gradient_checkpointing: diffusers' activation checkpointing of the UNet's ResNet and
            transformer blocks (recomputed in the backward pass; the injection and cross-view
            hooks sit on the block outputs, outside the checkpointed parts, so the gradients
            are those of the plain forward, tested).
    """

    @register_to_config
    def __init__(self, unet_config: Optional[dict] = None, pretrained: Optional[str] = None,
                 subfolder: Optional[str] = None, crossview_heads: Optional[int] = 8,
                 camera_conditioning: bool = True, depth_net_config: Optional[dict] = None,
                 vae_scale_factor: int = 8, gradient_checkpointing: bool = False):
        super().__init__()
        if pretrained:
            self.unet = load_diffusers_dir(UNet2DConditionModel, pretrained,
                                           'model.denoiser.pretrained', subfolder)
        elif unet_config is not None:
            self.unet = UNet2DConditionModel(**unet_config)
        else:
            raise CameraGenConfigError('model.denoiser: give unet_config=dict(...) '
                                       '(UNet2DConditionModel arguments) or pretrained=LOCAL_DIR')
        cfg = self.unet.config
        if camera_conditioning:
            time_dim = self.unet.time_embedding.linear_2.out_features
            if cfg.class_embed_type != 'projection' or self.unet.class_embedding is None:
                self.unet.class_embedding = TimestepEmbedding(CAMERA_EMBED_DIM, time_dim)
                self.unet.register_to_config(
                    class_embed_type='projection',
                    projection_class_embeddings_input_dim=CAMERA_EMBED_DIM)
                cfg = self.unet.config
            if cfg.projection_class_embeddings_input_dim != CAMERA_EMBED_DIM:
                raise CameraGenConfigError(
                    f'model.denoiser.unet_config.projection_class_embeddings_input_dim must be '
                    f'{CAMERA_EMBED_DIM} (the camera vector), got '
                    f'{cfg.projection_class_embeddings_input_dim}')
            nn.init.zeros_(self.unet.class_embedding.linear_2.weight)
            nn.init.zeros_(self.unet.class_embedding.linear_2.bias)
        if pretrained:      # the saved config rebuilds this network without the directory
            self.register_to_config(unet_config={k: v for k, v in dict(self.unet.config).items()
                                          if not k.startswith('_')}, pretrained=None)
        self.camera_conditioning = bool(camera_conditioning)
        self.vae_scale_factor = int(vae_scale_factor)
        blocks = self._transformer_modules()
        self.crossview = nn.ModuleList(
            [CrossViewAttention(m.config.in_channels, crossview_heads,
                                self.unet.config.norm_num_groups) for m in blocks]
            if crossview_heads else [])
        self.depth_net = None
        if depth_net_config is not None:
            from ..view_transforms.depth_net import CAMERA_PARAM_DIM, DepthNet
            self.depth_net = DepthNet(in_channels=sum(self.residual_channels),
                                      cam_dim=CAMERA_PARAM_DIM, **depth_net_config)
        self._ctx = None
        self._install_hooks(blocks)
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()

    # ------------------------------------------------------------------ structure
    def _transformer_modules(self) -> List[nn.Module]:
        from diffusers.models.transformers.transformer_2d import Transformer2DModel
        return [m for m in self.unet.modules() if isinstance(m, Transformer2DModel)]

    @property
    def residual_channels(self) -> List[int]:
        """Widths of the ``R`` injection points (after ``conv_in`` and each down block)."""
        out = list(self.unet.config.block_out_channels)
        return [out[0]] + out

    @property
    def residual_strides(self) -> List[int]:
        """Strides (w.r.t. the latent) of the ``R`` injection points."""
        strides, s = [1], 1
        for block in self.unet.down_blocks:
            if getattr(block, 'downsamplers', None):
                s *= 2
            strides.append(s)
        return strides

    @property
    def in_channels(self) -> int:
        return int(self.unet.config.in_channels)

    # ------------------------------------------------------------------ hooks
    def _install_hooks(self, blocks):
        self.unet.conv_in.register_forward_hook(self._after_conv_in)
        for i, block in enumerate(self.unet.down_blocks):
            block.register_forward_hook(self._after_down_block(i + 1))
        for i, module in enumerate(blocks):
            if self.crossview:
                module.register_forward_hook(self._after_transformer(i))

    def _residual(self, point: int, like: torch.Tensor):
        res = self._ctx['residuals']
        if res is None or res[point] is None:
            return None
        r = res[point]
        if r.shape != like.shape:
            raise CameraGenConfigError(
                f'residual {point} has shape {tuple(r.shape)}, the UNet expects '
                f'{tuple(like.shape)} (B*V, C, h, w) there: adapter / BEV-to-camera widths '
                f'must be {self.residual_channels} at strides {self.residual_strides}')
        return r.to(like.dtype)

    def _after_conv_in(self, module, args, output):
        if self._ctx is None:
            return None
        r = self._residual(0, output)
        out = output if r is None else output + r
        self._ctx['features'].append(out)
        return out

    def _after_down_block(self, point: int):
        def hook(module, args, output):
            if self._ctx is None:
                return None
            hidden, skips = output
            r = self._residual(point, hidden)
            if r is not None:
                new = hidden + r
                skips = tuple(skips[:-1]) + ((skips[-1] + r) if skips[-1] is not hidden
                                             else new,)
                hidden = new
            self._ctx['features'].append(hidden)
            return hidden, skips
        return hook

    def _after_transformer(self, index: int):
        def hook(module, args, output):
            if self._ctx is None or self._ctx['neighbours'] is None:
                return None
            x = output[0] if isinstance(output, tuple) else output.sample
            x = self.crossview[index](x, self._ctx['neighbours'])
            return (x,) + tuple(output[1:]) if isinstance(output, tuple) else type(output)(x)
        return hook

    # ------------------------------------------------------------------ forward
    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor,
                encoder_hidden_states: torch.Tensor, cam2img: Optional[torch.Tensor] = None,
                cam2lidar: Optional[torch.Tensor] = None,
                img_aug_matrix: Optional[torch.Tensor] = None,
                neighbours: Optional[torch.Tensor] = None,
                residuals: Optional[Sequence[Optional[torch.Tensor]]] = None,
                camera_keep: Optional[torch.Tensor] = None):
        """See the module docstring; returns ``(prediction, depth_logits, features)``.

        ``timesteps`` ``(B,)`` (or a scalar) is shared by the views of a sample;
        ``neighbours`` None skips the cross-view blocks (single-view behaviour); residuals are
        ``(B, V, C_i, h_i, w_i)`` or None per point; ``camera_keep`` ``(B,)`` bool zeroes the
        camera vector of the samples where it is False (the dropped-camera condition; the
        depth branch still sees the camera).
        """
        if latents.dim() != 5:
            raise ValueError(f'expected latents (B, V, C, h, w), got {tuple(latents.shape)}')
        b, v, c, h, w = latents.shape
        if c != self.in_channels:
            raise CameraGenConfigError(
                f'latents have {c} channels, the denoiser\'s unet.in_channels is '
                f'{self.in_channels}: set it (and out_channels) to the VAE\'s latent_channels')
        t = torch.as_tensor(timesteps, device=latents.device)
        t = (t.expand(b) if t.dim() == 0 else t)[:, None].expand(b, v).flatten()
        text = encoder_hidden_states
        if text.dim() == 3:
            text = text[:, None].expand(b, v, *text.shape[1:])
        class_labels = None
        if self.camera_conditioning:
            if cam2img is None or cam2lidar is None:
                raise ValueError('camera conditioning needs cam2img and cam2lidar (B, V, 4, 4)')
            image_hw = (h * self.vae_scale_factor, w * self.vae_scale_factor)
            vec = camera_embedding_input(cam2img, cam2lidar, img_aug_matrix, image_hw)
            if camera_keep is not None:
                vec = vec * camera_keep.to(vec.dtype)[:, None, None]
            class_labels = vec.flatten(0, 1)
        flat_res = None
        if residuals is not None:
            if len(residuals) != len(self.residual_channels):
                raise CameraGenConfigError(f'{len(residuals)} residuals given, the UNet has '
                                           f'{len(self.residual_channels)} injection points')
            flat_res = [None if r is None else r.flatten(0, 1) for r in residuals]
        self._ctx = dict(residuals=flat_res, features=[], neighbours=neighbours)
        try:
            pred = self.unet(latents.flatten(0, 1), t, text.flatten(0, 1),
                             class_labels=class_labels, return_dict=False)[0]
            features = self._ctx['features']
        finally:
            self._ctx = None
        depth_logits = None
        if self.depth_net is not None:
            stacked = torch.cat([f if f.shape[-2:] == (h, w) else F.interpolate(
                f, size=(h, w), mode='bilinear', align_corners=False) for f in features], 1)
            cam = camera_params(cam2img, cam2lidar, img_aug_matrix).flatten(0, 1)
            depth_logits, _ = self.depth_net(stacked, cam)
            depth_logits = depth_logits.unflatten(0, (b, v))
        return (pred.unflatten(0, (b, v)), depth_logits,
                [f.unflatten(0, (b, v)) for f in features])
