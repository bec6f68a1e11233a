"""``DepthNet``: a BEVDepth-style depth head on camera features (our own code).

Design (BEVDepth, arXiv 2206.10092, ``base_lss_fpn.py`` ``DepthNet``; OpenDWM's copy drops
the deformable conv, and so do we):

1. *reduce*: a 3x3 conv + BN + ReLU from the input width to ``mid_channels``;
2. *camera-aware gates*: the camera parameters (intrinsics, image augmentation, extrinsics;
   :func:`camera_params`) are batch-normalised and mapped by two small MLPs to per-channel
   gates, applied squeeze-excite style (``x * sigmoid(f(cam))``) once for the depth branch
   and once for the context branch, so one set of weights serves every camera and every
   image augmentation;
3. *context*: a 1x1 conv to ``context_channels`` (the features lift-splat carries);
4. *depth*: residual blocks, an ASPP (dilations 6 / 12 / 18 + global pooling) for a wide
   receptive field at the feature resolution, and a 1x1 conv to ``D`` depth-bin logits.

Optional, ours (not in BEVDepth): ``prior_channels > 0`` takes per-cell geometry channels
(``LSSViewTransform(ground_prior=...)``: the soft depth bins where the cell's rays meet the
ground plane), concatenated to the input of *reduce* and mapped by a zero-initialised 1x1
conv (``prior_logits``) straight onto the depth logits, so the head starts as without it.
"""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import nn

from holodrive.registry import MODELS

#: Length of :func:`camera_params`: fx, fy, cx, cy + img_aug 2x3 + cam2lidar 3x4.
CAMERA_PARAM_DIM = 22


def camera_params(cam2img: torch.Tensor, cam2lidar: torch.Tensor,
                  img_aug_matrix: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(..., 4, 4)`` matrices -> ``(..., 22)`` camera vector of the gates.

    ``[fx, fy, cx, cy]`` of ``cam2img``, the 2x3 pixel map of ``img_aug_matrix`` (rows u, v
    acting on ``(u*d, v*d, d)``: resize / crop / flip / rotation) and the 3x4 ``cam2lidar``
    (which includes the BEV augmentation in the data path's packed matrices).
    """
    intr = torch.stack([cam2img[..., 0, 0], cam2img[..., 1, 1],
                        cam2img[..., 0, 2], cam2img[..., 1, 2]], dim=-1)
    if img_aug_matrix is None:
        img_aug_matrix = torch.eye(4, dtype=cam2img.dtype, device=cam2img.device).expand_as(
            cam2img)
    aug = img_aug_matrix[..., :2, :3].flatten(-2)
    ext = cam2lidar[..., :3, :4].flatten(-2)
    return torch.cat([intr.float(), aug.float(), ext.float()], dim=-1)


def _conv_bn_relu(cin, cout, kernel=3, dilation=1):
    pad = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _ResBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(channels, channels),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class _ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3 and an image-pool branch."""

    def __init__(self, channels: int, dilations: Sequence[int] = (6, 12, 18),
                 dropout: float = 0.1):
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv_bn_relu(channels, channels, 1)] +
            [_conv_bn_relu(channels, channels, 3, d) for d in dilations])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1),
                                  nn.ReLU(inplace=True))
        self.project = nn.Sequential(
            _conv_bn_relu(channels * (len(dilations) + 2), channels, 1), nn.Dropout(dropout))

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class _CameraGate(nn.Module):
    """Squeeze-excite gate driven by the camera vector: ``x * sigmoid(g(mlp(cam)))``."""

    def __init__(self, cam_dim: int, channels: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cam_dim, channels), nn.ReLU(inplace=True),
                                 nn.Linear(channels, channels))
        self.excite = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(channels, channels, 1))

    def forward(self, x, cam):
        gate = self.excite(self.mlp(cam)[..., None, None])
        return x * gate.sigmoid()


@MODELS.register_module()
class DepthNet(BaseModule):
    """Depth-bin logits and context features from camera features (module docstring).

    Args:
        in_channels: width of the input features.
        mid_channels: width inside the head.
        context_channels: width of the returned context features.
        num_depth_bins: ``D`` (``round((stop - start) / step)`` of the depth bins).
        num_res_blocks: residual blocks before the ASPP (BEVDepth: 3).
        aspp_dilations: dilations of the ASPP's 3x3 branches.
        cam_dim: length of the camera vector (:data:`CAMERA_PARAM_DIM`).
        prior_channels: width of the optional geometry prior (module docstring); 0: none.
    """

    def __init__(self, in_channels: int, mid_channels: int, context_channels: int,
                 num_depth_bins: int, num_res_blocks: int = 3,
                 aspp_dilations: Sequence[int] = (6, 12, 18),
                 cam_dim: int = CAMERA_PARAM_DIM, prior_channels: int = 0, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_depth_bins = int(num_depth_bins)
        self.context_channels = int(context_channels)
        self.cam_dim = int(cam_dim)
        self.prior_channels = int(prior_channels)
        self.reduce = _conv_bn_relu(in_channels + self.prior_channels, mid_channels)
        self.cam_norm = nn.BatchNorm1d(cam_dim)
        self.context_gate = _CameraGate(cam_dim, mid_channels)
        self.depth_gate = _CameraGate(cam_dim, mid_channels)
        self.context_out = nn.Conv2d(mid_channels, context_channels, 1)
        self.depth_body = nn.Sequential(*[_ResBlock(mid_channels) for _ in range(num_res_blocks)],
                                        _ASPP(mid_channels, aspp_dilations))
        self.depth_out = nn.Conv2d(mid_channels, num_depth_bins, 1)
        self.prior_logits = None
        if self.prior_channels:
            self.prior_logits = nn.Conv2d(self.prior_channels, num_depth_bins, 1)
            nn.init.zeros_(self.prior_logits.weight)
            nn.init.zeros_(self.prior_logits.bias)

    def forward(self, x: torch.Tensor, cam: torch.Tensor, prior: Optional[torch.Tensor] = None):
        """
        Args:
            x: ``(N, C_in, h, w)`` features of ``N`` camera images (``N = B * V``).
            cam: ``(N, cam_dim)`` camera vectors (:func:`camera_params`).
            prior: ``(N, prior_channels, h, w)`` geometry prior; required iff
                ``prior_channels > 0``.

        Returns:
            ``(depth_logits (N, D, h, w), context (N, context_channels, h, w))``.
        """
        if cam.shape != (x.shape[0], self.cam_dim):
            raise ValueError(f'DepthNet: camera vector {tuple(cam.shape)} for features '
                             f'{tuple(x.shape)}; expected ({x.shape[0]}, {self.cam_dim})')
        if self.prior_channels:
            want = (x.shape[0], self.prior_channels, *x.shape[-2:])
            if prior is None or tuple(prior.shape) != want:
                got = None if prior is None else tuple(prior.shape)
                raise ValueError(f'DepthNet: geometry prior {got} for features '
                                 f'{tuple(x.shape)}; expected {want}')
            prior = prior.to(x.dtype)
            x = torch.cat([x, prior], dim=1)
        elif prior is not None:
            raise ValueError('DepthNet: a geometry prior was given but prior_channels=0')
        cam = self.cam_norm(cam.to(x.dtype))
        x = self.reduce(x)
        context = self.context_out(self.context_gate(x, cam))
        depth = self.depth_out(self.depth_body(self.depth_gate(x, cam)))
        if self.prior_logits is not None:
            depth = depth + self.prior_logits(prior)
        return depth, context
