"""Tokenizers: the word-level tokenizer trained on the pretraining corpus (saved as a Hugging
Face tokenizer), and the special ids every tokenizer, toy or hub, is read with.

The world is a space-separated language, so one token per word is exact and lossless: decoding
joins tokens with single spaces and gives back the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_tokenizer(texts: Iterable[str], *, min_frequency: int = 1):
    """Train a word-level tokenizer on texts; returns a ``PreTrainedTokenizerFast``."""
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(unk_token=SPECIALS["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIALS.values()),
                                        min_frequency=min_frequency)
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIALS)


def save_tokenizer(tokenizer, path: str | Path) -> None:
    tokenizer.save_pretrained(str(path))


def special_ids(tokenizer) -> dict[str, int]:
    """Start, end and padding ids, with the usual fallbacks of hub tokenizers: no BOS (Qwen) ->
    EOS starts a sequence; no PAD (Llama 2) -> EOS pads."""
    eos = tokenizer.eos_token_id
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return {"start": start, "eos": eos, "pad": pad}
