"""A real compressor: range coding of text with a language model's next-token distribution.

What is coded follows ``compress.py`` exactly: every document on its own (BOS given, its tokens and
EOS coded; windows of ``context - 1`` targets, each after a fresh BOS), the EOS telling the decoder
where a document ends. All documents of a dataset share one range-coder stream (constriction's
``RangeEncoder``, one flush); the stream is stored as 32-bit words after a one-word header (the
number of documents), and the compressed size counts both. The model itself is not counted.

Determinism: each distribution is the float64 softmax of the model's float32 logits at the last
position of the window's prefix, computed by the same call in the encoder and the decoder, and
quantised by constriction's ``Categorical(perfect=False)`` (every symbol keeps a nonzero
probability). Encoder and decoder therefore agree on one machine with one torch build and thread
count; across machines the float32 logits (so the quantised table) may differ.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from typing import Sequence

import constriction
import numpy as np
import pandas as pd
import torch

from springback.compress import code_length, layout, model_logits, utf8_bytes, windows
from springback.tokenizer import special_ids

Categorical = constriction.stream.model.Categorical


@torch.no_grad()
def next_probs(model, prefix: list[int]) -> np.ndarray:
    """The model's next-token distribution after ``prefix`` (float64, sums to 1)."""
    logits = model(input_ids=torch.tensor([prefix], device=model.device)).logits[0, -1]
    return logits.double().softmax(-1).cpu().numpy()


def encode(model, docs: Sequence[Sequence[int]], *, context: int, bos_id: int,
           eos_id: int) -> np.ndarray:
    """Token documents -> uint32 words: [number of documents, range-coder stream...]."""
    enc = constriction.stream.queue.RangeEncoder()
    for doc in docs:
        for targets, _ in windows(doc, len(doc) + 1, context=context, eos_id=eos_id):
            row = [bos_id]
            for t in targets:
                enc.encode(t, Categorical(next_probs(model, row), perfect=False))
                row.append(t)
    return np.concatenate([np.array([len(docs)], np.uint32), enc.get_compressed()])


def decode(model, words: np.ndarray, *, context: int, bos_id: int, eos_id: int) -> list[list[int]]:
    """The inverse of ``encode``: a window restarts after BOS once it holds context - 1 targets."""
    dec = constriction.stream.queue.RangeDecoder(words[1:].copy())
    docs = []
    for _ in range(int(words[0])):
        doc, row = [], [bos_id]
        while True:
            row = row if len(row) < context else [bos_id]
            t = int(dec.decode(Categorical(next_probs(model, row), perfect=False)))
            if t == eos_id:
                break
            doc.append(t)
            row.append(t)
        docs.append(doc)
    return docs


def tokenize_losslessly(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text; raises if the tokenizer cannot give a text back exactly."""
    docs = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    for text, doc in zip(texts, docs):
        if tokenizer.decode(doc) != text:
            raise ValueError(f"the tokenizer does not round-trip {text[:60]!r}")
    return docs


def compress_texts(model, tokenizer, texts: Sequence[str], *, context: int) -> np.ndarray:
    ids = special_ids(tokenizer)
    return encode(model, tokenize_losslessly(tokenizer, texts), context=context,
                  bos_id=ids["start"], eos_id=ids["eos"])


def decompress_texts(model, tokenizer, words: np.ndarray, *, context: int) -> list[str]:
    ids = special_ids(tokenizer)
    docs = decode(model, words, context=context, bos_id=ids["start"], eos_id=ids["eos"])
    return [tokenizer.decode(d) for d in docs]


def general_purpose_bits(texts: Sequence[str]) -> dict[str, int]:
    """Compressed size in bits of the text file (one document per line, UTF-8) under gzip -9,
    xz -9e, bz2 -9 and zstd -19 (whole files, headers included)."""
    import zstandard

    raw = "".join(f"{t}\n" for t in texts).encode("utf-8")
    out = {"gzip": gzip.compress(raw, 9, mtime=0), "bz2": bz2.compress(raw, 9),
           "xz": lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME),
           "zstd": zstandard.ZstdCompressor(level=19).compress(raw)}
    return {k: 8 * len(v) for k, v in out.items()}


def compare(model, tokenizer, texts: Sequence[str], *, context: int) -> pd.DataFrame:
    """Bits and bits/byte of the same bytes: the model's ideal code length (NLL), the model with
    the range coder (checked to decode back), and the general-purpose compressors."""
    ids = special_ids(tokenizer)
    docs = tokenize_losslessly(tokenizer, texts)
    batches = layout(docs, context=context, bos_id=ids["start"], eos_id=ids["eos"],
                     pad_id=ids["pad"])
    words = compress_texts(model, tokenizer, texts, context=context)
    if decompress_texts(model, tokenizer, words, context=context) != list(texts):
        raise RuntimeError("range coder round trip failed")
    bits = {"model NLL": code_length(model_logits(model), batches)[0],
            "model + range coder": 32 * len(words), **general_purpose_bits(texts)}
    n = utf8_bytes(texts)
    return pd.DataFrame({"method": list(bits), "bits": list(bits.values()),
                         "bits_per_byte": [b / n for b in bits.values()]})
