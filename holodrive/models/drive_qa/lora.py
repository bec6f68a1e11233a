"""LoRA on the driving-QA head's decoder through ``peft`` (the instruction stage's "or LoRA").

``add_lora`` wraps :class:`MonoDriveForCausalLM` in peft's ``PeftModelForCausalLM`` with a
``LoraConfig``: every targeted ``nn.Linear`` ``W (out, in)`` becomes ``W x + (alpha / r) B A x``
with ``A (r, in)`` Kaiming-initialised and ``B (out, r)`` zero, so the wrapped model starts equal
to the base one. The default targets are the attention projections and the SwiGLU projections
of both FFN experts (``mlp`` and ``mlp_vis`` share the names ``gate_proj`` / ``up_proj`` /
``down_proj``); add ``q_proj_vis`` ... for the visual attention experts.

Parameter names change under peft (``model.layers.0.self_attn.q_proj.weight`` becomes
``base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight``);
:func:`map_plain_keys` renames a checkpoint written without LoRA (the visual stage's) so that
``load_from`` fills the base weights. ``merged_copy`` folds ``B A`` into ``W`` and returns a plain
``MonoDriveForCausalLM`` (what ``save_pretrained`` writes).
"""
import copy
from typing import Dict, Iterable

from torch import nn

from holodrive.engine.config_check import ConfigError

DEFAULT_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')
LORA_PARAMS = ('.lora_A.', '.lora_B.')


def add_lora(llm: nn.Module, lora: dict) -> nn.Module:
    """``peft.get_peft_model(llm, LoraConfig(task_type='CAUSAL_LM', **lora))`` with the default
    targets and ``r=8, lora_alpha=16, lora_dropout=0``; a wrong key is a one-line ConfigError."""
    from peft import LoraConfig, get_peft_model
    kwargs = dict(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=list(DEFAULT_TARGETS))
    kwargs.update(lora)
    try:
        config = LoraConfig(task_type='CAUSAL_LM', **kwargs)
    except TypeError as err:
        raise ConfigError(f'model.lora={dict(lora)}: {err} (keys are peft.LoraConfig '
                          'arguments: r, lora_alpha, lora_dropout, target_modules, ...)') from None
    try:
        return get_peft_model(llm, config)
    except ValueError as err:
        raise ConfigError(f'model.lora.target_modules={kwargs["target_modules"]}: '
                          f'{str(err).splitlines()[0]}') from None


def map_plain_keys(state_dict: Dict, own_keys: Iterable[str], prefix: str) -> int:
    """Rename, in place, the keys under ``prefix`` of a checkpoint written without LoRA to the
    wrapped model's names (``prefix + 'base_model.model.' + rest``, with ``base_layer.``
    before the last part for a wrapped linear). Returns how many keys were renamed."""
    own = set(own_keys)
    renamed = 0
    for key in [k for k in state_dict if k.startswith(prefix) and k not in own]:
        rest = key[len(prefix):]
        wrapped = prefix + 'base_model.model.' + rest
        module, _, leaf = wrapped.rpartition('.')
        for candidate in (wrapped, f'{module}.base_layer.{leaf}'):
            if candidate in own:
                state_dict[candidate] = state_dict.pop(key)
                renamed += 1
                break
    return renamed


def merged_copy(peft_model: nn.Module) -> nn.Module:
    """A plain copy of the base model with every LoRA update folded into its weights."""
    return copy.deepcopy(peft_model).merge_and_unload()
