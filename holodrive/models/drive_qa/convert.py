"""Official Mono-InternVL checkpoints -> :class:`MonoDriveForCausalLM` state dicts.

Key map (``InternVLChatModel`` with ``InternLM2VEForCausalLM``, Mono-InternVL v1):

==========================================================  ==============================================
official                                                    ours
==========================================================  ==============================================
``vision_model.embeddings.{class,patch,position}_embedding``  same
``mlp1.{0,1,3}.*``                                           same
``language_model.model.tok_embeddings.weight``               ``model.embed_tokens.weight``
``language_model.model.layers.N.attention.wqkv.weight``      ``model.layers.N.self_attn.{q,k,v}_proj.weight``
``language_model.model.layers.N.attention.wo.weight``        ``model.layers.N.self_attn.o_proj.weight``
``...layers.N.feed_forward.{w1,w3,w2}.weight``               ``...layers.N.mlp.{gate,up,down}_proj.weight``
``...layers.N.feed_forward_ve.{w1,w3,w2}.weight``            ``...layers.N.mlp_vis.{gate,up,down}_proj.weight``
``...layers.N.attention_norm`` / ``ffn_norm``                ``input_layernorm`` / ``post_attention_layernorm``
``language_model.model.norm.weight``                         ``model.norm.weight``
``language_model.output.weight``                             ``lm_head.weight``
==========================================================  ==============================================

InternLM2 fuses q, k, v per key-value head: ``wqkv`` rows are ``(kv_heads, groups + 2,
head_dim)`` with the ``groups = heads / kv_heads`` query heads first, then k, then v.
"""
import re
from typing import Dict, List, Tuple

import torch

LAYER = re.compile(r'^language_model\.model\.layers\.(\d+)\.(.+)$')
LAYER_MAP = {
    'attention.wo.weight': 'self_attn.o_proj.weight',
    'attention_norm.weight': 'input_layernorm.weight',
    'ffn_norm.weight': 'post_attention_layernorm.weight',
    'feed_forward.w1.weight': 'mlp.gate_proj.weight',
    'feed_forward.w3.weight': 'mlp.up_proj.weight',
    'feed_forward.w2.weight': 'mlp.down_proj.weight',
    'feed_forward_ve.w1.weight': 'mlp_vis.gate_proj.weight',
    'feed_forward_ve.w3.weight': 'mlp_vis.up_proj.weight',
    'feed_forward_ve.w2.weight': 'mlp_vis.down_proj.weight',
}
TOP_MAP = {
    'language_model.model.tok_embeddings.weight': 'model.embed_tokens.weight',
    'language_model.model.norm.weight': 'model.norm.weight',
    'language_model.output.weight': 'lm_head.weight',
}


def split_wqkv(wqkv: torch.Tensor, num_heads: int, num_kv_heads: int,
               head_dim: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """InternLM2's fused ``(kv*(g+2)*d, C)`` weight -> q ``(h*d, C)``, k, v ``(kv*d, C)``."""
    groups = num_heads // num_kv_heads
    w = wqkv.reshape(num_kv_heads, groups + 2, head_dim, wqkv.shape[-1])
    q = w[:, :groups].reshape(num_heads * head_dim, -1)
    return q, w[:, -2].reshape(num_kv_heads * head_dim, -1), w[:, -1].reshape(
        num_kv_heads * head_dim, -1)


def convert_mono_internvl(state: Dict[str, torch.Tensor], num_heads: int, num_kv_heads: int,
                          head_dim: int) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Our state dict from an official one; returns ``(converted, unmatched official keys)``."""
    out, unmatched = {}, []
    for key, value in state.items():
        if key.startswith(('vision_model.embeddings.', 'mlp1.')):
            out[key] = value
        elif key in TOP_MAP:
            out[TOP_MAP[key]] = value
        elif (m := LAYER.match(key)) is not None:
            idx, rest = m.groups()
            prefix = f'model.layers.{idx}.'
            if rest == 'attention.wqkv.weight':
                q, k, v = split_wqkv(value, num_heads, num_kv_heads, head_dim)
                out[prefix + 'self_attn.q_proj.weight'] = q
                out[prefix + 'self_attn.k_proj.weight'] = k
                out[prefix + 'self_attn.v_proj.weight'] = v
            elif rest in LAYER_MAP:
                out[prefix + LAYER_MAP[rest]] = value
            else:
                unmatched.append(key)
        else:
            unmatched.append(key)
    return out, unmatched


def config_from_official(official: dict) -> dict:
    """``MonoDriveConfig`` keyword arguments from an official ``config.json``
    (``llm_config``: InternLM2; ``vision_config``; ``downsample_ratio``)."""
    llm, vision = official['llm_config'], official.get('vision_config', {})
    rope = llm.get('rope_theta', 10000.0)
    return dict(
        vocab_size=llm['vocab_size'], hidden_size=llm['hidden_size'],
        intermediate_size=llm['intermediate_size'],
        num_hidden_layers=llm['num_hidden_layers'],
        num_attention_heads=llm['num_attention_heads'],
        num_key_value_heads=llm.get('num_key_value_heads', llm['num_attention_heads']),
        max_position_embeddings=llm.get('max_position_embeddings', 32768),
        rms_norm_eps=llm.get('rms_norm_eps', 1e-6),
        rope_parameters=dict(rope_type='default', rope_theta=float(rope)),
        tie_word_embeddings=bool(llm.get('tie_word_embeddings', False)),
        attention_bias=bool(llm.get('bias', False)),
        vision_hidden_size=vision.get('hidden_size', 1024),
        vision_patch_size=vision.get('patch_size', 14),
        vision_base_grid=vision.get('image_size', 448) // vision.get('patch_size', 14),
        downsample_ratio=float(official.get('downsample_ratio', 0.5)))
