"""Behaviour evaluation of one checkpoint: judged samples, exact behaviour probability, context
following (cue gap), KL to the base model and code lengths of the three held-out datasets; and
the evaluation set of a task they are read on (``eval_set``: its prompts, judge and held-out
texts, read from the task's tables once per job).

Code lengths follow ``compress.py`` (every document coded on its own, BOS given, tokens and EOS
coded): per set ``bits_<set>`` (total code length in bits) and ``bpb_<set>`` (per byte); for the
prompt/completion sets also ``bpbr_<set>`` (response tokens + EOS given the prompt, per byte of
the completion + 1). ``text_codes`` also gives each document's code length (bits), whose sum is
``bits_<set>`` up to float rounding (the totals are summed batch by batch, as ever).

KL estimator (``kl_to_base``): token-level forward KL, KL(p_model || p_base) = sum_v p_model(v) *
(log p_model(v) - log p_base(v)), computed exactly over the whole vocabulary at every predicted
position (every token and the EOS, BOS given) of every held-out alignment and perturbation
document, each document on its own, then averaged over the positions of both sets. Exact and
deterministic; in nats per token.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from springback import data
from springback.compress import (LN2, Batch, TextSet, by_document, document_bytes, layout,
                                 model_logits, real_logits, target_nll, utf8_bytes)
from springback.judge import JUDGES, Judge, make_judge
from springback.tokenizer import special_ids
from springback.world import TASK_SPEC

CACHE_LIMIT = 50_000_000  # cache base log-probs of a text set below this many floats (200 MB)
KL_SETS = ("align", "perturb")  # the sets whose positions ``kl_to_base`` averages over


@dataclass
class EvalSet:
    """Everything needed to evaluate checkpoints of one task, prepared once per job."""

    prompt_ids: list[list[int]]
    contexts: np.ndarray          # True where the pretrained context favours the target behaviour
    clean: np.ndarray             # True where every cue of the prompt agrees with its context
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
    probe_ids: list[list[int]] | None = None  # prompt + the probe's fixed continuation (hub)
    probe_tokens: int = 8192      # tokens (rows x padded width) per behaviour-probe forward pass
    base_cache: dict = field(default_factory=dict)


def text_set(tokenizer, texts: list[str] | list[tuple[str, str]], context: int,
             batch_size: int = 64) -> TextSet:
    """A held-out set laid out for per-document coding. A (prompt, completion) pair is the
    document ``prompt + " " + completion``; its response tokens are those whose text starts at or
    after the end of the prompt."""
    ids, pairs = special_ids(tokenizer), bool(texts) and not isinstance(texts[0], str)
    docs = [f"{p} {c}" for p, c in texts] if pairs else list(texts)
    enc = tokenizer(docs, add_special_tokens=False, return_offsets_mapping=pairs)
    starts = [next((j for j, (a, _) in enumerate(off) if a >= len(p)), len(off))
              for (p, _), off in zip(texts, enc["offset_mapping"])] if pairs else None
    batches = layout(enc["input_ids"], context=context, bos_id=ids["start"], eos_id=ids["eos"],
                     pad_id=ids["pad"], batch_size=batch_size, starts=starts)
    return TextSet(batches, utf8_bytes(docs), utf8_bytes([c for _, c in texts]) if pairs else 0,
                   document_bytes(docs))


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


def length_batches(seqs: list[list[int]], max_tokens: int) -> list[np.ndarray]:
    """Indices of ``seqs`` sorted by length, cut into consecutive batches whose rows x longest
    row stays within ``max_tokens`` (at least one row each): little padding, bounded memory."""
    order = np.argsort([len(s) for s in seqs], kind="stable")
    batches, start = [], 0
    for i, j in enumerate(order):
        if i > start and (i - start + 1) * len(seqs[j]) > max_tokens:
            batches.append(order[start:i])
            start = i
    return batches + [order[start:]] if len(order) else batches


def last_logprobs(model, seqs: list[list[int]], pad_id: int) -> torch.Tensor:
    """Log-softmax of the next token after each sequence (rows, vocab), float32.

    Left padding with positions counted from each sequence's first token puts every last
    position at the end, so the model's own head runs there only (logits_to_keep=1: with a
    256 k vocabulary the full-sequence logits are most of a hub model's cost)."""
    ids, mask = padded(seqs, pad_id, left=True)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    dev = device_of(model)
    logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                   position_ids=positions.to(dev), logits_to_keep=1).logits[:, -1]
    return logits.float().log_softmax(-1)


@torch.no_grad()
def behaviour_probs(model, ev: EvalSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt: P(target | target or contrary first token), the mass on both sets, and the
    exact log-odds log P(target set) - log P(contrary set) from the log-softmax (no clipping);
    NaN where the task defines no target tokens. Prompts run in length-sorted batches of at
    most ``ev.probe_tokens`` tokens (``length_batches``); rows come back in prompt order."""
    seqs = ev.probe_ids or ev.prompt_ids
    lo, both = np.full(len(seqs), np.nan), np.full(len(seqs), np.nan, dtype=np.float32)
    if not ev.target_ids:
        return lo, both, lo.copy()
    for idx in length_batches(seqs, ev.probe_tokens):
        logp = last_logprobs(model, [seqs[i] for i in idx], ev.pad_id)
        target = logp[:, ev.target_ids].logsumexp(-1)
        contrary = logp[:, ev.contrary_ids].logsumexp(-1)
        lo[idx] = (target - contrary).double().cpu().numpy()
        both[idx] = torch.logaddexp(target, contrary).exp().cpu().numpy()
    return torch.sigmoid(torch.from_numpy(lo)).numpy(), both, lo


@torch.no_grad()
def sample_continuations(model, tokenizer, prompt_ids: list[list[int]], *, pad_id: int,
                         eos_id: int, max_new_tokens: int, seed: int, temperature: float = 1.0,
                         batch_size: int = 64) -> list[str]:
    """One sampled continuation per prompt (ancestral sampling from the full distribution at
    ``temperature``, up to EOS or ``max_new_tokens``; left-padded batches of ``batch_size``
    rows, ``model.generate``), decoded without special tokens. The one sampling loop of the
    library: the judged score and the compression stage's base samples both come from it."""
    torch.manual_seed(seed)
    dev, out = device_of(model), []
    for i in range(0, len(prompt_ids), batch_size):
        ids, mask = padded(prompt_ids[i: i + batch_size], pad_id, left=True)
        gen = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), do_sample=True,
                             top_k=0, top_p=1.0, temperature=temperature,
                             max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                             eos_token_id=eos_id)
        out += tokenizer.batch_decode(gen[:, ids.shape[1]:].cpu(), skip_special_tokens=True)
    return out


def kl_total(logp: torch.Tensor, logq: torch.Tensor) -> float:
    """Exact KL(p || q) over the vocabulary (last axis), summed over every position (nats)."""
    return float(torch.dot(logp.exp().flatten(), (logp - logq).flatten()))


def kl_mean(logp: torch.Tensor, logq: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over the positions where ``mask`` is True of the exact KL(p || q) (``kl_total``)."""
    return kl_total(logp[mask], logq[mask]) / int(mask.sum())


def real_logprobs(model, b: Batch) -> torch.Tensor:
    """Log-softmax at every real predicting position of a batch: (n_real, vocab)."""
    return real_logits(model_logits(model), b).float().log_softmax(-1)


def without_adapter(model):
    """A context in which a peft model runs as its base (its adapter off); a no-op otherwise.
    A LoRA run's base is the trained model itself, adapter disabled: one resident copy."""
    disable = getattr(model, "disable_adapter", None)
    peft = type(model).__module__.startswith("peft")
    return disable() if peft and callable(disable) else contextlib.nullcontext()


def base_logprobs(ev: EvalSet, name: str, i: int, b: Batch) -> torch.Tensor:
    """The base model's log-probs of batch i of a set, cached when the whole set is small."""
    key = (name, i)
    if key in ev.base_cache:
        return ev.base_cache[key]
    with without_adapter(ev.base):
        lq = real_logprobs(ev.base, b)
    if sum(int(x.mask.sum()) for x in ev.texts[name].batches) * lq.shape[-1] <= CACHE_LIMIT:
        ev.base_cache[key] = lq
    return lq


def batch_nll(model, ev: EvalSet, name: str, i: int, b: Batch) -> tuple[torch.Tensor, float | None]:
    """-ln p of the real targets of batch i of a set (float64, on the CPU) and their summed KL to
    base (None where not measured; the full log-softmax is taken only where the KL needs it)."""
    if ev.base is None or name not in KL_SETS:
        return target_nll(real_logits(model_logits(model), b), b).double().cpu(), None
    lp = real_logprobs(model, b)
    nll = -lp.gather(-1, b.targets.to(lp.device)[:, None]).squeeze(-1)
    return nll.double().cpu(), kl_total(lp, base_logprobs(ev, name, i, b))


def text_keys(ev: EvalSet) -> list[str]:
    """The text metric columns of an evaluation set, in ``text_codes``'s order."""
    return [f"{m}_{k}" for k, s in ev.texts.items() for m in ("bits", "bpb", "bpbr")
            if m != "bpbr" or s.response_bytes] + ["kl_to_base"]


@torch.no_grad()
def text_codes(model, ev: EvalSet) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Code lengths of every text set and the KL to base over the align + perturb sets; and per
    set, each document's code length in bits (float64, in the set's document order)."""
    out, documents, kl_sum, kl_n = {}, {}, 0.0, 0
    for name, s in ev.texts.items():
        bits = response = 0.0
        per_doc = np.zeros(len(s.document_bytes))
        for i, b in enumerate(s.batches):
            nll, kl = batch_nll(model, ev, name, i, b)
            bits, response = bits + float(nll.sum()), response + float(nll[b.response].sum())
            per_doc += by_document(nll, b, len(per_doc))
            if kl is not None:
                kl_sum, kl_n = kl_sum + kl, kl_n + len(nll)
        out |= {f"bits_{name}": bits / LN2, f"bpb_{name}": bits / LN2 / s.n_bytes}
        if s.response_bytes:
            out[f"bpbr_{name}"] = response / LN2 / s.response_bytes
        documents[name] = per_doc / LN2
    out["kl_to_base"] = kl_sum / kl_n if kl_n else float("nan")
    return out, documents


def text_metrics(model, ev: EvalSet) -> dict[str, float]:
    """Code lengths of every text set and the KL to base over the align + perturb sets."""
    return text_codes(model, ev)[0]


def set_base(base_model, ev: EvalSet) -> None:
    """Use ``base_model`` as the reference of ``kl_to_base``."""
    ev.base, ev.base_cache = base_model, {}


def cue_gap(lo: np.ndarray, contexts: np.ndarray, clean: np.ndarray) -> float:
    """Mean log-odds of the target behaviour in the target-favouring context minus in the other,
    over clean-cue prompts only (NaN when a context has none): how far behaviour follows the
    pretrained context mapping, which a context-blind model cannot fake."""
    a, b = lo[contexts & clean], lo[~contexts & clean]
    return float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")


def evaluate_checkpoint(model, tokenizer, ev: EvalSet, *, seed: int, text: bool = True,
                        sample: bool = True) -> tuple[dict, dict]:
    """Checkpoint-level metrics and per-prompt columns (score, p_target, logodds).

    The exact behaviour probabilities cost one forward pass over the prompts; ``text`` adds
    bits/byte and KL on the held-out sets, ``sample`` the judged score of sampled continuations
    (NaN when skipped)."""
    p_target, coverage, lo = behaviour_probs(model, ev)
    n = len(ev.prompt_ids)
    scores = np.full(n, np.nan)
    if sample:
        texts = sample_continuations(model, tokenizer, ev.prompt_ids, pad_id=ev.pad_id,
                                     eos_id=ev.eos_id, max_new_tokens=ev.max_new_tokens,
                                     seed=seed, temperature=ev.temperature,
                                     batch_size=ev.batch_size)
        scores = np.array(ev.judge(texts), dtype=float)
    nan_text = dict.fromkeys(text_keys(ev), float("nan"))
    metrics = {
        "score": float(scores.mean()),
        "p_target": float(np.mean(p_target)),
        "logodds": float(np.mean(lo)),
        "cue_gap": cue_gap(lo, ev.contexts, ev.clean),
        "coverage": float(np.mean(coverage)),
        **(text_metrics(model, ev) if text else nan_text),
    }
    per_prompt = {"score": scores, "p_target": p_target, "logodds": lo}
    return metrics, per_prompt


# ------------------------------------------------------------------------ evaluation sets


def task_judge(task: str, judge_spec: dict | None, judge_dir: str | Path | None, device: str):
    """The judge a task's config spec names (springback.judge.JUDGES; toy mode, no spec: the
    world's exact judge), with the kind's options; a model judge is read from its fetched
    folder ``judge_dir`` onto ``device``."""
    name = (judge_spec or {"kind": "exact"})["kind"]
    options = {k: v for k, v in (judge_spec or {}).items() if k in JUDGES[name].options}
    if JUDGES[name].model:
        options |= {"path": str(judge_dir), "device": device}
    return make_judge({"kind": name, **options}, task)


def eval_set(tok, *, task: str, tables: Mapping[str, str | Path], pretrain_heldout: str | Path,
             eval_cfg: dict, judge_spec: dict | None = None,
             judge_dir: str | Path | None = None, device: str = "cpu") -> EvalSet:
    """Prepare prompts, judge and held-out text sets of a task (once per job) from its tables
    (``data.task_files``) and the held-out D_p. The exact target probability (log-odds) is read
    at the end of the prompt with the world's exact judge (toy mode), and, for a hub task whose
    judge spec carries a ``probe`` (suffix, target words, contrary words), after the prompt
    followed by the probe's fixed suffix (e.g. verdict words after " Overall, the movie was");
    without one it is NaN. ``eval_cfg`` is the study's ``evaluate`` config."""
    exact = judge_spec is None or judge_spec["kind"] == "exact"
    ids, spec = special_ids(tok), TASK_SPEC[task]
    prompts = data.read_table(tables["prompts"], data.PROMPT_COLUMNS)
    held = {name: data.read_table(tables[f"{name}_heldout"], data.EXAMPLE_COLUMNS)
            for name in ("align", "perturb")}
    texts = {name: list(zip(frame["prompt"], frame["completion"])) for name, frame in held.items()}
    texts["pretrain"] = data.read_table(pretrain_heldout, ("text",))["text"].tolist()
    limit = eval_cfg["documents"]  # the first N documents of a set (a set not listed: all)
    texts = {name: docs[: limit.get(name)] for name, docs in texts.items()}
    prompt_ids = tok(prompts["prompt"].tolist(), add_special_tokens=False)["input_ids"]
    probe = None if exact else judge_spec.get("probe")
    target, contrary, probe_ids = None, None, None
    if exact:
        target, contrary = (tok.convert_tokens_to_ids(spec[k]) for k in ("target", "contrary"))
    elif probe:
        target, contrary = (probe_tokens(tok, probe["suffix"], probe[k], task)
                            for k in ("target", "contrary"))
        if set(target) & set(contrary):
            raise ValueError(f"probe of task {task}: target and contrary words share a first "
                             f"token ({sorted(set(target) & set(contrary))})")
        suffixed = [p + probe["suffix"] for p in prompts["prompt"]]
        probe_ids = [[ids["start"]] + p
                     for p in tok(suffixed, add_special_tokens=False)["input_ids"]]
    return EvalSet(
        prompt_ids=[[ids["start"]] + p for p in prompt_ids],
        contexts=(prompts["context"] == spec["contexts"][0]).to_numpy(),
        clean=(prompts["clean"].to_numpy(bool) if "clean" in prompts
               else np.ones(len(prompts), bool)),  # hub prompts: the label is the only cue
        target_ids=target, contrary_ids=contrary, probe_ids=probe_ids,
        judge=task_judge(task, judge_spec, judge_dir, device),
        texts={k: text_set(tok, v, eval_cfg["context"], eval_cfg["batch_size"])
               for k, v in texts.items()},
        pad_id=ids["pad"], eos_id=ids["eos"], max_new_tokens=eval_cfg["max_new_tokens"],
        temperature=eval_cfg["temperature"], batch_size=eval_cfg["batch_size"])


def probe_tokens(tok, suffix: str, words: list[str], task: str) -> list[int]:
    """The first token of each word as the model would read it right after ``suffix`` (the
    tokens of suffix + word past those of suffix alone; robust to a tokenizer that merges the
    leading space), de-duplicated."""
    start = len(tok(suffix, add_special_tokens=False)["input_ids"])
    out = []
    for word in words:
        ids = tok(suffix + word, add_special_tokens=False)["input_ids"][start:]
        if not ids or ids[0] == tok.unk_token_id:
            raise ValueError(f"probe of task {task}: the word {word!r} has no token of its own "
                             "after the suffix")
        out += [ids[0]] if ids[0] not in out else []
    return out
