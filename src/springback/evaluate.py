"""Behaviour evaluation of one checkpoint: judged samples, exact behaviour probability, context
following (cue gap), KL to the base model and bits per byte on the three datasets.

KL estimator (``kl_to_base``): token-level forward KL, KL(p_model || p_base) = sum_v p_model(v) *
(log p_model(v) - log p_base(v)), computed exactly over the whole vocabulary at every position of
the held-out alignment and perturbation texts (prompts and completions, packed as for bits/byte),
then averaged over positions. Exact and deterministic; in nats per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from springback.compress import code_length_bits, stream_logprobs, stream_rows, utf8_bytes
from springback.judge import Judge


@dataclass
class TextSet:
    """A held-out text set packed for bits/byte: rows, mask of real tokens, byte count."""

    rows: torch.Tensor
    mask: torch.Tensor
    n_bytes: int


@dataclass
class EvalSet:
    """Everything needed to evaluate checkpoints of one task, prepared once per job."""

    prompt_ids: list[list[int]]
    contexts: np.ndarray          # True where the pretrained context favours the target behaviour
    target_ids: list[int]
    contrary_ids: list[int]
    judge: Judge
    texts: dict[str, TextSet]     # keys: pretrain, align, perturb
    pad_id: int
    max_new_tokens: int = 16      # tokens sampled per prompt (words)
    temperature: float = 1.0      # sampling temperature
    base_logprobs: dict | None = None  # set by ``set_base``


def text_set(tokenizer, texts: list[str], context: int) -> TextSet:
    docs = tokenizer(texts, add_special_tokens=False)["input_ids"]
    rows, mask = stream_rows(docs, context=context, bos_id=tokenizer.bos_token_id,
                             eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id)
    return TextSet(rows, mask, utf8_bytes(texts))


@torch.no_grad()
def behaviour_probs(model, ev: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: P(target | target or contrary first word) and the mass on both sets."""
    width = max(map(len, ev.prompt_ids))
    ids = torch.full((len(ev.prompt_ids), width), ev.pad_id, dtype=torch.long)
    for i, p in enumerate(ev.prompt_ids):
        ids[i, : len(p)] = torch.tensor(p)
    last = torch.tensor([len(p) - 1 for p in ev.prompt_ids])
    probs = model(input_ids=ids).logits[torch.arange(len(ids)), last].float().softmax(-1)
    target = probs[:, ev.target_ids].sum(-1)
    contrary = probs[:, ev.contrary_ids].sum(-1)
    return (target / (target + contrary)).numpy(), (target + contrary).numpy()


@torch.no_grad()
def sample_continuations(model, tokenizer, ev: EvalSet, *, seed: int) -> list[str]:
    """One sampled continuation per prompt (left-padded batch, ``model.generate``)."""
    width = max(map(len, ev.prompt_ids))
    ids = torch.full((len(ev.prompt_ids), width), ev.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(ev.prompt_ids):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    torch.manual_seed(seed)
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, top_p=1.0,
                         temperature=ev.temperature, max_new_tokens=ev.max_new_tokens,
                         pad_token_id=ev.pad_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)


def kl_mean(logp: torch.Tensor, logq: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over real positions of the exact KL(p || q) over the vocabulary (nats)."""
    kl = (logp.exp() * (logp - logq)).sum(-1)
    return float(kl[mask].mean())


def text_logprobs(model, ev: EvalSet) -> dict[str, torch.Tensor]:
    fn = lambda ids: model(input_ids=ids).logits  # noqa: E731
    return {name: stream_logprobs(fn, s.rows) for name, s in ev.texts.items()}


def set_base(base_model, ev: EvalSet) -> None:
    """Cache the base model's log-probabilities on the KL texts (align + perturb held-out)."""
    lp = text_logprobs(base_model, ev)
    ev.base_logprobs = {k: lp[k] for k in ("align", "perturb")}


def log_odds(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def kl_to_base(logprobs: dict[str, torch.Tensor], ev: EvalSet) -> float:
    """Mean of the per-set KL to base over the align and perturb held-out sets; NaN without base."""
    if ev.base_logprobs is None:
        return float("nan")
    return float(np.mean([kl_mean(logprobs[k], ev.base_logprobs[k], ev.texts[k].mask)
                          for k in ("align", "perturb")]))


def evaluate_checkpoint(model, tokenizer, ev: EvalSet, *, seed: int) -> tuple[dict, dict]:
    """Checkpoint-level metrics and per-prompt columns (score, p_target, logodds, context)."""
    p_target, coverage = behaviour_probs(model, ev)
    scores = np.array(ev.judge(sample_continuations(model, tokenizer, ev, seed=seed)))
    lo = log_odds(p_target)
    lp = text_logprobs(model, ev)
    metrics = {
        "score": float(scores.mean()),
        "p_target": float(p_target.mean()),
        "logodds": float(lo.mean()),
        "cue_gap": float(lo[ev.contexts].mean() - lo[~ev.contexts].mean()),
        "coverage": float(coverage.mean()),
        "kl_to_base": kl_to_base(lp, ev),
    }
    for name, s in ev.texts.items():
        metrics[f"bpb_{name}"] = code_length_bits(lp[name], s.rows, s.mask) / s.n_bytes
    per_prompt = {"score": scores, "p_target": p_target, "logodds": lo, "context": ev.contexts}
    return metrics, per_prompt
