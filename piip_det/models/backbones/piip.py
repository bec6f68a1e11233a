"""PIIP: the generic N-branch Parameter-Inverted Image Pyramid backbone (2, 3 or 4 branches).

Branch order follows the official code: ``branches[0]`` (``branch1``) is the
*largest* model at the *smallest* resolution, the last branch the smallest
model at the full input resolution. The input ``(B, 3, H, W)`` is the padded
image at the last branch's ``real_size``; branch j sees it bilinearly resized
by ``real_size_j / real_size_last`` (sizes floored). After every stage s the
branches run their blocks ``interaction_indexes[s]`` and adjacent branches
interact (see :mod:`.interaction`). The branches are merged to ``branch1``'s
width d1 on the last branch's grid (stride p = its patch size, 16):

    O = sum_j w_j * Upsample(merge_branch{j}(F_j))                (B, d1, H/p, W/p)

Output modes (``output_mode``), each a tuple of float maps with d1 channels:

- ``'simple_fpn'``: ViTDet simple FPN of O, strides p/4, p/2, p, 2p (4/8/16/32);
- ``'dino'``: strides p/2, p, 2p (8/16/32), for a ChannelMapper neck;
- ``'regular_fpn'``: O merged also after the interactions in
  ``out_interaction_indexes`` (3 of them, lighter merges), giving 4 maps that
  fpn1 (x4 up), fpn2 (x2 up), identity and max-pool bring to strides 4/8/16/32.
  (With a CNN last branch the official code uses identity fpns; no CNN branch
  type exists here yet.)
"""
import inspect
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from ...registry import MODELS
from .interaction import InteractionBlock
from .vit import ARCHS, ViT

OUTPUT_MODES = ('simple_fpn', 'dino', 'regular_fpn')
_VIT_KEYS = set(inspect.signature(ViT).parameters)


def _fail(key, value, problem, fix):
    raise ValueError(f'PIIP {key}={value!r}: {problem}; {fix}')


def _branch_kwargs(i, cfg):
    """Split one branch dict into ViT kwargs, ``real_size`` and its schedule; check keys."""
    cfg = dict(cfg)
    key = f'branches[{i}]'
    for required in ('real_size', 'interaction_indexes'):
        if required not in cfg:
            _fail(f'{key}.{required}', None, 'missing', f'add {required} to {key}')
    real_size, schedule = cfg.pop('real_size'), [list(r) for r in cfg.pop('interaction_indexes')]
    arch = cfg.pop('arch', None)
    if arch is not None and arch not in ARCHS:
        _fail(f'{key}.arch', arch, 'unknown', f'use one of {sorted(ARCHS)} or give embed_dim/depth/num_heads')
    kwargs = {**ARCHS.get(arch, {}), **cfg}
    for k in kwargs:
        if k not in _VIT_KEYS:
            _fail(f'{key}.{k}', kwargs[k], 'not a branch option', f'use only {sorted(_VIT_KEYS)}')
    for k in ('embed_dim', 'depth', 'num_heads'):
        if k not in kwargs:
            _fail(f'{key}.{k}', None, 'missing', f'set {k} or an arch preset')
    return kwargs, real_size, schedule


def _check_schedule(i, schedule, depth):
    """The inclusive ``[start, end]`` ranges must cover blocks 0..depth-1 in order, once each."""
    key, nxt = f'branches[{i}].interaction_indexes', 0
    for s, rng in enumerate(schedule):
        if len(rng) != 2 or rng[0] != nxt or rng[1] < rng[0]:
            _fail(key, schedule, f'stage {s} range {rng} does not continue at block {nxt}',
                  'give contiguous inclusive [start, end] ranges covering every block once')
        nxt = rng[1] + 1
    if nxt != depth:
        _fail(key, schedule, f'the ranges end at block {nxt - 1} but depth={depth}',
              f'make the last range end at block {depth - 1}')


def _conv_gn_relu(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.GroupNorm(32, c_out), nn.ReLU()]


def _tokens_to_map(x, hw):
    """``(B, h*w, C)`` -> ``(B, C, h, w)``."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw)


@MODELS.register_module()
class PIIP(BaseModule):
    """N-branch PIIP backbone.

    Args:
        branches (list[dict]): one dict per branch, largest model first. Keys:
            ``real_size`` (int, its resolution; the last is the input size),
            ``interaction_indexes`` (list of inclusive ``[start, end]`` block
            ranges, the same count S in every branch), optional ``arch`` (a key
            of :data:`.vit.ARCHS`, e.g. ``'deit-b'``) and any :class:`.ViT`
            argument (``window_attn``, ``window_size``, ``drop_path_rate``, ``with_cp``, ...).
        n_points (int): MSDA sampling points. Default 4.
        deform_num_heads (int): MSDA heads. Default 16.
        deform_ratio (float): MSDA value width ratio. Default 0.5.
        with_cffn (bool), cffn_ratio (float): the injectors' ConvFFN. Default True, 0.25.
        interaction_drop_path_rate (float): DropPath of the ConvFFN branch. Default 0.4.
        interaction_proj (bool): project features before injecting. Default True.
        interaction_norm (str): ``'layernorm'`` or ``'none'``. Default ``'layernorm'``.
        interact_attn_type (str): only ``'deform'`` is implemented.
        interaction_with_cp (bool): activation checkpointing of the injectors.
        output_mode (str): one of :data:`OUTPUT_MODES`.
        out_interaction_indexes (list[int] | None): the 3 stages merged in
            ``'regular_fpn'`` mode (official ConvNeXt configs: ``[0, 1, 10]``).
        init_cfg (dict | None): mmengine init config (e.g. ``Pretrained``).
    """

    def __init__(self, branches, n_points=4, deform_num_heads=16, deform_ratio=0.5, with_cffn=True,
                 cffn_ratio=0.25, interaction_drop_path_rate=0.4, interaction_proj=True,
                 interaction_norm='layernorm', interact_attn_type='deform',
                 interaction_with_cp=False, output_mode='simple_fpn',
                 out_interaction_indexes=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(branches, (list, tuple)) or len(branches) < 2:
            _fail('branches', branches, 'PIIP needs at least 2 branch dicts',
                  'give 2, 3 or 4 dicts, the largest model first')
        if interact_attn_type != 'deform':
            _fail('interact_attn_type', interact_attn_type, 'only deformable interaction is implemented',
                  "use 'deform' (the 'normal' global cross-attention was an ablation)")
        if interaction_norm not in ('layernorm', 'none'):
            _fail('interaction_norm', interaction_norm, 'unknown', "use 'layernorm' or 'none'")
        if output_mode not in OUTPUT_MODES:
            _fail('output_mode', output_mode, 'unknown', f'use one of {OUTPUT_MODES}')
        parsed = [_branch_kwargs(i, cfg) for i, cfg in enumerate(branches)]
        self.num_branches = len(parsed)
        self.real_sizes = [real for _, real, _ in parsed]
        self.schedules = [sched for _, _, sched in parsed]
        self.output_mode = output_mode

        for i, (kwargs, real, sched) in enumerate(parsed):
            try:
                vit = ViT(**kwargs)
            except ValueError as err:
                raise ValueError(f'PIIP branches[{i}].{err}') from None
            self._check_branch(i, vit, real, sched)
            self.add_module(f'branch{i + 1}', vit)
        if self.real_sizes[-1] != max(self.real_sizes):
            _fail(f'branches[{self.num_branches - 1}].real_size', self.real_sizes[-1],
                  'the last branch sees the input and must have the largest real_size',
                  'order the branches from the largest model (smallest image) to the smallest')
        num_stages = len(self.schedules[0])
        for i, sched in enumerate(self.schedules):
            if len(sched) != num_stages:
                _fail(f'branches[{i}].interaction_indexes', sched,
                      f'{len(sched)} stages but branches[0] has {num_stages}',
                      'give every branch the same number of interaction ranges')
        dims = [b.embed_dim for b in self.branches]
        for i, d in enumerate(dims):
            width = int(d * deform_ratio)
            if width % deform_num_heads:
                _fail('deform_num_heads', deform_num_heads,
                      f'does not divide int(branches[{i}].embed_dim * deform_ratio) = {width}',
                      'pick deform_num_heads dividing every branch value width')
        if dims[0] % 32:
            _fail('branches[0].embed_dim', dims[0], 'the merged width feeds GroupNorm(32)',
                  'use a multiple of 32 for the first (largest) branch')

        self.interactions = nn.Sequential(*[
            InteractionBlock(dims, proj=interaction_proj, num_heads=deform_num_heads,
                             n_points=n_points, deform_ratio=deform_ratio, norm=interaction_norm,
                             with_cffn=with_cffn, cffn_ratio=cffn_ratio,
                             drop_path=interaction_drop_path_rate, with_cp=interaction_with_cp)
            for _ in range(num_stages)])
        self._build_outputs(dims, num_stages, out_interaction_indexes)
        self._reset_output_parameters()

    @property
    def branches(self):
        return [getattr(self, f'branch{j + 1}') for j in range(self.num_branches)]

    def _check_branch(self, i, vit, real, sched):
        key = f'branches[{i}]'
        if not isinstance(real, int) or real <= 0:
            _fail(f'{key}.real_size', real, 'not a positive int', 'give the side in pixels')
        if real % vit.patch_size:
            low = max(vit.patch_size, real // vit.patch_size * vit.patch_size)
            _fail(f'{key}.real_size', real, f'not a multiple of patch_size={vit.patch_size}',
                  f'use a multiple of {vit.patch_size} such as {low} or {low + vit.patch_size}')
        grid = real // vit.patch_size
        for b, ws in enumerate(vit.window_sizes):
            if ws > grid:
                _fail(f'{key}.window_size', ws, f'block {b} window is larger than the '
                      f'{grid}x{grid} token grid of real_size={real}',
                      f'use window_size <= {grid}, a larger real_size, or window_attn=False')
        _check_schedule(i, sched, vit.depth)

    def _build_outputs(self, dims, num_stages, out_interaction_indexes):
        d1, regular = dims[0], self.output_mode == 'regular_fpn'
        for j, d in enumerate(dims, 1):
            if regular:   # lighter final merge: GN+ReLU for branch1, one conv for the others
                layers = [nn.GroupNorm(32, d1), nn.ReLU()] if j == 1 else _conv_gn_relu(d, d1)
            else:
                layers = _conv_gn_relu(d, d1) + _conv_gn_relu(d1, d1)
            self.add_module(f'merge_branch{j}', nn.Sequential(*layers))
            self.register_parameter(f'w{j}', nn.Parameter(torch.ones(1)))
        self.out_interaction_indexes = []
        if regular:
            idx = list(out_interaction_indexes or [])
            if len(idx) != 3 or sorted(set(idx)) != idx or not all(0 <= s < num_stages for s in idx):
                fix = (f'give 3 increasing stage indexes in [0, {num_stages - 1}], e.g. '
                       f'[0, 1, {num_stages - 2}]' if num_stages >= 4 else
                       f'use at least 4 interaction stages (there are {num_stages})')
                _fail('out_interaction_indexes', out_interaction_indexes,
                      "'regular_fpn' merges after 3 distinct interaction stages", fix)
            self.out_interaction_indexes = idx
            for s in idx:
                for j, d in enumerate(dims, 1):
                    layers = [nn.GroupNorm(32, d1), nn.ReLU()] if j == 1 else _conv_gn_relu(d, d1)
                    self.add_module(f'intermediate_merging_{s}_branch{j}', nn.Sequential(*layers))
                    self.register_parameter(f'intermediate_merging_{s}_w{j}',
                                            nn.Parameter(torch.ones(1)))
        if self.output_mode != 'dino':
            self.fpn1 = nn.Sequential(nn.ConvTranspose2d(d1, d1, 2, 2), nn.GroupNorm(32, d1),
                                      nn.GELU(), nn.ConvTranspose2d(d1, d1, 2, 2))
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(d1, d1, 2, 2))
        self.fpn3 = nn.Sequential(nn.Identity())
        self.fpn4 = nn.Sequential(nn.MaxPool2d(kernel_size=2, stride=2))
        p = self.branches[-1].patch_size
        strides = tuple(int(s) if float(s).is_integer() else s for s in (p / 4, p / 2, p, 2 * p))
        self.out_strides = strides[1:] if self.output_mode == 'dino' else strides
        self.out_channels = [d1] * len(self.out_strides)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Official checkpoints store the merge weights ``w_j`` 0-D; ours are ``(1,)`` (FSDP
        shards no 0-D parameter), so a 0-D value is reshaped on load."""
        for name, param in self._parameters.items():
            value = state_dict.get(prefix + name)
            if value is not None and value.dim() == 0 and param.shape == (1,):
                state_dict[prefix + name] = value.reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _reset_output_parameters(self):
        """Official init of merges and fpns: conv normal(0, sqrt(2 / fan_out)), zero bias."""
        for name, m in self.named_modules():
            if name.startswith(('branch', 'interactions')):
                continue
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def image_pyramid(self, x):
        """``(B, 3, H, W)`` at the last real_size -> one image per branch (bilinear, floored)."""
        top = self.real_sizes[-1]
        return [F.interpolate(x, scale_factor=r / top, mode='bilinear', align_corners=False)
                if r < top else x for r in self.real_sizes]

    def _run(self, x):
        """Blocks and interactions: tokens ``[(B, N_j, d_j)]``, grids, intermediate merges."""
        feats, hws = [], []
        for branch, img in zip(self.branches, self.image_pyramid(x)):
            tokens, hw = branch.embed(img)
            feats.append(tokens)
            hws.append(hw)
        merged = []
        for s, interaction in enumerate(self.interactions):
            feats = [branch.forward_blocks(f, hw, *sched[s])
                     for branch, f, hw, sched in zip(self.branches, feats, hws, self.schedules)]
            feats = interaction(feats, hws)
            if s in self.out_interaction_indexes:
                merged.append(self._merge(feats, hws, f'intermediate_merging_{s}_branch',
                                          f'intermediate_merging_{s}_w'))
        return feats, hws, merged

    def _merge(self, feats, hws, module_prefix='merge_branch', weight_prefix='w'):
        """Weighted sum of the merged branches on the last grid: ``(B, d1, h_K, w_K)``."""
        out = 0
        for j, (x, hw) in enumerate(zip(feats, hws), 1):
            m = getattr(self, f'{module_prefix}{j}')(_tokens_to_map(x, hw))
            if j < self.num_branches:   # upsample in fp32
                m = F.interpolate(m.float(), size=hws[-1], mode='bilinear',
                                  align_corners=False).to(m.dtype)
            out = out + m * getattr(self, f'{weight_prefix}{j}')
        return out

    def forward_branches(self, x):
        """Each branch's final tokens as maps ``[(B, d_j, h_j, w_j)]`` (before merging)."""
        feats, hws, _ = self._run(x)
        return [_tokens_to_map(f, hw) for f, hw in zip(feats, hws)]

    def forward(self, x):
        """``(B, 3, H, W)`` -> tuple of float maps with d1 channels at :attr:`out_strides`."""
        feats, hws, merged = self._run(x)
        out = self._merge(feats, hws)
        if self.output_mode == 'dino':
            maps = [self.fpn2(out), self.fpn3(out), self.fpn4(out)]
        else:
            srcs = merged + [out] if self.output_mode == 'regular_fpn' else [out] * 4
            maps = [fpn(src) for fpn, src in zip((self.fpn1, self.fpn2, self.fpn3, self.fpn4), srcs)]
        return tuple(m.float().contiguous() for m in maps)
