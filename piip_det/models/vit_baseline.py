"""Single-branch ViT baseline backbone (``piip_det.ViTBaseline``): one branch, PIIP's outputs.

The paper's baselines (ViT-B, ViT-L, InternViT-6B; official ``vit_models`` /
``InternViT6B`` with ``with_fpn=True``) are one plain ViT on the padded image
followed by ViTDet's simple FPN on the stride-16 map -- no branch merge. Here
the ViT is the same :class:`~piip_det.models.backbones.vit.ViT` PIIP uses for
its branches, stored as ``branch1`` (so a plain checkpoint converted with
``tools/convert/piip_official.py --branch 1 --backbone-only`` loads unchanged,
and the layer-decay rule reads ``branch1.blocks.i`` as layer ``i + 1``):

    x (B, 3, H, W) -> branch1 -> F (B, C, H/p, W/p)
    'simple_fpn': fpn1(F), fpn2(F), F, maxpool(F)   strides p/4, p/2, p, 2p (4/8/16/32)
    'dino':       fpn2(F), F, maxpool(F)            strides p/2, p, 2p (8/16/32)

``fpn1`` = ConvT(2, s2) -> LayerNorm over channels (eps 1e-6) -> GELU -> ConvT(2, s2),
``fpn2`` = ConvT(2, s2), as the official baseline's ``up1`` / ``up2`` (PIIP's own
fpn1 uses GroupNorm instead). Outputs are float32 and contiguous.
"""
import copy
import inspect
import math

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from ..registry import MODELS
from .backbones.vit import ARCHS, ViT

_VIT_KEYS = set(inspect.signature(ViT).parameters)
OUTPUT_MODES = ('simple_fpn', 'dino')


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``(B, C, H, W)`` (fp32 inside), eps 1e-6."""

    def __init__(self, channels):
        super().__init__(channels, eps=1e-6)

    def forward(self, x):
        y = F.layer_norm(x.permute(0, 2, 3, 1).float(), self.normalized_shape,
                         self.weight.float(), self.bias.float(), self.eps)
        return y.permute(0, 3, 1, 2).to(x.dtype)


@MODELS.register_module()
class ViTBaseline(BaseModule):
    """One plain ViT with PIIP's output pyramid: the paper's single-branch baselines.

    Args:
        arch (str | None): a key of :data:`~piip_det.models.backbones.vit.ARCHS`
            (``'deit-b'``, ``'deit-l'``, ``'internvit-6b'``, ...); explicit keys win.
        output_mode (str): ``'simple_fpn'`` (strides 4/8/16/32) or ``'dino'`` (8/16/32).
        real_size (int | None): the nominal square input side (the paper's FLOPs
            convention; read by ``tools/analysis_tools/get_flops.py``). Not used by forward.
        init_cfg (dict | None): mmengine init config, e.g. ``dict(type='Pretrained',
            checkpoint=PATH)`` for a converted checkpoint.
        **vit_kwargs: any :class:`~piip_det.models.backbones.vit.ViT` argument
            (``embed_dim``, ``depth``, ``num_heads``, ``window_attn``, ``window_size``,
            ``drop_path_rate``, ``with_cp``, ...).
    """

    def __init__(self, arch=None, output_mode='simple_fpn', real_size=None, init_cfg=None,
                 **vit_kwargs):
        super().__init__(init_cfg=copy.deepcopy(init_cfg))
        if arch is not None and arch not in ARCHS:
            raise ValueError(f'ViTBaseline arch={arch!r}: unknown; use one of {sorted(ARCHS)} '
                             'or give embed_dim/depth/num_heads')
        for key, value in vit_kwargs.items():
            if key not in _VIT_KEYS:
                raise ValueError(f'ViTBaseline {key}={value!r}: not a ViT option; use only '
                                 f'{sorted(_VIT_KEYS)}')
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f'ViTBaseline output_mode={output_mode!r}: a single branch has no '
                             f"intermediate merges; use one of {OUTPUT_MODES}")
        kwargs = {**ARCHS.get(arch, {}), **vit_kwargs}
        for key in ('embed_dim', 'depth', 'num_heads'):
            if key not in kwargs:
                raise ValueError(f'ViTBaseline {key}: missing; set {key} or an arch preset')
        try:
            self.branch1 = ViT(**kwargs)
        except ValueError as err:
            raise ValueError(f'ViTBaseline {err}') from None
        self.output_mode, self.real_size = output_mode, real_size
        self.num_branches = 1      # PIIP's interface (the converter's --branch 1 reads it)
        dim, p = self.branch1.embed_dim, self.branch1.patch_size
        if output_mode == 'simple_fpn':
            self.fpn1 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2), LayerNorm2d(dim),
                                      nn.GELU(), nn.ConvTranspose2d(dim, dim, 2, 2))
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2))
        self.fpn3 = nn.Sequential(nn.Identity())
        self.fpn4 = nn.Sequential(nn.MaxPool2d(kernel_size=2, stride=2))
        strides = tuple(int(s) if float(s).is_integer() else s for s in (p / 4, p / 2, p, 2 * p))
        self.out_strides = strides[1:] if output_mode == 'dino' else strides
        self.out_channels = [dim] * len(self.out_strides)
        for m in self.modules():      # official init of the fpns: normal(0, sqrt(2 / fan_out))
            if isinstance(m, nn.ConvTranspose2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(m.bias)

    @property
    def branches(self):
        """``[branch1]``: the one ViT, as PIIP lists its branches."""
        return [self.branch1]

    def forward(self, x):
        """``(B, 3, H, W)`` -> tuple of float maps ``(B, C, H/s, W/s)`` at :attr:`out_strides`."""
        feat = self.branch1(x)
        fpns = (self.fpn2, self.fpn3, self.fpn4)
        if self.output_mode == 'simple_fpn':
            fpns = (self.fpn1,) + fpns
        return tuple(fpn(feat).float().contiguous() for fpn in fpns)


def _full_signature(init):
    """``init``'s own arguments plus every ViT argument (keyword-only), so that config
    checkers and ``inspect`` see what ``**vit_kwargs`` really accepts."""
    own = [p for p in inspect.signature(init).parameters.values() if p.kind is not p.VAR_KEYWORD]
    vit = [p.replace(kind=p.KEYWORD_ONLY) for p in inspect.signature(ViT).parameters.values()]
    return inspect.Signature(own + vit)


ViTBaseline.__init__.__signature__ = _full_signature(ViTBaseline.__init__)
