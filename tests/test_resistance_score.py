"""The resistance stage scores a fine-tuned model with the library's one KL estimator
(springback.evaluate.kl_mean): the mean over completion positions of the exact KL(target ||
model), checked against the sum over the vocabulary written out in float64."""

from __future__ import annotations

import pytest
import torch

from springback.pipeline.resistance import score
from springback.train import collate


def examples(tok) -> list[tuple[list[int], list[int]]]:
    pairs = [("review of the film : the film was", "good ."),
             ("user : tell me a story . assistant :", "sure , here it is .")]
    return [([tok.bos_token_id] + tok.encode(p), tok.encode(c) + [tok.eos_token_id])
            for p, c in pairs]


def kl_by_hand(model, target, batch, pad_id: int) -> float:
    """sum_v q(v) (log q(v) - log p(v)) at every completion position, averaged, in float64."""
    ids, mask, labels = collate(batch, pad_id)
    with torch.no_grad():
        logp = model(input_ids=ids, attention_mask=mask).logits[:, :-1].double().log_softmax(-1)
        logq = target(input_ids=ids, attention_mask=mask).logits[:, :-1].double().log_softmax(-1)
    per_position = (logq.exp() * (logq - logp)).sum(-1)
    return float(per_position[labels[:, 1:] != -100].mean())


def test_score_reads_the_exact_token_kl_to_the_target(make_tiny_model, tiny_tokenizer):
    tok = tiny_tokenizer
    model, target, batch = make_tiny_model(seed=1).eval(), make_tiny_model(seed=2).eval(), \
        examples(tok)
    loss, kl = score(model, target, batch, pad_id=tok.pad_token_id)
    assert kl == pytest.approx(kl_by_hand(model, target, batch, tok.pad_token_id), rel=1e-5)
    assert kl > 0 and loss > 0
    # KL(target || model), not the reverse
    assert kl != pytest.approx(kl_by_hand(target, model, batch, tok.pad_token_id), rel=1e-3)
    assert score(model, model, batch, pad_id=tok.pad_token_id)[1] == pytest.approx(0, abs=1e-6)
