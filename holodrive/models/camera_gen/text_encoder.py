"""Caption conditioning: a transformers ``CLIPTextModel`` and its tokenizer.

- tiny: a byte-level BPE trained by ``tokenizers`` on the world's captions
  (:func:`train_caption_tokenizer`, written by ``tools/create_data.py captions``) and a small
  ``CLIPTextModel`` trained from scratch with the denoiser;
- full: both loaded from a local directory (``CLIPTextModel.from_pretrained(path,
  subfolder='text_encoder')``, ``AutoTokenizer.from_pretrained(path, subfolder='tokenizer')``).

``CaptionEncoder(captions)``: ``B`` strings -> ``(B, max_length, hidden_size)`` last hidden
states (padded to ``max_length``, as Stable Diffusion feeds its UNet).
"""
import os.path as osp
from typing import Iterable, List, Optional, Sequence

import torch
import torch.nn as nn

from holodrive.registry import MODELS
from .autoencoder import CameraGenConfigError

BOS, EOS, PAD = '<|startoftext|>', '<|endoftext|>', '<|pad|>'


def train_caption_tokenizer(texts: Iterable[str], out_dir: str, vocab_size: int = 1000,
                            model_max_length: int = 77):
    """Train a byte-level BPE on ``texts`` and save it as a transformers tokenizer directory
    (``PreTrainedTokenizerFast``; ``AutoTokenizer.from_pretrained(out_dir)`` loads it).

    Returns the tokenizer. Every encoding is ``BOS ... EOS`` (a template post-processor).
    """
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from holodrive.utils.bpe import train_byte_level_bpe
    tok = train_byte_level_bpe((t.lower() for t in texts), vocab_size, [PAD, BOS, EOS],
                               min_frequency=0)
    tok.post_processor = processors.TemplateProcessing(
        single=f'{BOS} $A {EOS}', special_tokens=[(BOS, tok.token_to_id(BOS)),
                                                    (EOS, tok.token_to_id(EOS))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   pad_token=PAD, model_max_length=model_max_length)
    fast.save_pretrained(out_dir)
    return fast


@MODELS.register_module()
class CaptionEncoder(nn.Module):
    """Tokenizer + ``CLIPTextModel`` (module docstring).

    Args:
        tokenizer: local tokenizer directory (``AutoTokenizer``).
        text_model: ``CLIPTextConfig`` keyword arguments (built from scratch; ``vocab_size``,
            ``bos/eos/pad_token_id`` default to the tokenizer's), or None with ``pretrained``.
        pretrained: local directory of a ``CLIPTextModel`` (``subfolder``: e.g.
            ``'text_encoder'``); ``tokenizer_subfolder`` likewise for the tokenizer.
        max_length: tokens per caption (padding / truncation).
        trainable: train the text model with the denoiser (False: frozen, eval mode).
    """

    def __init__(self, tokenizer: str, text_model: Optional[dict] = None,
                 pretrained: Optional[str] = None, subfolder: Optional[str] = None,
                 tokenizer_subfolder: Optional[str] = None, max_length: int = 77,
                 trainable: bool = True):
        super().__init__()
        from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel
        where = osp.join(tokenizer, tokenizer_subfolder) if tokenizer_subfolder else tokenizer
        if not osp.isdir(where):
            raise CameraGenConfigError(
                f'text_encoder.tokenizer: {where!r} is not a directory: write the tiny one with '
                '`python tools/create_data.py captions --root-path DATA_ROOT` or name a local '
                'tokenizer directory')
        kwargs = dict(subfolder=tokenizer_subfolder) if tokenizer_subfolder else {}
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True,
                                                       **kwargs)
        if pretrained:
            path = osp.join(pretrained, subfolder) if subfolder else pretrained
            if not osp.isdir(path):
                raise CameraGenConfigError(f'text_encoder.pretrained: local directory {path!r} '
                                           'does not exist')
            self.text_model = CLIPTextModel.from_pretrained(
                pretrained, local_files_only=True, **(dict(subfolder=subfolder)
                                                      if subfolder else {}))
        elif text_model is not None:
            t = self.tokenizer
            cfg = dict(vocab_size=len(t), bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id,
                       pad_token_id=t.pad_token_id, max_position_embeddings=max_length)
            cfg.update(text_model)
            self.text_model = CLIPTextModel(CLIPTextConfig(**cfg))
        else:
            raise CameraGenConfigError('text_encoder: give text_model=dict(...) (CLIPTextConfig '
                                       'arguments) or pretrained=LOCAL_DIR')
        if self.tokenizer.pad_token is None:          # CLIP's tokenizer pads with EOS
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_length = int(max_length)
        self.trainable = bool(trainable)
        if not self.trainable:
            self.text_model.requires_grad_(False)

    @property
    def hidden_size(self) -> int:
        return int(self.text_model.config.hidden_size)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.trainable:
            self.text_model.eval()
        return self

    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        """``B`` captions -> ``(B, max_length, hidden_size)``."""
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            return encode_captions(self.tokenizer, self.text_model, captions, self.max_length)


def encode_captions(tokenizer, text_model, captions: Sequence[str],
                    max_length: int) -> torch.Tensor:
    """Lower-cased captions padded / truncated to ``max_length`` tokens -> the text model's
    last hidden states ``(B, max_length, hidden_size)`` (training and sampling share this)."""
    ids = tokenizer([c.lower() for c in captions], padding='max_length', truncation=True,
                    max_length=max_length, return_tensors='pt').input_ids
    return text_model(input_ids=ids.to(text_model.device)).last_hidden_state


def caption_texts(captions: Optional[List[str]], batch_size: int) -> List[str]:
    """The batch's captions, ``''`` for a missing one."""
    if captions is None:
        return [''] * batch_size
    return [c or '' for c in captions]
