"""``MonoDriveConfig``: the config of the monolithic driving-QA head (``model_type='mono_drive_head'``).

A Llama/Qwen2-style decoder (RMSNorm, RoPE, GQA, SwiGLU; all ``LlamaConfig`` fields, so a Llama
checkpoint such as SmolLM2 loads key for key) plus the Mono-InternVL parts:

- ``image_token_id``: the ``<IMG_CONTEXT>`` id. Tokens with this id are visual: their embedding is
  replaced by a visual token and their FFN (and, with ``visual_attention_experts``, their
  attention projections) is the visual expert's. Routing is static by token type.
- the patch model of raw camera images: ``Conv2d(3, vision_hidden_size, vision_patch_size)``,
  a CLS + absolute position embedding for a ``vision_base_grid`` x ``vision_base_grid`` patch grid
  (bicubically interpolated to the actual grid), pixel shuffle by ``downsample_ratio`` and the
  ``mlp1`` projector to ``hidden_size``;
- ``adapter_in_channels``: ``{source: channels}`` of feature maps turned into visual tokens by a
  :class:`~holodrive.models.drive_qa.adapters.VisualAdapter` each (e.g. ``{'bev': 64}``);
  ``adapter_fold``: the k x k fold that adapter applies first.
"""
from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig


@strict
class MonoDriveConfig(LlamaConfig):
    model_type = 'mono_drive_head'

    image_token_id: int | None = None
    visual_attention_experts: bool = False
    vision_patch_size: int = 14
    vision_hidden_size: int = 1024
    vision_base_grid: int = 32
    downsample_ratio: float = 0.5
    adapter_in_channels: dict | None = None
    adapter_fold: int = 1

    def validate_architecture(self):
        super().validate_architecture()
        if self.image_token_id is None or not 0 <= self.image_token_id < self.vocab_size:
            raise ValueError(f'MonoDriveConfig.image_token_id={self.image_token_id} is not a token '
                             f'id of the {self.vocab_size}-token vocabulary: set it to the '
                             "tokenizer's <IMG_CONTEXT> id")
        inverse = 1 / self.downsample_ratio
        if abs(inverse - round(inverse)) > 1e-6:
            raise ValueError(f'MonoDriveConfig.downsample_ratio={self.downsample_ratio}: the pixel '
                             'shuffle needs 1 / ratio to be an integer (Mono-InternVL: 0.5)')

    @property
    def pixels_per_visual_token(self) -> int:
        """Side in pixels of the image square behind one visual token (14 / 0.5 = 28)."""
        return int(round(self.vision_patch_size / self.downsample_ratio))
