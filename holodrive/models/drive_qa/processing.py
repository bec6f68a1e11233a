"""Tokenizer and prompt building of the driving-QA head.

Special tokens (``DRIVE_QA_SPECIAL_TOKENS``): ChatML turns (``<|im_start|>``, ``<|im_end|>``), an
image span ``<img> <IMG_CONTEXT> x n </img>``, one tag per camera (``<CAM_FRONT>`` ...) and per
feature source (``<BEV>``, ``<PIIP>``). A visual prompt for six views reads

    <CAM_FRONT><img><IMG_CONTEXT>...<IMG_CONTEXT></img> ... <CAM_BACK_RIGHT><img>...</img>

followed by the question, inside the tokenizer's chat template (ChatML; SmolLM2's own template
for SmolLM2). Training labels score the answer and its ``<|im_end|>`` only.

- :func:`train_drive_tokenizer`: byte-level BPE (digits split) on our corpus, with the specials;
- :func:`add_drive_tokens`: add the missing specials to any tokenizer (e.g. SmolLM2's);
- :func:`load_drive_tokenizer`: a local tokenizer directory, checked for the specials.
"""
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

import torch

from holodrive.datasets.constants import CAMERA_NAMES
from holodrive.engine.config_check import ConfigError

PAD, EOS, IM_START, IM_END = '<|pad|>', '<|endoftext|>', '<|im_start|>', '<|im_end|>'
IMG_START, IMG_END, IMG_CONTEXT = '<img>', '</img>', '<IMG_CONTEXT>'
SOURCE_TAGS = {'bev': '<BEV>', 'piip': '<PIIP>'}
CAMERA_TAGS = {name: f'<{name}>' for name in CAMERA_NAMES}
DRIVE_QA_SPECIAL_TOKENS = ([PAD, EOS, IM_START, IM_END, IMG_START, IMG_END, IMG_CONTEXT]
                           + list(CAMERA_TAGS.values()) + list(SOURCE_TAGS.values()))
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


class DriveQATokenizerError(ConfigError, ValueError):
    """A tokenizer directory is missing or lacks the driving-QA special tokens."""


def train_drive_tokenizer(texts: Iterable[str], out_dir: str, vocab_size: int = 4096,
                          model_max_length: int = 2048):
    """Byte-level BPE with the driving-QA specials, saved as a transformers tokenizer directory
    (``AutoTokenizer.from_pretrained(out_dir)``) with a ChatML chat template. Returns it."""
    from transformers import PreTrainedTokenizerFast

    from holodrive.utils.bpe import train_byte_level_bpe
    tok = train_byte_level_bpe(texts, vocab_size, DRIVE_QA_SPECIAL_TOKENS, split_digits=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD,
                                   model_max_length=model_max_length)
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(out_dir)
    return fast


def add_drive_tokens(tokenizer) -> int:
    """Add the driving-QA specials ``tokenizer`` lacks (a pad token too if it has none); returns
    how many were added (resize the model's embeddings by as many)."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in DRIVE_QA_SPECIAL_TOKENS[2:] if t not in vocab]
    added = tokenizer.add_special_tokens({'extra_special_tokens': missing},
                                         replace_extra_special_tokens=False) if missing else 0
    if tokenizer.pad_token is None:
        added += tokenizer.add_special_tokens({'pad_token': PAD})
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE
    return added


def load_drive_tokenizer(path: str):
    """A local tokenizer directory with every driving-QA special token (one-line errors)."""
    from transformers import AutoTokenizer
    if not osp.isdir(path):
        raise DriveQATokenizerError(f'{path}: tokenizer directory not found (train one with '
                                    '`python tools/create_data.py drive_qa` or give a local '
                                    'HF tokenizer directory)')
    tokenizer = AutoTokenizer.from_pretrained(path)
    vocab = tokenizer.get_vocab()
    missing = [t for t in DRIVE_QA_SPECIAL_TOKENS[2:] if t not in vocab]
    if missing:
        raise DriveQATokenizerError(
            f'{path}: the tokenizer lacks {", ".join(missing)}: extend it with '
            'holodrive.models.drive_qa.add_drive_tokens and save it (and resize the model)')
    if tokenizer.pad_token is None:
        raise DriveQATokenizerError(f'{path}: the tokenizer has no pad token: add_drive_tokens '
                                    'adds <|pad|>')
    return tokenizer


class DriveQAProcessor:
    """Prompts and batches for :class:`MonoDriveForCausalLM`.

    Args:
        tokenizer: a tokenizer with the driving-QA specials (:func:`load_drive_tokenizer`).
        tokens_per_view: visual tokens of one camera image (``(H/28) * (W/28)``).
        cameras: the camera order of ``pixel_values`` (default: the data path's six).
        sources: ``{source: tokens}`` of feature-map inputs, in ``visual_features`` order.
        system: an optional system message.
    """

    def __init__(self, tokenizer, tokens_per_view: int = 0,
                 cameras: Sequence[str] = CAMERA_NAMES, sources: Optional[Dict[str, int]] = None,
                 system: Optional[str] = None):
        self.tokenizer = tokenizer
        self.tokens_per_view = tokens_per_view
        self.cameras = list(cameras) if tokens_per_view else []
        self.sources = dict(sources or {})
        self.system = system
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
        self.end_id = tokenizer.convert_tokens_to_ids(IM_END)

    def visual_prompt(self) -> str:
        spans = [CAMERA_TAGS[cam] + IMG_START + IMG_CONTEXT * self.tokens_per_view + IMG_END
                 for cam in self.cameras]
        spans += [SOURCE_TAGS.get(name, f'<{name.upper()}>') + IMG_START + IMG_CONTEXT * n
                  + IMG_END for name, n in self.sources.items()]
        return ''.join(spans)

    def prompt(self, question: str, visual: bool = True) -> str:
        """The chat-formatted prompt up to the assistant's turn."""
        content = (self.visual_prompt() + '\n' if visual and (self.cameras or self.sources)
                   else '') + question
        messages = ([{'role': 'system', 'content': self.system}] if self.system else [])
        messages.append({'role': 'user', 'content': content})
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)

    def encode(self, question: str, answer: Optional[str] = None, visual: bool = True):
        """``(input_ids, labels)`` lists; labels are -100 except on the answer + ``<|im_end|>``."""
        prompt_ids = self.tokenizer(self.prompt(question, visual), add_special_tokens=False,
                                    return_attention_mask=False)['input_ids']
        if answer is None:
            return prompt_ids, [-100] * len(prompt_ids)
        answer_ids = self.tokenizer(answer, add_special_tokens=False,
                                    return_attention_mask=False)['input_ids'] + [self.end_id]
        return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids

    def collate(self, questions: List[str], answers: Optional[List[str]] = None,
                visual: bool = True) -> Dict[str, torch.Tensor]:
        """Left-padded batch: ``input_ids``, ``attention_mask`` and (with answers) ``labels``,
        each ``(B, T)``. Left padding keeps every prompt's end at the last position, which is
        where generation continues (RoPE is relative, so the offset changes nothing)."""
        answers = answers if answers is not None else [None] * len(questions)
        rows = [self.encode(q, a, visual) for q, a in zip(questions, answers)]
        length = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), length), pad, dtype=torch.long)
        labels = torch.full((len(rows), length), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, (row_ids, row_labels) in enumerate(rows):
            ids[i, length - len(row_ids):] = torch.tensor(row_ids)
            labels[i, length - len(row_ids):] = torch.tensor(row_labels)
            mask[i, length - len(row_ids):] = 1
        batch = dict(input_ids=ids, attention_mask=mask)
        if any(a is not None for a in answers):
            batch['labels'] = labels
        return batch

    def decode_answers(self, generated: torch.Tensor, prompt_length: int) -> List[str]:
        """Text of the tokens after the prompt, up to ``<|im_end|>``, stripped."""
        out = []
        for row in generated[:, prompt_length:].tolist():
            if self.end_id in row:
                row = row[:row.index(self.end_id)]
            out.append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        return out
