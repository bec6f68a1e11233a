"""MAC counting for PIIP backbones and their branch ViTs, under two stated conventions.

Both counts come from one forward pass of the real module on the **meta device**:
parameters are created there (:func:`empty_weights`), so no weight is ever
allocated (an InternViT-6B branch costs nothing but its Python objects) and
only shapes flow through the forward. Two things cannot run on meta and are
replaced for the duration of the count (:func:`meta_forward`): the deformable
sampling (a shape-only stand-in that records its cost) and ``torch.autocast``
with ``device_type='meta'`` (a no-op context).

``paper`` (:func:`count_backbone`, ``FlopReport.paper``): the convention of the
PIIP README numbers (reference ``piip.md`` section 11):

1. MACs (a multiply-add counts 1), batch 1, a square input ``S x S`` at the top
   resolution (the largest ``real_size``), not the padded training shape;
2. backbone only, up to branch merging: the detection merge convs
   (``merge_branch*``, ``intermediate_merging*``), the simple FPN (``fpn*``) and
   the neck are not counted; the *light merge* of the README numbers,
   ``sum_{j>=2} N_j * d_j * d_1``, is added instead;
3. per module, the rules of mmcv-1.x ``get_model_complexity_info`` (the
   official counter): Linear ``tokens * in * out`` (no bias); Conv ``k*k *
   c_in/groups * c_out`` per output position plus ``c_out`` per position for a
   bias; LayerNorm / GroupNorm / RMSNorm ``numel`` (x2 when affine); ReLU and
   pools ``numel``; GELU, softmax, residual adds, position-embedding and
   image-pyramid resizing 0;
4. the official scripts' analytic additions for what hooks cannot see:
   attention matmuls (q k^T and attn v) ``2 * N * ws^2 * d`` per windowed and
   ``2 * N^2 * d`` per global block, with ``N = h * w`` the *unpadded* grid; the
   qkv projection is counted on the unpadded tokens as well (window padding is
   free); deformable sampling ``5 * N_q * L * K * d_q`` per injector (K points,
   L = 1 level, d_q the query width).

``as_built`` (``FlopReport.as_built``): every matmul / convolution the module
really runs, counted by ``torch.utils.flop_counter.FlopCounterMode`` (MACs =
its FLOPs / 2): window padding, the 3x3-conv merges and the simple FPN are
included; biases, norms and activations are not; the deformable sampling adds
what the op does, ``5 * N_q * heads * L * K * d_head`` (4 bilinear corners +
1 weight per sampled channel).
"""
import contextlib
import dataclasses
import re
from collections import defaultdict

import torch
import torch.nn as nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .models.backbones import interaction as _interaction
from .models.backbones.interaction import MSDeformAttn
from .models.backbones.vit import ARCHS, Attention, PatchEmbed, RMSNorm, ViT

#: first name components of a PIIP that the paper convention leaves out (merges, FPN, weights)
OUTPUT_PREFIXES = ('merge_branch', 'intermediate_merging', 'fpn')
PAPER_CONVENTION = (
    'paper convention: MACs, batch 1, square input at the top resolution, backbone only '
    '(branches + interactions + light merge sum_{j>=2} N_j*d_j*d_1; no conv merge, simple FPN '
    'or neck); mmcv-1.x hook rules (Linear/Conv/Norm, no GELU) plus attention matmuls '
    '2*N*ws^2*d (window) / 2*N^2*d (global) on the unpadded grid and deformable sampling '
    '5*N_q*K*d_q per injector')
AS_BUILT_CONVENTION = (
    'as built: MACs of every matmul/conv that runs (torch FlopCounterMode / 2), window padding, '
    'conv merges and simple FPN included, biases/norms/activations excluded, deformable '
    'sampling 5*N_q*heads*K*d_head')


_INITS = ('normal_', 'trunc_normal_', 'uniform_', 'zeros_', 'ones_', 'constant_',
          'xavier_uniform_', 'xavier_normal_', 'kaiming_uniform_', 'kaiming_normal_')


@contextlib.contextmanager
def empty_weights():
    """Create every parameter registered inside the block on the meta device.

    ``nn.Module.register_parameter`` is wrapped, so each new parameter is moved
    to meta right after its (uninitialised, untouched) CPU ``torch.empty``;
    the ``torch.nn.init`` initialisers skip meta tensors (they would be no-ops,
    only slower). Buffers and plain tensors stay on CPU.
    """
    original = nn.Module.register_parameter
    inits = {name: getattr(nn.init, name) for name in _INITS}

    def skip_meta(init):
        def wrapped(tensor, *args, **kwargs):
            return tensor if tensor.device.type == 'meta' else init(tensor, *args, **kwargs)
        return wrapped

    def register(module, name, param):
        if param is not None and param.device.type != 'meta':
            param = nn.Parameter(param.to('meta'), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register
    for name, init in inits.items():
        setattr(nn.init, name, skip_meta(init))
    try:
        yield
    finally:
        nn.Module.register_parameter = original
        for name, init in inits.items():
            setattr(nn.init, name, init)


class _Sampling:
    """Shape-only stand-in of ``multi_scale_deformable_attn`` that records the op's MACs."""

    def __init__(self):
        self.macs = 0

    def __call__(self, value, spatial_shapes, level_start_index, sampling_locations,
                 attention_weights, im2col_step=64):
        b, n_q, heads, levels, points, _ = sampling_locations.shape
        d_head = value.shape[-1]
        self.macs += 5 * b * n_q * heads * levels * points * d_head
        return value.new_empty(b, n_q, heads * d_head)


@contextlib.contextmanager
def meta_forward():
    """Patch what cannot run on meta for the duration of a count; yields the sampling recorder."""
    sampling, autocast = _Sampling(), torch.autocast
    original = _interaction.multi_scale_deformable_attn

    def meta_autocast(device_type, *args, **kwargs):
        if device_type == 'meta':
            return contextlib.nullcontext()
        return autocast(device_type, *args, **kwargs)

    _interaction.multi_scale_deformable_attn = sampling
    torch.autocast = meta_autocast
    try:
        yield sampling
    finally:
        _interaction.multi_scale_deformable_attn = original
        torch.autocast = autocast


def count_as_built(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` on meta tensors; return ``(output, MACs, MACs per module)``.

    MACs per module maps FlopCounterMode's module paths (``'PIIP.fpn1'``, ...) to
    their matmul / conv MACs; the deformable sampling is in the total only, and
    also under the key ``'sampling'``. Attention runs through SDPA's math backend,
    whose q k^T and attn v matmuls FlopCounterMode counts (it has no formula for
    the fused CPU kernel).
    """
    with meta_forward() as sampling, sdpa_kernel(SDPBackend.MATH), \
            FlopCounterMode(display=False) as counter:
        out = fn(*args, **kwargs)
    per_module = {name: sum(ops.values()) // 2 for name, ops in counter.get_flop_counts().items()}
    per_module['sampling'] = sampling.macs
    return out, counter.get_total_flops() // 2 + sampling.macs, per_module


# ----------------------------------------------------------------------------- paper convention
def _numel(t):
    n = 1
    for s in t.shape:
        n *= s
    return n


def _conv_macs(m, out):
    positions = out.shape[0] * _numel(out[0, 0])
    k = m.kernel_size[0] * m.kernel_size[1]
    macs = k * m.in_channels * (m.out_channels // m.groups) * positions
    return macs, (m.out_channels * positions if m.bias is not None else 0)


def _attention_macs(m, x, hw):
    """Paper-convention MACs of one :class:`Attention` on the unpadded grid ``hw``."""
    b, n, c = x.shape
    ws = m.window_size
    linear = b * n * m.qkv.in_features * m.qkv.out_features + b * n * c * c
    matmul = 2 * b * n * ws * ws * c if ws > 0 else 2 * b * n * n * c
    elementwise = 2 * 2 * b * n * c if m.qk_norm else 0      # q_norm, k_norm (affine)
    return linear, matmul, elementwise


class PaperCounter:
    """Forward hooks implementing the paper convention (module docstring, items 3-4).

    ``macs`` maps ``(group, kind)`` to MACs: group ``'vit'`` (patch embeds and
    blocks) or ``'interactions'``; kind ``'linear'``, ``'conv'``, ``'attention'``,
    ``'sampling'`` or ``'elementwise'``. ``embeds`` lists each branch's
    ``(N_j, d_j)`` in branch order (from the patch embeddings).
    """

    def __init__(self, model):
        self.macs = defaultdict(int)
        self.embeds = []
        self.handles = []
        skip = []                              # children of composite modules counted analytically
        for name, m in model.named_modules():
            if any(name.startswith(p + '.') for p in skip):
                continue
            if name.split('.')[0].startswith(OUTPUT_PREFIXES):
                continue
            group = 'interactions' if 'interactions' in name.split('.') else 'vit'
            hook = self._hook_for(m, group)
            if hook is not None:
                self.handles.append(m.register_forward_hook(hook))
            if isinstance(m, Attention):
                skip.append(name)

    def _hook_for(self, m, group):
        add = self.macs

        def linear(mod, inputs, out):
            add[group, 'linear'] += _numel(inputs[0]) * mod.out_features

        def conv(mod, inputs, out):
            macs, bias = _conv_macs(mod, out)
            add[group, 'conv'] += macs
            add[group, 'elementwise'] += bias

        def norm(mod, inputs, out):
            affine = getattr(mod, 'elementwise_affine', False) or getattr(mod, 'affine', False) \
                or isinstance(mod, RMSNorm)
            add[group, 'elementwise'] += _numel(inputs[0]) * (2 if affine else 1)

        def elementwise(mod, inputs, out):
            add[group, 'elementwise'] += _numel(inputs[0] if isinstance(mod, nn.MaxPool2d) else out)

        def attention(mod, inputs, out):
            lin, matmul, elem = _attention_macs(mod, *inputs[:2])
            add[group, 'linear'] += lin
            add[group, 'attention'] += matmul
            add[group, 'elementwise'] += elem

        def deform(mod, inputs, out):
            b, n_q, d_q = inputs[0].shape
            add[group, 'sampling'] += 5 * b * n_q * mod.n_levels * mod.n_points * d_q

        def embed(mod, inputs, out):
            self.embeds.append((out.shape[-2] * out.shape[-1], out.shape[1]))

        if isinstance(m, nn.Linear):
            return linear
        if isinstance(m, nn.Conv2d):
            return conv
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm, RMSNorm, nn.BatchNorm2d)):
            return norm
        if isinstance(m, (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d)):
            return elementwise
        if isinstance(m, Attention):
            return attention
        if isinstance(m, MSDeformAttn):
            return deform
        if isinstance(m, PatchEmbed):
            return embed
        return None

    def remove(self):
        for h in self.handles:
            h.remove()


def gmacs(macs):
    """MACs as a G string: one decimal from 10 G up, three significant digits below."""
    v = macs / 1e9
    return f'{v:.1f}' if abs(v) >= 10 else f'{v:.3g}'


@dataclasses.dataclass
class FlopReport:
    """Counts of one backbone at one input.

    ``paper`` maps ``(group, kind)`` to MACs (groups ``'vit'``, ``'interactions'``,
    ``'merge'``). ``as_built``, ``as_built_outputs`` (its part in merges / FPN)
    and ``as_built_sampling`` (its deformable sampling) are MACs, None when not
    counted. ``params`` counts every parameter, ``params_paper`` those of the
    branches and interactions (no merges, FPN or merge weights)."""
    input_shape: tuple
    paper: dict
    as_built: int
    as_built_outputs: int
    params: int
    params_paper: int
    as_built_sampling: int = None

    def paper_group(self, group):
        return sum(v for (g, _), v in self.paper.items() if g == group)

    @property
    def paper_total(self):
        return sum(self.paper.values())

    def lines(self):
        """Human-readable summary, conventions stated."""
        h, w = self.input_shape[-2:]
        kinds = defaultdict(int)
        for (_, kind), v in self.paper.items():
            kinds[kind] += v
        out = [f'input: 1x3x{h}x{w}' + ('' if h == w else '  (NOT square: the paper uses S x S)'),
               f'backbone GFLOPs (paper convention, GMACs): {gmacs(self.paper_total)}',
               f'  = ViT {gmacs(self.paper_group("vit"))} + interactions '
               f'{gmacs(self.paper_group("interactions"))} + light merge '
               f'{gmacs(self.paper_group("merge"))}',
               '  by kind: ' + ', '.join(f'{k} {gmacs(v)}' for k, v in sorted(kinds.items())),
               f'  [{PAPER_CONVENTION}]',
               f'backbone parameters: {self.params / 1e6:.2f} M (branches + interactions '
               f'{self.params_paper / 1e6:.2f} M)']
        if self.as_built is not None:
            out[5:5] = [f'backbone GMACs as built: {gmacs(self.as_built)} (merges + FPN '
                        f'{gmacs(self.as_built_outputs)})', f'  [{AS_BUILT_CONVENTION}]']
        return out


def count_backbone(backbone, input_shape, as_built=True):
    """Count a PIIP or ViT (built under :func:`empty_weights`) at ``input_shape``
    ``(H, W)`` or ``(B, 3, H, W)``; see the module docstring for both conventions.
    ``as_built=False`` skips FlopCounterMode (its meta decompositions are the slow
    part) and leaves ``as_built`` / ``as_built_outputs`` None."""
    if len(input_shape) == 2:
        input_shape = (1, 3) + tuple(input_shape)
    backbone = backbone.eval()
    x = torch.empty(*input_shape, device='meta')
    counter = PaperCounter(backbone)
    try:
        with torch.no_grad():
            if as_built:
                _, total, per_module = count_as_built(backbone, x)
            else:
                with meta_forward():
                    backbone(x)
                total, per_module = None, {}
    finally:
        counter.remove()
    paper = dict(counter.macs)
    if len(counter.embeds) > 1:                                 # light merge to branch1's width
        d1 = counter.embeds[0][1]
        paper['merge', 'linear'] = input_shape[0] * sum(n * d * d1 for n, d in counter.embeds[1:])
    pattern = re.compile(r'^[^.]+\.(%s)[^.]*$' % '|'.join(OUTPUT_PREFIXES))
    outputs = sum(v for k, v in per_module.items() if pattern.match(k)) if as_built else None
    params = sum(p.numel() for p in backbone.parameters())
    params_paper = sum(p.numel() for n, p in backbone.named_parameters()
                       if not n.startswith(OUTPUT_PREFIXES) and not re.fullmatch(r'w\d+', n))
    return FlopReport(tuple(input_shape), paper, total, outputs, params, params_paper,
                      per_module.get('sampling'))


# ----------------------------------------------------------------------------- building
def _strip_scope(type_name):
    return type_name.split('.', 1)[1] if type_name.startswith('piip_det.') else type_name


def build_backbone(cfg):
    """Build a backbone dict on the meta device: ``piip_det.PIIP`` (any registered
    type) through the registry, or a single ``ViT`` (optionally ``arch=...``)."""
    cfg = dict(cfg)
    type_name = cfg.pop('type')
    with empty_weights():
        if _strip_scope(type_name) == 'ViT':
            arch = cfg.pop('arch', None)
            cfg.pop('real_size', None)                      # the input side, not a ViT option
            return ViT(**{**ARCHS.get(arch, {}), **cfg})
        from .registry import MODELS
        return MODELS.build(dict(type=type_name, **cfg))


def top_resolution(cfg):
    """The paper's square input side of a backbone dict: the largest branch ``real_size``
    (PIIP) or a ViT's ``real_size`` key; None when the dict does not say."""
    sizes = [b.get('real_size') for b in cfg.get('branches', [])] or [cfg.get('real_size')]
    sizes = [s for s in sizes if s]
    return max(sizes) if sizes else None
