"""Behaviour evaluation of one checkpoint: judged samples, exact behaviour probability, context
following (cue gap), KL to the base model and bits per byte on the three datasets.

KL estimator (``kl_to_base``): token-level forward KL, KL(p_model || p_base) = sum_v p_model(v) *
(log p_model(v) - log p_base(v)), computed exactly over the whole vocabulary at every position of
the held-out alignment and perturbation texts (prompts and completions, packed as for bits/byte),
then averaged over positions of both sets. Exact and deterministic; in nats per token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from springback.compress import code_length_bits, stream_rows, utf8_bytes
from springback.judge import Judge

CACHE_LIMIT = 50_000_000  # cache base log-probs of a text set below this many floats (200 MB)


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
    target_ids: list[int] | None  # first tokens of the target behaviour (None: not known, hub)
    contrary_ids: list[int] | None
    judge: Judge
    texts: dict[str, TextSet]     # keys: pretrain, align, perturb
    pad_id: int
    eos_id: int
    max_new_tokens: int = 16      # tokens sampled per prompt
    temperature: float = 1.0      # sampling temperature
    batch_size: int = 64          # rows per forward pass
    base: object | None = None    # the base model, for KL (set by ``set_base``)
    base_cache: dict = field(default_factory=dict)


def text_set(tokenizer, texts: list[str], context: int) -> TextSet:
    from springback.models import special_ids

    ids = special_ids(tokenizer)
    docs = tokenizer(texts, add_special_tokens=False)["input_ids"]
    rows, mask = stream_rows(docs, context=context, bos_id=ids["start"], eos_id=ids["eos"],
                             pad_id=ids["pad"])
    return TextSet(rows, mask, utf8_bytes(texts))


def device_of(model) -> torch.device:
    return next(model.parameters()).device


def padded(seqs: list[list[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A (batch, width) id tensor and attention mask, padded on the left or right."""
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, span] = torch.tensor(s)
        mask[i, span] = 1
    return ids, mask


@torch.no_grad()
def behaviour_probs(model, ev: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: P(target | target or contrary first token) and the mass on both sets
    (NaN where the task defines no target tokens)."""
    if not ev.target_ids:
        nan = np.full(len(ev.prompt_ids), np.nan)
        return nan, nan
    ids, _ = padded(ev.prompt_ids, ev.pad_id, left=False)  # right padding keeps positions exact
    last = torch.tensor([len(p) - 1 for p in ev.prompt_ids])
    logits = model(input_ids=ids.to(device_of(model))).logits[torch.arange(len(ids)), last]
    probs = logits.float().softmax(-1)
    target = probs[:, ev.target_ids].sum(-1)
    contrary = probs[:, ev.contrary_ids].sum(-1)
    return (target / (target + contrary)).cpu().numpy(), (target + contrary).cpu().numpy()


@torch.no_grad()
def sample_continuations(model, tokenizer, ev: EvalSet, *, seed: int) -> list[str]:
    """One sampled continuation per prompt (left-padded batches, ``model.generate``)."""
    torch.manual_seed(seed)
    dev, out = device_of(model), []
    for i in range(0, len(ev.prompt_ids), ev.batch_size):
        ids, mask = padded(ev.prompt_ids[i: i + ev.batch_size], ev.pad_id, left=True)
        gen = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), do_sample=True,
                             top_k=0, top_p=1.0, temperature=ev.temperature,
                             max_new_tokens=ev.max_new_tokens, pad_token_id=ev.pad_id,
                             eos_token_id=ev.eos_id)
        out += tokenizer.batch_decode(gen[:, ids.shape[1]:].cpu(), skip_special_tokens=True)
    return out


def kl_per_position(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Exact KL(p || q) over the vocabulary (last axis) at every position (nats)."""
    return (logp.exp() * (logp - logq)).sum(-1)


def kl_mean(logp: torch.Tensor, logq: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over real positions of the exact KL(p || q)."""
    return float(kl_per_position(logp, logq)[mask].mean())


def row_logprobs(model, rows: torch.Tensor) -> torch.Tensor:
    """Log-softmax at every predicting position of packed rows: (rows, width - 1, vocab)."""
    return model(input_ids=rows.to(device_of(model))).logits[:, :-1].float().log_softmax(-1)


def base_logprobs(ev: EvalSet, name: str, i: int, rows: torch.Tensor) -> torch.Tensor:
    """The base model's log-probs of a batch, cached when the whole set is small."""
    key = (name, i)
    if key in ev.base_cache:
        return ev.base_cache[key]
    lq = row_logprobs(ev.base, rows)
    s = ev.texts[name]
    if s.rows.numel() * lq.shape[-1] <= CACHE_LIMIT:
        ev.base_cache[key] = lq
    return lq


@torch.no_grad()
def text_metrics(model, ev: EvalSet) -> dict[str, float]:
    """bits/byte of every text set and the KL to base over the align + perturb sets."""
    out, kl_sum, kl_n = {}, 0.0, 0
    for name, s in ev.texts.items():
        bits = 0.0
        for i in range(0, len(s.rows), ev.batch_size):
            rows, mask = s.rows[i: i + ev.batch_size], s.mask[i: i + ev.batch_size]
            lp = row_logprobs(model, rows)
            mask = mask.to(lp.device)
            bits += code_length_bits(lp, rows.to(lp.device), mask)
            if ev.base is not None and name in ("align", "perturb"):
                lq = base_logprobs(ev, name, i, rows)
                kl = kl_per_position(lp, lq)
                kl_sum, kl_n = kl_sum + float(kl[mask].sum()), kl_n + int(mask.sum())
        out[f"bpb_{name}"] = bits / s.n_bytes
    out["kl_to_base"] = kl_sum / kl_n if kl_n else float("nan")
    return out


def set_base(base_model, ev: EvalSet) -> None:
    """Use ``base_model`` as the reference of ``kl_to_base``."""
    ev.base, ev.base_cache = base_model, {}


def log_odds(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def evaluate_checkpoint(model, tokenizer, ev: EvalSet, *, seed: int) -> tuple[dict, dict]:
    """Checkpoint-level metrics and per-prompt columns (score, p_target, logodds, context)."""
    p_target, coverage = behaviour_probs(model, ev)
    scores = np.array(ev.judge(sample_continuations(model, tokenizer, ev, seed=seed)), dtype=float)
    lo = log_odds(p_target)
    metrics = {
        "score": float(scores.mean()),
        "p_target": float(np.mean(p_target)),
        "logodds": float(np.mean(lo)),
        "cue_gap": float(lo[ev.contexts].mean() - lo[~ev.contexts].mean())
        if ev.contexts.any() and (~ev.contexts).any() else float("nan"),
        "coverage": float(np.mean(coverage)),
        **text_metrics(model, ev),
    }
    per_prompt = {"score": scores, "p_target": p_target, "logodds": lo, "context": ev.contexts}
    return metrics, per_prompt
