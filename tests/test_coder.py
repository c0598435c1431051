"""The range coder: it decodes back exactly, and its size is the model's code length plus a small
measured overhead. Fixtures: tests/conftest.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from springback import coder, compress
from springback.tokenizer import special_ids

from conftest import TINY_CONTEXT


def _kw(tok) -> dict:
    ids = special_ids(tok)
    return dict(context=TINY_CONTEXT, bos_id=ids["start"], eos_id=ids["eos"])


def _heldout_texts(tiny_world, tok) -> list[str]:
    """Held-out D_p and D_a documents without words unknown to the tiny tokenizer (with them the
    word-level tokenizer is lossy)."""
    align = tiny_world["sentiment/align_heldout"]
    texts = tiny_world["pretrain_heldout"]["text"] + [
        f"{p} {c}" for p, c in zip(align["prompt"], align["completion"])]
    return [t for t in texts if tok.decode(tok(t, add_special_tokens=False)["input_ids"]) == t]


def _nll_bits(model, tok, texts) -> float:
    ids = special_ids(tok)
    docs = coder.tokenize_losslessly(tok, texts)
    batches = compress.layout(docs, context=TINY_CONTEXT, bos_id=ids["start"],
                              eos_id=ids["eos"], pad_id=ids["pad"])
    return compress.code_length(compress.model_logits(model), batches)[0]


def test_round_trip_is_exact_on_heldout_text(make_tiny_model, tiny_tokenizer, tiny_world):
    model, texts = make_tiny_model(seed=3).eval(), _heldout_texts(tiny_world, tiny_tokenizer)
    words = coder.compress_texts(model, tiny_tokenizer, texts, context=TINY_CONTEXT)
    assert len(texts) >= 10 and words.dtype == np.uint32 and words[0] == len(texts)
    assert coder.decompress_texts(model, tiny_tokenizer, words, context=TINY_CONTEXT) == texts


def test_windows_of_a_long_document_round_trip(make_tiny_model):
    model = make_tiny_model(seed=3).eval()
    docs = [[5] * 40, [], [7, 8] * 20]  # longer than the context, empty, longer again
    kw = dict(context=8, bos_id=1, eos_id=2)
    assert coder.decode(model, coder.encode(model, docs, **kw), **kw) == docs


def test_size_is_within_one_percent_of_the_nll(pretrained_model, tiny_tokenizer, tiny_world):
    texts, n = [], 0
    for t in tiny_world["pretrain"]["text"]:  # >= 10 kB of text the tokenizer knows
        texts, n = texts + [t], n + len(t) + 1
        if n >= 10_000:
            break
    model = pretrained_model.eval()
    words = coder.compress_texts(model, tiny_tokenizer, texts, context=TINY_CONTEXT)
    size, nll = 32 * len(words), _nll_bits(model, tiny_tokenizer, texts)
    print(f"{n} bytes, {len(texts)} documents: NLL {nll:.0f} bits, coded {size} bits "
          f"(+{size - nll:.0f} bits, {100 * (size / nll - 1):.3f} %)")
    assert nll <= size <= 1.01 * nll
    assert coder.decompress_texts(model, tiny_tokenizer, words, context=TINY_CONTEXT) == texts


def test_compare_lists_every_compressor_on_the_same_bytes(pretrained_model, tiny_tokenizer,
                                                          tiny_world):
    texts = _heldout_texts(tiny_world, tiny_tokenizer)
    table = coder.compare(pretrained_model.eval(), tiny_tokenizer, texts, context=TINY_CONTEXT)
    assert table["method"].tolist() == ["model NLL", "model + range coder", "gzip", "bz2", "xz",
                                        "zstd"]
    n = compress.utf8_bytes(texts)
    np.testing.assert_allclose(table["bits_per_byte"], table["bits"] / n)
    sizes = dict(zip(table["method"], table["bits"]))
    assert sizes["model + range coder"] >= sizes["model NLL"]
    assert all(math.isfinite(v) and v > 0 for v in sizes.values())


def test_lossy_tokenisation_is_refused(tiny_tokenizer):
    with pytest.raises(ValueError, match="round-trip"):
        coder.tokenize_losslessly(tiny_tokenizer, ["review  of zzzqqq"])
