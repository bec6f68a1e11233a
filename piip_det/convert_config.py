"""Official PIIP backbone definitions -> our PIIP config (``tools/convert/piip_official.py``).

Format: the keyword arguments of the official mmdet 2.x / mmseg 0.x ``PIIPTwoBranch``,
``PIIPThreeBranch`` or ``PIIPFourBranch`` (``backbone=dict(type=..., branch1=dict(...), ...)``,
as a dict; a ``{'backbone': ...}`` or ``{'model': {'backbone': ...}}`` wrapper is accepted).
:func:`translate_official_config` returns our ``dict(type='piip_det.PIIP', ...)`` with every
value explicit (the official class defaults filled in: 6 heads, ratio 1.0, no ConvFFN, drop
0.3, vit_models qkv_bias=False / init_scale=1e-4, InternViT6B patch 14, with_cp=True, ...)
and notes on what was dropped or differs. Branch types follow the official rule ('deit' in
``pretrained``: ``vit_models``, else ``InternViT6B``); ``PIIPFourBranch`` builds its branch4
from branch3's arguments, as the official code (and so its checkpoints) does.
:func:`format_config` writes the result as a Python config file;
:func:`official_config_from_meta` reads the official definition from a checkpoint's
``meta['config']`` text (parsed as literals, never executed).
"""
import ast

from .convert import ConversionError

_NUM_BRANCHES = {'PIIPTwoBranch': 2, 'PIIPThreeBranch': 3, 'PIIPFourBranch': 4}
# Official class defaults (piip_3branch.py, deit.py vit_models, internvit_6b.py InternViT6B).
_PIIP_DEFAULTS = dict(n_points=4, deform_num_heads=6, with_cffn=False, cffn_ratio=0.25,
                      deform_ratio=1.0, is_dino=False, interaction_proj=True,
                      interact_attn_type='normal', interaction_drop_path_rate=0.3,
                      norm_layer='layernorm', pretrained=None, with_simple_fpn=True,
                      out_interaction_indexes=[], cal_flops=False)
_DEIT_DEFAULTS = dict(pretrain_img_size=224, patch_size=16, pretrain_patch_size=16, in_chans=3,
                      embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, qkv_bias=False,
                      qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0,
                      use_cls_token=False, init_scale=1e-4, window_size=None, window_attn=None,
                      output_dtype='float32', pretrained=None, out_indices=None, with_fpn=False,
                      use_simple_fpn=True, use_flash_attn=False, with_cp=False, cal_flops=False,
                      Mlp_block=None)
_INTERNVIT_DEFAULTS = dict(in_chans=3, patch_size=14, pretrain_patch_size=14,
                           pretrain_img_size=224, qkv_bias=False, drop_path_rate=0.0,
                           embed_dim=3200, num_heads=25, mlp_ratio=4, init_values=0.1,
                           qk_normalization=True, depth=48, use_flash_attn=True, with_cp=True,
                           layerscale_force_fp32=False, out_indices=None, with_fpn=False,
                           with_final_norm=False, window_attn=False, window_size=14,
                           output_dtype='float32', pretrained=None, norm_layer_type='RMSNorm',
                           use_simple_fpn=True, mlp_type='regular')
# Branch keys that change nothing in PIIP's forward (the official PIIP never runs a
# branch's own forward); dropped with a note when given.
_INERT = {
    'pretrained': 'weights come from this converter (or an init_cfg), not from the config',
    'pretrain_patch_size': 'a pretrained kernel of another patch size is resized by the '
                           'converter (and on load)',
    'use_flash_attn': 'attention runs through F.scaled_dot_product_attention',
    'with_fpn': "a branch's own upsamplers are never run by PIIP", 'out_indices': 'unused',
    'output_dtype': 'unused', 'use_simple_fpn': 'unused', 'with_final_norm': 'unused',
    'cal_flops': 'use tools/analysis_tools/get_flops.py',
    'layerscale_force_fp32': 'layer scale runs in the branch dtype',
}


def _fail(msg):
    raise ConversionError(msg)


def _per_block(value, depth, key):
    value = list(value) if isinstance(value, (list, tuple)) else [value] * depth
    if len(value) != depth:
        _fail(f'{key} has {len(value)} entries for depth={depth}')
    return value


def _collapse(values):
    return values[0] if len(set(values)) == 1 else values


def _branch_kind(j, branch, num_branches):
    if num_branches == 4:
        return 'deit'                      # PIIPFourBranch builds vit_models only
    pretrained = branch.get('pretrained')
    if not isinstance(pretrained, str):
        _fail(f'branch{j}.pretrained is missing: the official class picks the branch type from '
              "it ('deit' in the path: vit_models, else InternViT6B); add it")
    for word in ('beit', 'perceiver', 'convnext') if num_branches == 3 else ():
        if word in pretrained and 'deit' not in pretrained:
            _fail(f'branch{j}.pretrained={pretrained!r} selects a {word} branch, which our PIIP '
                  'does not implement (DeiT and InternViT6B branches only)')
    return 'deit' if 'deit' in pretrained else 'internvit'


def _translate_branch(j, branch, kind, notes, inert):
    b, key = dict(branch), f'branch{j}'
    for required in ('real_size', 'interaction_indexes'):
        if required not in b:
            _fail(f'{key}.{required} is missing')
    real_size, indexes = b.pop('real_size'), [list(r) for r in b.pop('interaction_indexes')]
    if b.pop(f'branch{j}_w_cls_token', False) and kind == 'deit':
        _fail(f'{key}.branch{j}_w_cls_token=True is a classification setting; detection '
              'branches have no cls token')
    defaults = _DEIT_DEFAULTS if kind == 'deit' else _INTERNVIT_DEFAULTS
    for k in sorted(set(b) - set(defaults)):
        if kind == 'deit':
            _fail(f'{key}.{k} is not an argument of the official vit_models')
        notes.append(f'{key}.{k}={b.pop(k)!r} dropped: InternViT6B swallows it (**kwargs)')
    v = {**defaults, **b}
    depth = v['depth']
    window_attn = _per_block(False if v['window_attn'] is None else v['window_attn'], depth,
                             f'{key}.window_attn')
    window_size = _per_block(-1 if v['window_size'] is None else v['window_size'], depth,
                             f'{key}.window_size')
    if any(on and size <= 0 for on, size in zip(window_attn, window_size)):
        _fail(f'{key}.window_size={window_size} has no positive size for a windowed block')
    out = dict(real_size=real_size, interaction_indexes=indexes, block_type=kind,
               embed_dim=v['embed_dim'], depth=depth, num_heads=v['num_heads'],
               patch_size=v['patch_size'], pretrain_img_size=v['pretrain_img_size'],
               in_chans=v['in_chans'], mlp_ratio=float(v['mlp_ratio']),
               qkv_bias=bool(v['qkv_bias']))
    if kind == 'deit':
        if v['qk_scale'] is not None:
            _fail(f'{key}.qk_scale={v["qk_scale"]!r}: only the default 1/sqrt(head_dim) '
                  'exists here')
        out.update(norm_type='layernorm', qk_norm=False, init_values=float(v['init_scale']),
                   drop_path_schedule='constant')
        if v['use_cls_token']:
            notes.append(f'{key}.use_cls_token dropped: PIIP never feeds the cls token')
        if v['drop_rate'] or v['attn_drop_rate']:
            notes.append(f'{key}: drop_rate / attn_drop_rate dropped (no dropout here; '
                         'evaluation outputs are unaffected)')
        if v['Mlp_block'] == 'fused_mlp':
            notes.append(f'{key}.Mlp_block=fused_mlp: the official FusedMLP uses tanh-GELU, '
                         'ours exact GELU (small output differences)')
        if any(window_attn) and not v['use_flash_attn']:
            notes.append(f'{key}: use_flash_attn=False pads q/k/v after the qkv projection in '
                         'windowed blocks; ours pads tokens before it (the flash path): outputs '
                         'differ where the grid is not a multiple of the window')
    else:
        init = v['init_values']
        out.update(norm_type='rmsnorm' if v['norm_layer_type'] == 'RMSNorm' else 'layernorm',
                   qk_norm=bool(v['qk_normalization']), init_values=float(init) if init else 0.0,
                   drop_path_schedule='linear', pos_embed_cls_slot=True)
        if v['mlp_type'] != 'regular':
            notes.append(f'{key}.mlp_type={v["mlp_type"]!r}: the official FusedMLP uses '
                         'tanh-GELU, ours exact GELU (small output differences)')
    out.update(window_attn=_collapse(window_attn), window_size=_collapse(window_size),
               drop_path_rate=float(v['drop_path_rate']), with_cp=bool(v['with_cp']))
    for k in sorted(set(b) & set(_INERT)):   # grouped per key by the caller
        same_patch = k == 'pretrain_patch_size' and b[k] == v['patch_size']
        if b[k] not in (None, False) and not same_patch:
            inert.setdefault(k, []).append(f'{key}={b[k]!r}' if k == 'pretrained' else key)
    return out


def translate_official_config(official):
    """Official backbone kwargs (dict) -> ``(our backbone config dict, notes [str])``."""
    cfg = dict(official)
    cfg = dict(cfg.get('model', {}).get('backbone', cfg) if 'model' in cfg else
               cfg.get('backbone', cfg))
    cfg.pop('_delete_', None)
    kind = cfg.pop('type', None)
    num = _NUM_BRANCHES.get(kind) or (sum(f'branch{j}' in cfg for j in range(1, 5))
                                      if kind is None else None)
    if not num:
        _fail(f'type={kind!r} is not an official PIIP backbone ({sorted(_NUM_BRANCHES)})')
    branches = [cfg.pop(f'branch{j}', None) for j in range(1, num + 1)]
    for j, b in enumerate(branches, 1):
        if not b:
            _fail(f'branch{j} is missing or empty for {kind or f"{num} branches"}')
    for k in sorted(set(cfg) - set(_PIIP_DEFAULTS)):
        _fail(f'{k} is not an argument of the official {kind or "PIIP"} class')
    v, notes = {**_PIIP_DEFAULTS, **cfg}, []
    if v['interact_attn_type'] != 'deform':
        _fail(f"interact_attn_type={v['interact_attn_type']!r} (the official default is "
              "'normal', an ablation): only 'deform' interactions exist here")
    if v['norm_layer'] not in ('layernorm', 'none'):
        _fail(f"norm_layer={v['norm_layer']!r}: give 'none' or leave it out (LayerNorm)")
    if v['is_dino'] and not v['with_simple_fpn']:
        _fail('is_dino=True with with_simple_fpn=False (DINO outputs of light merges) is not '
              'built here')
    kinds = [_branch_kind(j, b, num) for j, b in enumerate(branches, 1)]
    if num == 4:   # official bug kept for its checkpoints: branch4 = vit_models(**branch3)
        own = {'real_size', 'interaction_indexes'}
        differ = sorted(k for k in set(branches[3]) | set(branches[2]) if k not in own
                        and branches[3].get(k) != branches[2].get(k))
        branches[3] = {**{k: x for k, x in branches[2].items() if k not in own},
                       **{k: x for k, x in branches[3].items() if k in own}}
        if differ:
            notes.append('branch4 built from branch3\'s ViT arguments, as the official '
                         'PIIPFourBranch does (vit_models(**branch3)) and its checkpoints hold; '
                         f'branch4 {", ".join(differ)} ignored')
    inert = {}
    out = [_translate_branch(j, b, k, notes, inert)
           for j, (b, k) in enumerate(zip(branches, kinds), 1)]
    notes += [f'{k} dropped ({", ".join(where)}): {_INERT[k]}' for k, where in inert.items()]
    mode = 'dino' if v['is_dino'] else 'simple_fpn' if v['with_simple_fpn'] else 'regular_fpn'
    ours = dict(type='piip_det.PIIP', branches=out, n_points=v['n_points'],
                deform_num_heads=v['deform_num_heads'], deform_ratio=float(v['deform_ratio']),
                with_cffn=bool(v['with_cffn']), cffn_ratio=float(v['cffn_ratio']),
                interaction_drop_path_rate=float(v['interaction_drop_path_rate']),
                interaction_proj=bool(v['interaction_proj']), interaction_norm=v['norm_layer'],
                interact_attn_type='deform', interaction_with_cp=False, output_mode=mode)
    if mode == 'regular_fpn':
        ours['out_interaction_indexes'] = list(v['out_interaction_indexes'])
    for k in ('pretrained', 'cal_flops'):
        if v[k]:
            notes.append(f'{k}={v[k]!r} dropped: {_INERT[k]}')
    return ours, notes


def format_config(cfg, notes=(), source=None):
    """Our backbone config as the text of a Python config file defining ``backbone``."""
    def fmt(x, ind):
        pad, end = ' ' * (ind + 4), ' ' * ind
        if isinstance(x, dict):
            body = ''.join(f'{pad}{k}={fmt(y, ind + 4)},\n' for k, y in x.items())
            return 'dict(\n' + body + end + ')'
        if isinstance(x, list) and any(isinstance(y, dict) for y in x):
            return '[\n' + ''.join(f'{pad}{fmt(y, ind + 4)},\n' for y in x) + end + ']'
        return repr(x)
    head = ['# Our PIIP backbone, translated from an official PIIP backbone definition by',
            '# tools/convert/piip_official.py.' + (f' Source: {source}' if source else '')]
    head += ['# Notes:'] + [f'#   - {n}' for n in notes] if notes else []
    text = '\n'.join(head) + '\nbackbone = ' + fmt(cfg, 0) + '\n'
    compile(text, '<config>', 'exec')
    return text


def _literal(node):
    """Literal of a config expression: constants, lists, tuples, dicts and ``dict(k=...)``."""
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'dict' and not node.args:
        if any(kw.arg is None for kw in node.keywords):
            raise ValueError('dict(**x)')
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(x) for k, x in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def official_config_from_meta(meta):
    """The official backbone kwargs from an mmdet/mmseg checkpoint's ``meta['config']`` text
    (parsed as literals, never executed), or None."""
    text = (meta or {}).get('config')
    try:
        tree = ast.parse(text) if isinstance(text, str) else None
    except SyntaxError:
        return None
    for node in getattr(tree, 'body', []):
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'model'
                                                for t in node.targets):
            try:
                backbone = (_literal(node.value) or {}).get('backbone')
            except (ValueError, TypeError, AttributeError, SyntaxError):
                return None
            ok = isinstance(backbone, dict) and str(backbone.get('type')).startswith('PIIP')
            return backbone if ok else None
    return None
