"""The real base model and reviews of ``make real-setup`` (springback.real): springback's own
loaders read the converted Gemma 3 270M folder, and it compresses real reviews as a trained model
does, far better than the same architecture at random initialisation (which sits at the uniform
code length). Skipped where ``resources/real`` has not been set up."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1] / "resources" / "real"
MODEL, REVIEWS = REAL / "gemma3_270m", REAL / "reviews"
N_REVIEWS, N_TOKENS = 10, 128  # reviews scored, tokens kept of each (the test's CPU budget)

pytestmark = pytest.mark.skipif(
    not (MODEL / "config.json").is_file() or not REVIEWS.is_dir(),
    reason="no real model/reviews in resources/real: run `make real-setup` (downloads ~260 MB)")


@pytest.fixture(scope="module")
def real():
    """(tokenizer, model, texts, docs): the first 128 tokens of 10 reviews (5 positive, 5
    negative), each cut at the end of its 128th token, and their token ids."""
    from springback.data import read_table
    from springback.models import load_model, load_tokenizer

    tok, model = load_tokenizer(MODEL), load_model(MODEL)
    frame = read_table(REVIEWS / "data" / "train-00000-of-00001.parquet", ("text", "label"))
    reviews = frame.groupby("label").head(N_REVIEWS // 2)["text"].tolist()
    enc = tok(reviews, add_special_tokens=False, return_offsets_mapping=True)
    texts = [r[: off[N_TOKENS - 1][1]] for r, off in zip(reviews, enc["offset_mapping"])]
    docs = tok(texts, add_special_tokens=False)["input_ids"]
    return tok, model, texts, docs


def bpb(model, tok, texts, docs) -> float:
    """Bits/byte as the study counts it (compress.py): each document coded on its own after a
    given BOS, every token and a closing EOS coded (the EOS of a cut review costs a trained
    model a few bits), over the UTF-8 bytes + 1 per document."""
    import torch

    from springback.compress import bits_per_byte, model_logits
    from springback.tokenizer import special_ids

    ids = special_ids(tok)
    with torch.inference_mode():
        return bits_per_byte(model_logits(model), texts, docs, context=N_TOKENS + 8,
                             bos_id=ids["start"], eos_id=ids["eos"], pad_id=ids["pad"])


def test_real_tokenizer_and_config(real):
    tok, model, _, docs = real
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 2, 1)
    assert model.config.model_type == "gemma3_text" and model.config.vocab_size == 262_144
    assert all(len(d) <= N_TOKENS for d in docs)
    assert sum(map(len, docs)) > 0.9 * N_TOKENS * len(docs)  # the cut keeps ~128 tokens each


def test_real_model_compresses_reviews_like_a_trained_model(real):
    """Trained: ~1.3 bits/byte; random init (seed 0): the uniform code length, ~4.2."""
    import torch
    from transformers import AutoModelForCausalLM

    tok, model, texts, docs = real
    trained = bpb(model, tok, texts, docs)
    torch.manual_seed(0)
    random_init = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32).eval()
    untrained = bpb(random_init, tok, texts, docs)
    n_bytes = sum(len(t.encode("utf-8")) + 1 for t in texts)
    uniform = sum(len(d) + 1 for d in docs) * math.log2(model.config.vocab_size) / n_bytes
    print(f"bits/byte: trained {trained:.3f}, random init {untrained:.3f}, uniform {uniform:.3f}")
    assert trained < 2.0
    assert untrained > 3.5 and abs(untrained - uniform) < 0.05 * uniform
    assert untrained - trained > 2.0
