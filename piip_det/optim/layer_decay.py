"""Layer-wise learning-rate decay for PIIP and single-branch ViTs (official PIIP rule).

Registered in mmengine's ``OPTIM_WRAPPER_CONSTRUCTORS`` (every scope reaches it)::

    optim_wrapper = dict(
        optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
        constructor='PIIPLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.85, skip_stride=[1, 1]))

The rule (``CustomLayerDecayOptimizerConstructorMMDet`` of the official repo,
restated; names are the model's parameter names, ``backbone.`` first):

- ``L = num_layers + 2`` (``num_layers`` = depth of ``branch1``, the largest model);
- layer id 0: ``pos_embed``, ``cls_token``, ``mask_token``, ``patch_embed.*`` of the
  backbone or of any ``branchK``;
- ``backbone.blocks.i`` and ``backbone.branch1.blocks.i``: ``i + 1``;
- ``backbone.branchK.blocks.i`` (K >= 2): ``floor((i + 1) * skip_stride[K - 2])``
  (the official code names a group ``'layer_%d'``, so a fractional id such as
  InternViT-6B + ViT-H's ``1.5 * (i + 1)`` joins -- and takes the lr of -- the
  group of its floor);
- everything else (interactions, merges, FPN, neck, heads): ``L - 1``, lr scale 1;
- lr scale ``layer_decay_rate ** (L - id - 1)``, lr ``base_lr * scale``.

Weight decay: 0 for parameters with at most one dimension (biases, norms, gammas,
**and the merge scalars** ``w_j``, 0-D in the official code, whose ``len(shape) == 1``
test therefore decays them; ours are ``(1,)``), for names ending in ``.bias``, and for ``pos_embed`` / ``cls_token`` (the
official test compares the full name with the bare word, so it never fires: the
intent is kept here); the optimizer's ``weight_decay`` otherwise.
"""
import math
import re

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

#: wrapper components that are not part of a parameter's model name
_WRAPPERS = re.compile(r'(^|\.)(module|_fsdp_wrapped_module|_checkpoint_wrapped_module)\.')
_EMBED = re.compile(r'^backbone\.(branch\d+\.)?(pos_embed|cls_token|mask_token|patch_embed\.)')
_BLOCK = re.compile(r'^backbone\.(?:branch(\d+)\.)?blocks\.(\d+)\.')
_NO_DECAY_NAMES = ('pos_embed', 'cls_token')


def _skip_strides(skip_stride, num_branches):
    """A scalar or list -> one stride per branch after the first."""
    if isinstance(skip_stride, (int, float)):
        return [skip_stride] * max(num_branches - 1, 0)
    strides = list(skip_stride)
    if len(strides) < num_branches - 1:
        raise ValueError(f'paramwise_cfg.skip_stride={skip_stride!r}: {len(strides)} entries '
                         f'for {num_branches} branches; give one per branch after branch1 '
                         f'(e.g. [2, 2] for PIIP-SBL) or a single number')
    return strides


def layer_id(name, num_layers, skip_stride=1):
    """The official layer id of parameter ``name`` (``backbone.`` first) with ``L = num_layers``
    (already including the +2); see the module docstring."""
    name = _WRAPPERS.sub(r'\1', name)
    if _EMBED.match(name):
        return 0
    block = _BLOCK.match(name)
    if block is None:
        return num_layers - 1
    branch, index = int(block.group(1) or 1), int(block.group(2))
    if branch == 1:
        return index + 1
    strides = _skip_strides(skip_stride, branch)
    return math.floor((index + 1) * strides[branch - 2])


def no_weight_decay(name, param):
    """Biases, <= 1-D parameters (norms, gammas, merge scalars) and position embeddings."""
    return param.ndim <= 1 or name.endswith('.bias') or name.rsplit('.', 1)[-1] in _NO_DECAY_NAMES


def _infer_num_layers(model, backbone_name='backbone'):
    backbone = getattr(model, backbone_name, None)
    branch = getattr(backbone, 'branch1', None) or backbone
    depth = getattr(branch, 'depth', None)
    if depth is None:
        raise ValueError('paramwise_cfg.num_layers: missing and the model has no '
                         f'{backbone_name}.branch1.depth; set it to the depth of branch1')
    return depth


def _as_backbone(name, backbone_name):
    """``name`` with the ``backbone_name.`` prefix spelled ``backbone.`` (the rule's names);
    other parameters keep a name the rule gives the top layer id."""
    if backbone_name == 'backbone':
        return name
    bare = _WRAPPERS.sub(r'\1', name)
    if bare.startswith(backbone_name + '.'):
        return 'backbone.' + bare[len(backbone_name) + 1:]
    return 'not_backbone.' + bare


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class PIIPLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """One param group per (layer id, decay / no decay), lr scaled by the layer-decay rule.

    ``paramwise_cfg`` keys: ``layer_decay_rate`` (required), ``num_layers`` (depth of
    branch1; inferred from ``model.backbone`` when absent), ``skip_stride`` (a number or
    one per branch after the first; default 1), ``backbone_name`` (the model attribute that
    holds the PIIP / ViT, default ``backbone``; ``img_backbone`` for ``BEVDet``). Each group
    carries ``layer_id``, ``lr_scale`` and ``group_name`` next to ``lr`` and ``weight_decay``.
    """

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        cfg = self.paramwise_cfg
        if 'layer_decay_rate' not in cfg:
            raise ValueError('paramwise_cfg.layer_decay_rate: missing (official: 0.85 for PIIP '
                             'detection, 0.95 for the baselines and ADE20K)')
        rate = cfg['layer_decay_rate']
        backbone_name = cfg.get('backbone_name', 'backbone')
        num_layers = (cfg.get('num_layers') or _infer_num_layers(module, backbone_name)) + 2
        skip_stride = cfg.get('skip_stride', 1)
        groups = {}
        for name, param in module.named_parameters(prefix=prefix.rstrip('.')):
            if not param.requires_grad:
                continue
            decay = not no_weight_decay(name, param)
            lid = layer_id(_as_backbone(name, backbone_name), num_layers, skip_stride)
            key = f'layer_{lid}_{"decay" if decay else "no_decay"}'
            if key not in groups:
                scale = rate ** (num_layers - lid - 1)
                groups[key] = dict(params=[], lr=self.base_lr * scale, lr_scale=scale,
                                   weight_decay=self.base_wd if decay else 0.0,
                                   layer_id=lid, group_name=key)
            groups[key]['params'].append(param)
        print_log(f'layer decay: rate {rate}, {num_layers} layers, skip_stride {skip_stride}, '
                  f'{len(groups)} param groups', logger='current')
        params.extend(groups.values())


def param_group_table(optimizer, model):
    """``{param name: (layer_id, lr_scale, weight_decay)}`` of a built optimizer (for checks)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g['layer_id'], g['lr_scale'], g['weight_decay'])
            for g in optimizer.param_groups for p in g['params']}
