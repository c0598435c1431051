"""The faster paths against the code they replaced: the fused pretraining loss
(train.next_token_loss, train.pretrain) against HF's ``model(input_ids, labels=ids).loss`` with
the for-loop AdamW, and the length-bucketed behaviour probe (evaluate.behaviour_probs) against
one left-padded batch of every prompt. Each reference is the replaced code, written out here.

Tolerances. Losses and gradients: 1e-5 relative (per tensor, in norm; measured ~1e-7). Weights
after a few AdamW steps: no further from the old loop's than the old loop is from itself when
the rows of every batch are reversed (the same mean, summed in another order). AdamW divides by
sqrt(v) + eps (1e-8), so a gradient element near eps moves its weight by lr x its rounding / eps:
here one v_proj element whose gradient is 7.7e-9 puts the fused loss 2.7e-5 (relative norm of
the tensor) from the old loop after one step, and reversing the rows puts the old loop 7.5e-5
from itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from springback import evaluate, train
from springback.models import build_llama

VOCAB, CONTEXT = 97, 32
ARCH = dict(hidden=32, layers=2, heads=2, intermediate=64)
TOL = 1e-5


def tiny(seed: int = 0):
    return build_llama(VOCAB, **ARCH, context=CONTEXT, seed=seed, bos_id=1, eos_id=2, pad_id=0)


def blocks(rows: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, VOCAB, (rows, CONTEXT), generator=torch.Generator().manual_seed(seed))


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def hf_pretrain(model, data: torch.Tensor, *, steps: int, batch_size: int, lr: float,
                warmup: int, weight_decay: float, seed: int, reverse: bool = False) -> list[float]:
    """The pretraining loop before the fused loss (HF's loss, for-loop AdamW); its losses.
    ``reverse``: each batch's rows in reverse order (the same loss up to float rounding)."""
    torch.manual_seed(seed)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                            betas=(0.9, 0.95))
    model.train()
    losses = []
    for step in range(steps):
        idx = order[torch.arange(step * batch_size, (step + 1) * batch_size) % len(data)]
        idx = idx.flip(0) if reverse else idx
        for group in opt.param_groups:
            group["lr"] = train.cosine_lr(step, steps, peak=lr, warmup=warmup)
        loss = model(input_ids=data[idx], labels=data[idx]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def params(model) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def gap(a: dict, b: dict) -> float:
    """Largest per-tensor relative difference (in norm) of two state dicts."""
    return max(relative(a[k], b[k]) for k in b)


@pytest.mark.parametrize("rows", [7, 512])  # several chunks of the fused loss, and one
def test_fused_loss_and_gradients_equal_hf(monkeypatch, rows):
    monkeypatch.setattr(train, "LOSS_ROWS", rows)
    model, x = tiny().train(), blocks(8)
    got, want = {}, {}
    for out, fn in ((want, lambda: model(input_ids=x, labels=x).loss),
                    (got, lambda: train.next_token_loss(model, x))):
        model.zero_grad(set_to_none=True)
        loss = fn()
        loss.backward()
        out |= {"loss": loss.detach()} | {k: p.grad.clone() for k, p in model.named_parameters()}
    gaps = {k: relative(got[k], want[k]) for k in want}
    assert max(gaps.values()) <= TOL, gaps


def test_pretrain_equals_the_hf_loss_loop(monkeypatch):
    kw = dict(batch_size=8, lr=3e-3, warmup=2, weight_decay=0.1, seed=0)
    data, steps = blocks(), 6
    tokens = steps * 8 * CONTEXT
    old, reversed_rows, new = tiny(), tiny(), tiny()
    init = params(new)
    old_losses = hf_pretrain(old, data, steps=steps, **kw)
    hf_pretrain(reversed_rows, data, steps=steps, reverse=True, **kw)
    losses = []
    monkeypatch.setattr(train.log, "info", lambda fmt, *args: losses.append(args[2]))
    train.pretrain(new, data, tokens=tokens, save_at=[], save=lambda m, n: None, **kw)  # logs
    floor = gap(params(reversed_rows), params(old))
    assert gap(params(new), params(old)) <= max(floor, TOL), (gap(params(new), params(old)), floor)
    np.testing.assert_allclose(losses, old_losses, rtol=TOL)
    assert gap(init, params(old)) > 1e3 * max(floor, TOL)  # training moved far beyond the gap


# ===================================================== the behaviour probe in length buckets


def probe_set(lengths: list[int], probe_tokens: int) -> evaluate.EvalSet:
    """An evaluation set of prompts of the given lengths (BOS + random words)."""
    g = torch.Generator().manual_seed(1)
    prompts = [[1] + torch.randint(3, VOCAB, (n - 1,), generator=g).tolist() for n in lengths]
    n = len(prompts)
    return evaluate.EvalSet(prompt_ids=prompts, contexts=np.arange(n) % 2 == 0,
                            clean=np.ones(n, bool), target_ids=[5, 6], contrary_ids=[7, 8, 9],
                            judge=None, texts={}, pad_id=0, eos_id=2, probe_tokens=probe_tokens)


@torch.no_grad()
def one_padded_batch(model, ev: evaluate.EvalSet):
    """The probe before length buckets: every prompt in one left-padded forward."""
    ids, mask = evaluate.padded(ev.prompt_ids, ev.pad_id, left=True)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logp = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                 logits_to_keep=1).logits[:, -1].float().log_softmax(-1)
    target = logp[:, ev.target_ids].logsumexp(-1)
    contrary = logp[:, ev.contrary_ids].logsumexp(-1)
    lo = (target - contrary).double()
    return torch.sigmoid(lo).numpy(), torch.logaddexp(target, contrary).exp().numpy(), lo.numpy()


def test_length_batches_cover_every_prompt_within_the_budget():
    lengths = [5, 30, 2, 17, 17, 9, 30, 1, 12, 40]
    seqs = [[0] * n for n in lengths]
    batches = evaluate.length_batches(seqs, 60)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(seqs)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths)  # sorted by length: little padding
    assert all(len(b) * max(lengths[i] for i in b) <= 60 or len(b) == 1 for b in batches)
    assert len(batches) > 3
    assert [len(b) for b in evaluate.length_batches(seqs, 10**6)] == [len(seqs)]
    assert evaluate.length_batches([], 60) == []


@pytest.mark.parametrize("probe_tokens", [60, 8192])  # many buckets, and one
def test_bucketed_probe_equals_one_padded_batch(probe_tokens):
    model = tiny().eval()
    lengths = [3, 25, 7, 14, 2, 30, 9, 9, 21, 5, 12, 18, 4, 27, 16]
    ev = probe_set(lengths, probe_tokens)
    p_want, both_want, lo_want = one_padded_batch(model, ev)
    p_got, both_got, lo_got = evaluate.behaviour_probs(model, ev)
    assert np.abs(lo_got - lo_want).max() < 1e-4
    np.testing.assert_allclose(p_got, p_want, atol=1e-5)
    np.testing.assert_allclose(both_got, both_want, rtol=1e-5)
    assert both_got.dtype == both_want.dtype
    assert np.ptp(lo_want) > 1e-2  # the prompts really differ, so an order slip would show
