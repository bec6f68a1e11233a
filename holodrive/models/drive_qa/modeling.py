"""The monolithic driving-QA head: a Llama-style decoder with visual experts (Mono-InternVL).

Every layer has one attention and two SwiGLU FFNs, ``mlp`` (text expert) and ``mlp_vis`` (visual
expert), routed statically by token type: with m = (input_ids == image_token_id),

    h = h + Attn(RMSNorm(h));    h = h + FFN_text(RMSNorm(h)) * (1 - m) + FFN_vis(RMSNorm(h)) * m

Dispatch is sparse (each expert runs only on its own tokens), so a decode step, whose tokens are
all text, never runs the visual expert. With ``visual_attention_experts`` (Mono-InternVL v1.5) the
q/k/v/o projections are routed the same way (``*_proj_vis``); the attention itself is shared and
fully causal over the interleaved sequence, with 1-D RoPE.

Visual tokens replace the embeddings of the ``<IMG_CONTEXT>`` tokens, in order: first the camera
views of ``pixel_values (B, V, 3, H, W)`` (view-major, each view row-major), then the feature maps
of ``visual_features`` in the dict's order (one :class:`VisualAdapter` per source). Names of the
LLM part are Llama's (``model.layers.N.self_attn.q_proj``, ``mlp.gate_proj``, ``lm_head``), so a
Llama checkpoint (SmolLM2) loads directly; ``tools/convert/mono_internvl.py`` maps InternLM2-VE.
"""
from typing import Callable, Dict, Optional

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import (LlamaAttention, LlamaMLP, LlamaRMSNorm,
                                                      LlamaRotaryEmbedding, apply_rotary_pos_emb,
                                                      eager_attention_forward)

from .configuration import MonoDriveConfig
from .visual_tokens import MonoPatchEmbed, VisualAdapter, build_mlp1, pixel_shuffle

VISUAL_INPUT_KEYS = ('pixel_values', 'visual_features')


def route_tokens(x: torch.Tensor, visual_mask: Optional[torch.Tensor], text_fn: Callable,
                 visual_fn: Optional[Callable]) -> torch.Tensor:
    """Apply ``text_fn`` to text tokens and ``visual_fn`` to visual ones (sparse dispatch).

    Args:
        x: ``(B, T, C_in)``; visual_mask: ``(B, T)`` bool (True = visual) or None (all text).
    Returns ``(B, T, C_out)``.
    """
    if visual_fn is None or visual_mask is None or not bool(visual_mask.any()):
        return text_fn(x)
    flat = x.reshape(-1, x.shape[-1])
    mask = visual_mask.reshape(-1)
    vis_idx = mask.nonzero(as_tuple=True)[0]
    txt_idx = (~mask).nonzero(as_tuple=True)[0]
    vis_out = visual_fn(flat.index_select(0, vis_idx))
    out = vis_out.new_zeros(flat.shape[0], vis_out.shape[-1]).index_copy(0, vis_idx, vis_out)
    if txt_idx.numel():
        out = out.index_copy(0, txt_idx, text_fn(flat.index_select(0, txt_idx)))
    return out.reshape(*x.shape[:-1], -1)


class MonoDriveAttention(LlamaAttention):
    """Llama attention whose projections are optionally routed to visual experts."""

    def __init__(self, config: MonoDriveConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.visual_experts = config.visual_attention_experts
        if self.visual_experts:
            for name in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
                ref = getattr(self, name)
                setattr(self, name + '_vis', nn.Linear(ref.in_features, ref.out_features,
                                                       bias=ref.bias is not None))

    def _project(self, name, x, visual_mask):
        vis = getattr(self, name + '_vis') if self.visual_experts else None
        return route_tokens(x, visual_mask, getattr(self, name), vis)

    def forward(self, hidden_states, position_embeddings, attention_mask=None,
                past_key_values: Optional[Cache] = None, visual_mask=None, **kwargs):
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        query = self._project('q_proj', hidden_states, visual_mask).view(shape).transpose(1, 2)
        key = self._project('k_proj', hidden_states, visual_mask).view(shape).transpose(1, 2)
        value = self._project('v_proj', hidden_states, visual_mask).view(shape).transpose(1, 2)
        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        if past_key_values is not None:
            key, value = past_key_values.update(key, value, self.layer_idx)
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                       eager_attention_forward)
        out, weights = attend(self, query, key, value, attention_mask,
                              dropout=self.attention_dropout if self.training else 0.0,
                              scaling=self.scaling, **kwargs)
        out = out.reshape(*hidden_states.shape[:-1], -1).contiguous()
        return self._project('o_proj', out, visual_mask), weights


class MonoDriveDecoderLayer(GradientCheckpointingLayer):
    """Shared attention + RMSNorms, text and visual SwiGLU experts (module docstring)."""

    def __init__(self, config: MonoDriveConfig, layer_idx: int):
        super().__init__()
        self.self_attn = MonoDriveAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.mlp_vis = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden_states, visual_mask=None, attention_mask=None,
                position_embeddings=None, past_key_values=None, **kwargs):
        attn, _ = self.self_attn(self.input_layernorm(hidden_states), position_embeddings,
                                 attention_mask, past_key_values, visual_mask=visual_mask,
                                 **kwargs)
        hidden_states = hidden_states + attn
        normed = self.post_attention_layernorm(hidden_states)
        return hidden_states + route_tokens(normed, visual_mask, self.mlp, self.mlp_vis)


class MonoDrivePreTrainedModel(PreTrainedModel):
    config_class = MonoDriveConfig
    config: MonoDriveConfig
    base_model_prefix = 'model'
    supports_gradient_checkpointing = True
    _no_split_modules = ['MonoDriveDecoderLayer']
    _skip_keys_device_placement = ['past_key_values']
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, VisualAdapter):
            init.normal_(module.position_embedding, mean=0.0, std=std)
        elif hasattr(module, 'class_embedding') and hasattr(module, 'position_embedding'):
            init.normal_(module.class_embedding, mean=0.0, std=std)
            init.normal_(module.position_embedding, mean=0.0, std=std)


class MonoDriveModel(MonoDrivePreTrainedModel):
    """The decoder: token embeddings, layers, final norm (Llama's names)."""

    def __init__(self, config: MonoDriveConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size,
                                         config.pad_token_id)
        self.layers = nn.ModuleList(MonoDriveDecoderLayer(config, i)
                                    for i in range(config.num_hidden_layers))
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(self, inputs_embeds: torch.Tensor, visual_mask: Optional[torch.Tensor] = None,
                attention_mask=None, position_ids=None, past_key_values=None,
                use_cache: Optional[bool] = None, **kwargs) -> BaseModelOutputWithPast:
        """``inputs_embeds (B, T, D)``, ``visual_mask (B, T)`` -> ``last_hidden_state (B, T, D)``."""
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)
        if position_ids is None:
            seen = past_key_values.get_seq_length() if past_key_values is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)
            position_ids = (position_ids + seen).unsqueeze(0)
        mask = create_causal_mask(config=self.config, inputs_embeds=inputs_embeds,
                                  attention_mask=attention_mask, past_key_values=past_key_values,
                                  position_ids=position_ids)
        hidden = inputs_embeds
        rope = self.rotary_emb(hidden, position_ids=position_ids)
        for layer in self.layers:
            hidden = layer(hidden, visual_mask=visual_mask, attention_mask=mask,
                           position_embeddings=rope, past_key_values=past_key_values, **kwargs)
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden),
                                       past_key_values=past_key_values if use_cache else None)


class MonoDriveForCausalLM(MonoDrivePreTrainedModel, GenerationMixin):
    """Decoder + LM head + the visual-token producers (patch model, ``mlp1``, adapters)."""

    _tied_weights_keys = {'lm_head.weight': 'model.embed_tokens.weight'}

    def __init__(self, config: MonoDriveConfig):
        super().__init__(config)
        self.model = MonoDriveModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.vision_model = MonoPatchEmbed(config.vision_hidden_size, config.vision_patch_size,
                                           config.vision_base_grid)
        self.mlp1 = build_mlp1(config.vision_hidden_size, config.downsample_ratio,
                               config.hidden_size)
        self.adapters = nn.ModuleDict({
            name: VisualAdapter(channels, config.hidden_size, fold=config.adapter_fold)
            for name, channels in (config.adapter_in_channels or {}).items()})
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    # ---------------------------------------------------------------- visual tokens
    def camera_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, V, 3, H, W)`` normalised images -> ``(B, V * H/28 * W/28, D)`` visual tokens."""
        if pixel_values.dim() == 4:
            pixel_values = pixel_values.unsqueeze(1)
        b, v, c, h, w = pixel_values.shape
        side = self.config.pixels_per_visual_token
        if c != 3 or h % side or w % side:
            raise ValueError(f'pixel_values of shape {tuple(pixel_values.shape)}: expected '
                             f'(B, V, 3, H, W) with H and W multiples of {side} (resize the '
                             'camera images, e.g. the config\'s image_size)')
        grid = self.vision_model(pixel_values.flatten(0, 1))            # (B*V, H/p, W/p, C)
        tokens = pixel_shuffle(grid, self.config.downsample_ratio).flatten(1, 2)
        return self.mlp1(tokens).reshape(b, -1, self.config.hidden_size)

    def visual_tokens(self, pixel_values=None, visual_features: Optional[Dict] = None):
        """All visual tokens of a batch in prompt order (module docstring): ``(B, N, D)``."""
        parts = []
        if pixel_values is not None:
            parts.append(self.camera_tokens(pixel_values))
        for name, features in (visual_features or {}).items():
            if name not in self.adapters:
                raise ValueError(f'visual_features[{name!r}]: no adapter for this source; the '
                                 f'config has adapter_in_channels={self.config.adapter_in_channels}')
            parts.append(self.adapters[name](features))
        return torch.cat(parts, dim=1) if parts else None

    def embed(self, input_ids: torch.Tensor, pixel_values=None, visual_features=None):
        """Token embeddings with the ``<IMG_CONTEXT>`` slots filled: ``(B, T, D)``, mask ``(B, T)``."""
        embeds = self.model.embed_tokens(input_ids)
        visual_mask = input_ids == self.config.image_token_id
        visual = self.visual_tokens(pixel_values, visual_features)
        slots = visual_mask.sum(dim=1)
        if visual is None:
            if bool(slots.any()):
                raise ValueError(f'the prompt has {int(slots.max())} <IMG_CONTEXT> tokens but no '
                                 'pixel_values / visual_features were given')
            return embeds, None
        if bool((slots != visual.shape[1]).any()):
            raise ValueError(f'the prompt has {slots.tolist()} <IMG_CONTEXT> tokens per sample but '
                             f'the visual inputs make {visual.shape[1]}: build the prompt with '
                             'DriveQAProcessor for the same image size / feature maps')
        embeds = embeds.masked_scatter(visual_mask.unsqueeze(-1),
                                       visual.to(embeds.dtype).reshape(-1, embeds.shape[-1]))
        return embeds, visual_mask

    # ---------------------------------------------------------------- forward / generation
    def forward(self, input_ids=None, pixel_values=None, visual_features=None,
                attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0,
                visual_mask=None, **kwargs) -> CausalLMOutputWithPast:
        """Args as Llama's plus ``pixel_values (B, V, 3, H, W)`` and ``visual_features``
        (``{source: (B, C, H, W) or [levels]}``); ``labels (B, T)`` with -100 for unscored
        positions. Returns logits ``(B, T, vocab)`` (the last ``logits_to_keep`` if > 0)."""
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError('MonoDriveForCausalLM: give input_ids (or inputs_embeds)')
            inputs_embeds, visual_mask = self.embed(input_ids, pixel_values, visual_features)
        out = self.model(inputs_embeds, visual_mask=visual_mask, attention_mask=attention_mask,
                         position_ids=position_ids, past_key_values=past_key_values,
                         use_cache=use_cache, **kwargs)
        hidden = out.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels,
                                      vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits,
                                      past_key_values=out.past_key_values)

    def answer_loss(self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask=None,
                    pixel_values=None, visual_features=None) -> torch.Tensor:
        """Mean cross-entropy of the labelled tokens (``labels (B, T)`` != -100) given the
        tokens before them: ``forward(labels=labels).loss``, but the LM head runs only at the
        ``N`` positions that predict a labelled token (``(N, vocab)`` logits, not ``(B, T,
        vocab)``). With short answers and a large vocabulary the full head is costly: SmolLM2's
        (800 x 576) @ (576 x 49163) product alone took 2.2 s of an 8.4 s step of 8 questions
        (docs/drive_qa.md)."""
        embeds, visual_mask = self.embed(input_ids, pixel_values, visual_features)
        hidden = self.model(embeds, visual_mask=visual_mask, attention_mask=attention_mask,
                            use_cache=False).last_hidden_state
        targets = labels[:, 1:].to(hidden.device)
        keep = targets != -100
        logits = self.lm_head(hidden[:, :-1][keep])
        return nn.functional.cross_entropy(logits.float(), targets[keep])

    def prepare_inputs_for_generation(self, input_ids, *args, is_first_iteration=False,
                                      **kwargs):
        """Visual inputs go in at prefill only; later steps read them from the KV cache."""
        visual = {k: kwargs.pop(k, None) for k in VISUAL_INPUT_KEYS}
        inputs = super().prepare_inputs_for_generation(
            input_ids, *args, is_first_iteration=is_first_iteration, **kwargs)
        if is_first_iteration or not kwargs.get('use_cache', True):
            inputs.update({k: v for k, v in visual.items() if v is not None})
        return inputs

    @torch.no_grad()
    def copy_text_experts_to_visual(self) -> None:
        """Initialise every visual expert from its text counterpart (Mono-InternVL's init)."""
        for layer in self.model.layers:
            layer.mlp_vis.load_state_dict(layer.mlp.state_dict())
            attn = layer.self_attn
            if attn.visual_experts:
                for name in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
                    getattr(attn, name + '_vis').load_state_dict(getattr(attn, name).state_dict())


AutoConfig.register(MonoDriveConfig.model_type, MonoDriveConfig, exist_ok=True)
AutoModelForCausalLM.register(MonoDriveConfig, MonoDriveForCausalLM, exist_ok=True)
