"""The official PIIP detection backbone forward, restated with torch functions (test reference).

Restates ``mmdetection/mmdet/models/backbones/piip_{2,3,4}branch.py`` (input pyramid, merges,
simple / DINO / regular FPN outputs), ``deit.py`` (``vit_models``), ``internvit_6b.py``,
``piip_modules.py`` (bidirectional units, injectors, ConvFFN) and
``ops/deformable_attention/modules/ms_deform_attn.py`` of OpenGVLab/PIIP, reading official-named
tensors and the official keyword arguments directly; written independently of
``piip_det.models`` so that a conversion is checked against the official math.
"""
import math

import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

NUM_BRANCHES = {'PIIPTwoBranch': 2, 'PIIPThreeBranch': 3, 'PIIPFourBranch': 4}


def official_forward(sd, kw, x):
    """The official PIIP forward on official tensors -> (outputs, names used).

    Flash-attention semantics for windowed blocks (tokens zero-padded before qkv; every
    released config sets use_flash_attn=True), fp32 throughout.
    """
    sd = {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
    used = set()

    def p(name):
        used.add(name)
        return sd[name]

    def linear(t, name):
        return F.linear(t, p(name + '.weight'), p(name + '.bias') if name + '.bias' in sd else None)

    def norm(t, name, kind):
        if kind == 'none':
            return t
        if kind == 'RMSNorm':
            return p(name + '.weight') * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6))
        return F.layer_norm(t, t.shape[-1:], p(name + '.weight'), p(name + '.bias'), 1e-6)

    def gn(t, name):
        return F.group_norm(t, 32, p(name + '.weight'), p(name + '.bias'))

    n = NUM_BRANCHES[kw['type']]
    bs = [dict(kw[f'branch{j}']) for j in range(1, n + 1)]
    if n == 4:                   # vit_models(**branch3) for branch4
        bs[3] = {**bs[2], 'real_size': bs[3]['real_size'],
                 'interaction_indexes': bs[3]['interaction_indexes']}
    deit_type = [n == 4 or 'deit' in b['pretrained'] for b in bs]
    norms = ['LayerNorm' if d else b['norm_layer_type'] for d, b in zip(deit_type, bs)]

    def attention(t, hw, pre, b, window, qk):
        (h, w), (bsz, _, c) = hw, t.shape
        if window > 0:
            hp, wp = math.ceil(h / window) * window, math.ceil(w / window) * window
            t = F.pad(t.view(bsz, h, w, c), [0, 0, 0, wp - w, 0, hp - h])
            t = t.view(bsz, hp // window, window, wp // window, window, c).permute(0, 1, 3, 2, 4, 5)
            t = t.reshape(-1, window * window, c)
        nb, nt, heads = t.shape[0], t.shape[1], b['num_heads']
        q, k, v = linear(t, pre + 'qkv').view(nb, nt, 3, heads, -1).permute(2, 0, 3, 1, 4)
        if qk:
            q, k = (norm(t.transpose(1, 2).flatten(-2), pre + name, qk).view(nb, nt, heads, -1)
                    .transpose(1, 2) for t, name in ((q, 'q_norm'), (k, 'k_norm')))
        attn = ((q * (c // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        t = (attn @ v).transpose(1, 2).reshape(nb, nt, c)
        if window > 0:
            t = t.view(bsz, hp // window, wp // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
            t = t.reshape(bsz, hp, wp, c)[:, :h, :w].reshape(bsz, h * w, c)
        return linear(t, pre + 'proj')

    def run_block(j, i, t, hw):
        b, pre, kind = bs[j], f'branch{j + 1}.blocks.{i}.', norms[j]
        per_block = [v if isinstance(v, list) else [v] * b['depth']
                     for v in (b.get('window_attn', False), b.get('window_size', 14))]
        window = per_block[1][i] if per_block[0][i] else 0
        qk = kind if not deit_type[j] and b['qk_normalization'] else None
        if deit_type[j]:
            g1, g2 = p(pre + 'gamma_1'), p(pre + 'gamma_2')
        else:
            g1, g2 = (p(pre + 'ls1.gamma'), p(pre + 'ls2.gamma')) if b['init_values'] else (1, 1)
        t = t + g1 * attention(norm(t, pre + 'norm1', kind), hw, pre + 'attn.', b, window, qk)
        return t + g2 * linear(F.gelu(linear(norm(t, pre + 'norm2', kind), pre + 'mlp.fc1')),
                               pre + 'mlp.fc2')

    heads, points = kw['deform_num_heads'], kw['n_points']
    nk = 'none' if kw.get('norm_layer') == 'none' else 'LayerNorm'

    def injector(query, feat, q_hw, kv_hw, pre):
        bsz, nq, c = query.shape
        qn, fn = norm(query, pre + 'query_norm', nk), norm(feat, pre + 'feat_norm', nk)
        value = linear(fn, pre + 'attn.value_proj').view(bsz, feat.shape[1], heads, -1)
        off = linear(qn, pre + 'attn.sampling_offsets').view(bsz, nq, heads, 1, points, 2)
        aw = linear(qn, pre + 'attn.attention_weights').view(bsz, nq, heads, points).softmax(-1)
        ys, xs = torch.meshgrid(torch.linspace(0.5, q_hw[0] - 0.5, q_hw[0]),
                                torch.linspace(0.5, q_hw[1] - 0.5, q_hw[1]), indexing='ij')
        ref = torch.stack([xs.reshape(-1) / q_hw[1], ys.reshape(-1) / q_hw[0]], -1)[None, :, None]
        shapes = torch.tensor([kv_hw])
        loc = ref[:, :, None, :, None, :] + off / shapes.flip(-1)[None, None, None, :, None, :]
        aw = aw.view(bsz, nq, heads, 1, points)
        out = multi_scale_deformable_attn_pytorch(value, shapes, loc, aw)
        query = query + p(pre + 'ca_gamma') * linear(out, pre + 'attn.output_proj')
        h = linear(norm(query, pre + 'ffn_norm', nk), pre + 'ffn.fc1')
        h = h.transpose(1, 2).reshape(bsz, -1, *q_hw)
        h = F.conv2d(h, p(pre + 'ffn.dwconv.dwconv.weight'), p(pre + 'ffn.dwconv.dwconv.bias'),
                     padding=1, groups=h.shape[1]).flatten(2).transpose(1, 2)
        return query + p(pre + 'cffn_gamma') * linear(F.gelu(h), pre + 'ffn.fc2')

    regular = not kw.get('with_simple_fpn', True) and not kw.get('is_dino')

    def merge(feats, hws, mod, wname):
        out = 0
        for j, (t, hw) in enumerate(zip(feats, hws)):
            m = t.transpose(1, 2).reshape(t.shape[0], -1, *hw)
            if regular and j == 0:
                m = F.relu(gn(m, f'{mod}{j + 1}.0'))
            else:
                for conv in (0,) if regular else (0, 3):   # conv3x3 (no bias), GN, ReLU
                    m = F.conv2d(m, p(f'{mod}{j + 1}.{conv}.weight'), padding=1)
                    m = F.relu(gn(m, f'{mod}{j + 1}.{conv + 1}'))
            if j < n - 1:
                m = F.interpolate(m, size=hws[-1], mode='bilinear', align_corners=False)
            out = out + m * p(f'{wname}{j + 1}')
        return out

    feats, hws = [], []
    for j, b in enumerate(bs):
        scale = b['real_size'] / bs[-1]['real_size']
        img = x if scale >= 1 else F.interpolate(x, scale_factor=scale, mode='bilinear',
                                                 align_corners=False)
        y = F.conv2d(img, p(f'branch{j + 1}.patch_embed.proj.weight'),
                     p(f'branch{j + 1}.patch_embed.proj.bias'), stride=b['patch_size'])
        g = b['pretrain_img_size'] // b['patch_size']
        pos = p(f'branch{j + 1}.pos_embed')[:, 0 if deit_type[j] else 1:]
        pos = F.interpolate(pos.reshape(1, g, g, -1).permute(0, 3, 1, 2), size=y.shape[-2:],
                            mode='bicubic', align_corners=False)
        feats.append((y + pos).flatten(2).transpose(1, 2))
        hws.append(tuple(y.shape[-2:]))
    outs = []
    for s in range(len(bs[0]['interaction_indexes'])):
        for j, b in enumerate(bs):
            start, end = b['interaction_indexes'][s]
            for i in range(start, end + 1):
                feats[j] = run_block(j, i, feats[j], hws[j])
        for a in reversed(range(n - 1)):
            pre = f'interactions.{s}.interaction_units_{a + 1}{a + 2}.'
            proj = kw.get('interaction_proj', True)
            to_a = linear(feats[a + 1], pre + 'branch2to1_proj') if proj else feats[a + 1]
            to_b = linear(feats[a], pre + 'branch1to2_proj') if proj else feats[a]
            feats[a] = injector(feats[a], to_a, hws[a], hws[a + 1], pre + 'branch2to1_injector.')
            feats[a + 1] = injector(feats[a + 1], to_b, hws[a + 1], hws[a],
                                    pre + 'branch1to2_injector.')
        if regular and s in kw['out_interaction_indexes']:
            name = f'intermediate_merging_{s}_'
            outs.append(merge(feats, hws, name + 'branch', name + 'w'))
    out = merge(feats, hws, 'merge_branch', 'w')

    def fpn1(t):
        t = F.conv_transpose2d(t, p('fpn1.0.weight'), p('fpn1.0.bias'), stride=2)
        t = F.gelu(gn(t, 'fpn1.1'))
        return F.conv_transpose2d(t, p('fpn1.3.weight'), p('fpn1.3.bias'), stride=2)

    def fpn2(t):
        return F.conv_transpose2d(t, p('fpn2.0.weight'), p('fpn2.0.bias'), stride=2)

    if kw.get('is_dino'):
        return [fpn2(out), out, F.max_pool2d(out, 2)], used
    srcs = outs + [out] if regular else [out] * 4
    return [fpn1(srcs[0]), fpn2(srcs[1]), srcs[2], F.max_pool2d(srcs[3], 2)], used
