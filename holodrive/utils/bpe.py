"""One byte-level BPE trainer for the tokenizers we train on our own corpora (the caption
tokenizer of the camera generator, the tiny LLM's tokenizer of the driving-QA head)."""
from typing import Iterable, Sequence


def train_byte_level_bpe(texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str],
                         split_digits: bool = False, min_frequency: int = 2):
    """Train a byte-level BPE (no UNK: every byte is in the alphabet) on ``texts``.

    ``special_tokens`` get the first ids, in order, and stay single tokens. With
    ``split_digits`` every digit is its own pre-token (numbers such as pixel coordinates are
    spelled digit by digit instead of as arbitrary merges). Returns a ``tokenizers.Tokenizer``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                  byte_level]) if split_digits else byte_level)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok
