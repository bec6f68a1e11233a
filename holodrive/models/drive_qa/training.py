"""Training stages of the driving-QA head: which parameters learn (by name substrings).

Mono-InternVL's delta tuning (``mllm.md`` §2, §7): the LLM stays frozen while the visual parts
learn, then attention joins, then everything (or LoRA):

========================  ===================================================================
stage                     trainable parameters
========================  ===================================================================
``language``              the LLM (embeddings, attention, text FFNs, norms, head): text only
``visual``                patch model, ``mlp1``, adapters, visual FFN experts
``alignment``             ``visual`` + visual attention experts (or the shared attention)
``instruction``           everything
``instruction_lora``      LoRA matrices of the decoder (``model.lora``, :mod:`.lora`) + patch
                          model, ``mlp1`` and adapters; the decoder's own weights stay frozen
========================  ===================================================================
"""
from typing import Iterable, List

from torch import nn

VISUAL_PARTS = ('vision_model.', 'mlp1.', 'adapters.', '.mlp_vis.')
STAGE_TRAINABLE = {
    'language': ('model.embed_tokens.', '.self_attn.q_proj.', '.self_attn.k_proj.',
                 '.self_attn.v_proj.', '.self_attn.o_proj.', '.mlp.', 'layernorm.',
                 'model.norm.', 'lm_head.'),
    'visual': VISUAL_PARTS,
    'instruction': ('',),
    'instruction_lora': ('.lora_A.', '.lora_B.', 'vision_model.', 'mlp1.', 'adapters.'),
}


def set_trainable(model: nn.Module, patterns: Iterable[str]) -> List[str]:
    """``requires_grad`` = the parameter's name contains one of ``patterns`` (a leading ``.``
    matches inside a name, e.g. ``'.mlp_vis.'``; names are matched with a leading ``.`` added).
    Returns the trainable names; an empty result is an error (a typo in the patterns)."""
    patterns = tuple(patterns)
    names = []
    for name, param in model.named_parameters():
        hit = any(p in '.' + name for p in patterns)
        param.requires_grad_(hit)
        if hit:
            names.append(name)
    if not names:
        raise ValueError(f'trainable patterns {list(patterns)} match no parameter of '
                         f'{type(model).__name__} (names look like '
                         f'{next(iter(dict(model.named_parameters())))!r})')
    return names


def stage_patterns(stage: str, visual_attention_experts: bool = False) -> tuple:
    """The name patterns of a stage (``alignment`` trains the attention experts when the model
    has them, else the shared attention)."""
    if stage not in STAGE_TRAINABLE:
        raise ValueError(f'unknown training stage {stage!r}: one of {sorted(STAGE_TRAINABLE)}')
    if stage == 'alignment':
        return VISUAL_PARTS + (('_proj_vis.',) if visual_attention_experts else ('.self_attn.',))
    return STAGE_TRAINABLE[stage]
