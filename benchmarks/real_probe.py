"""Accuracy of the exact cloze probe as a sentiment judge of 48-word texts, on real labelled
reviews, under the real base model of ``make real-setup`` (Gemma 3 270M, resources/real).

The probe is config/hub.yaml's sentiment probe, scored by the study's own code
(``evaluation.probe_tokens``, ``evaluate.behaviour_probs``): log-odds = logsumexp of the
next-token log-probs of the target verdict words minus that of the contrary words, read after
BOS + excerpt + suffix. Excerpts: N reviews (N/2 positive, N/2 negative, sampled with --seed from
the 1,500 full Pang & Lee reviews, those of >= 56 words), 48 words each, from one of these windows:
  start  words 1-48: a review's opening, what the probe reads with config/real.yaml's 48-word
         prompts;
  first  words 9-56: exactly the completion hub mode cuts from a review with config/hub.yaml's
         mapping (``hubdata.split_review(text, 8, 48)[1]``: the first 8 words are the prompt);
  last   the review's last 48 words (where reviewers usually give their verdict);
  snippets  (for comparison, not 48 words) whole one-sentence snippets of the 4,000 (~21 words).
Reported per window: accuracy of sign(log-odds - threshold) against the label with threshold 0
and with the threshold at the median log-odds (in-sample, and cross-fitted: each half classified
at the median of the other half), the AUC, the per-class mean log-odds and the probability mass
the probe's words get. Reviews are lower-cased and pre-tokenised (" , "), as published.

Run: .venv/bin/python benchmarks/real_probe.py [--n 200] [--windows start,first,last] [--seed 0]
(35-100 s per window of 200 excerpts on 2 shared CPU cores, after ~10 s of loading.)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
from springback.config import load

REAL = Path("resources/real")
PROMPT_WORDS, COMPLETION_WORDS = 8, 48  # config/hub.yaml's sentiment mapping
BATCH = 25                              # excerpts per forward pass


def hub_probe() -> dict:
    """The sentiment probe of config/hub.yaml (suffix, target and contrary words)."""
    return load(["config/hub.yaml"])["hub"]["judges"]["sentiment"]["probe"]


def excerpts(n: int, window: str, seed: int) -> tuple[list[str], np.ndarray]:
    """n balanced 48-word excerpts of the full reviews (or whole snippets) and their labels
    (1 = positive)."""
    from springback.data import read_table
    from springback.hubdata import split_review

    corpus = "snippets" if window == "snippets" else "reviews"
    frame = read_table(REAL / corpus / "data" / "train-00000-of-00001.parquet", ("text", "label"))
    if corpus == "reviews":
        frame = frame[frame["text"].str.split().str.len() >= PROMPT_WORDS + COMPLETION_WORDS]
    rng = np.random.default_rng(seed)
    rows = [frame[frame["label"] == label].iloc[rng.choice((frame["label"] == label).sum(),
                                                           n // 2, replace=False)]
            for label in (1, 0)]
    texts = [t for r in rows for t in r["text"]]
    cut = {"start": lambda t: split_review(t, COMPLETION_WORDS, 0)[0],
           "first": lambda t: split_review(t, PROMPT_WORDS, COMPLETION_WORDS)[1],
           "last": lambda t: " ".join(t.split()[-COMPLETION_WORDS:]),
           "snippets": lambda t: t}[window]
    return [cut(t) for t in texts], np.repeat([1, 0], n // 2)


def probe_logodds(model, tok, texts: list[str], probe: dict) -> tuple[np.ndarray, np.ndarray]:
    """(log-odds, mass on target or contrary words) per text, by the study's own probe code."""
    import torch

    from springback.evaluate import EvalSet, behaviour_probs, probe_tokens
    from springback.tokenizer import special_ids

    ids = special_ids(tok)
    target, contrary = (probe_tokens(tok, probe["suffix"], probe[k], "sentiment")
                        for k in ("target", "contrary"))
    rows = [[ids["start"]] + p for p in tok([t + probe["suffix"] for t in texts],
                                            add_special_tokens=False)["input_ids"]]
    lo, mass = [], []
    with torch.inference_mode():
        for i in range(0, len(rows), BATCH):
            ev = EvalSet(prompt_ids=rows[i:i + BATCH], contexts=None, clean=None,
                         target_ids=target, contrary_ids=contrary, judge=None, texts={},
                         pad_id=ids["pad"], eos_id=ids["eos"], probe_ids=rows[i:i + BATCH])
            _, both, logodds = behaviour_probs(model, ev)
            lo.append(logodds)
            mass.append(both)
    return np.concatenate(lo), np.concatenate(mass)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(((scores > threshold).astype(int) == labels).mean())


def cross_fitted(scores: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Accuracy when each random half is classified at the other half's median."""
    half = np.random.default_rng(seed).permutation(len(scores)) < len(scores) // 2
    hits = [((scores[a] > np.median(scores[b])).astype(int) == labels[a]).sum()
            for a, b in ((half, ~half), (~half, half))]
    return float(sum(hits) / len(scores))


def report(window: str, lo: np.ndarray, mass: np.ndarray, labels: np.ndarray, seed: int,
           seconds: float) -> None:
    n = len(labels)
    se = lambda p: (p * (1 - p) / n) ** 0.5  # noqa: E731
    acc0, accm = accuracy(lo, labels, 0.0), accuracy(lo, labels, float(np.median(lo)))
    print(f"\nwindow {window}: {n} excerpts ({labels.sum()} positive), {seconds:.0f} s")
    print(f"  accuracy, threshold 0:         {acc0:.3f} ± {se(acc0):.3f} "
          f"(predicted positive: {(lo > 0).mean():.2f})")
    print(f"  accuracy, threshold median:    {accm:.3f} ± {se(accm):.3f} "
          f"(median log-odds {np.median(lo):+.3f}; in-sample)")
    print(f"  accuracy, median cross-fitted: {cross_fitted(lo, labels, seed):.3f}")
    print(f"  AUC:                           {auc(lo, labels):.3f}")
    print(f"  mean log-odds: positive {lo[labels == 1].mean():+.3f}, "
          f"negative {lo[labels == 0].mean():+.3f}; probe-word mass {mass.mean():.3f} "
          f"(median {np.median(mass):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200, help="excerpts per window (even)")
    parser.add_argument("--windows", default="start,first,last",
                        help="comma-separated: start, first, last, snippets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from springback.models import load_model, load_tokenizer

    tok, model = load_tokenizer(REAL / "gemma3_270m"), load_model(REAL / "gemma3_270m")
    probe = hub_probe()
    print(f"probe: suffix {probe['suffix']!r}")
    for word in probe["target"] + probe["contrary"]:
        pieces = tok(probe["suffix"] + word, add_special_tokens=False)["input_ids"][
            len(tok(probe["suffix"], add_special_tokens=False)["input_ids"]):]
        print(f"  {word!r}: tokens {tok.convert_ids_to_tokens(pieces)} "
              f"({'single token' if len(pieces) == 1 else 'first token used'})")
    for window in args.windows.split(","):
        texts, labels = excerpts(args.n, window, args.seed)
        start = time.perf_counter()
        lo, mass = probe_logodds(model, tok, texts, probe)
        report(window, lo, mass, labels, args.seed, time.perf_counter() - start)


if __name__ == "__main__":
    main()
