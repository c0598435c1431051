"""Synthetic per-prompt tables with known answers, in the format of tables/prompts.parquet, for
the known-answer battery (tests/test_known_answers.py) and docs/statistics.md.

A case is a function (context, arm, x) -> log-odds per prompt context: ``context`` True for the
prompts whose pretrained context favours the target behaviour; arm 0 is the departure control
(the base perturbed directly), arms 1.. the aligned arms (lifted higher with n_pos). Curves are
integrated from a rate law (nats per example as a function of the current level) where that is
how the null is defined, so every case is a curve a real model could trace.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

X = np.array([0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
              288, 320, 384, 448], float)
N_POS = (0, 200, 400, 1000)
LIFT = {0: 0.0, 200: 3.5, 400: 4.5, 1000: 5.5}


def integrate(rate, start: float, x: np.ndarray = X, dt: float = 0.25) -> np.ndarray:
    """Level at each x of a curve dL/dn = -rate(L, n) from ``start`` (Euler, step dt)."""
    n = np.arange(0, x[-1] + dt, dt)
    level = np.empty_like(n)
    level[0] = start
    for i in range(1, len(n)):
        level[i] = level[i - 1] - dt * rate(level[i - 1], n[i - 1])
    return np.interp(x, n, level)


def table(curve, *, role: str = "main", world: str = "main", tokens: int = 3_000_000,
          direction: str = "forward", n_p: int = 3, n_f: int = 2, n_q: int = 40,
          noise: float = 0.05, seed: int = 0, size: str = "s", task: str = "sentiment",
          **keys) -> pd.DataFrame:
    """Per-prompt rows: log-odds = curve(context, n_pos, x) + noise (sd ``noise``, independent
    per prompt and checkpoint), half the prompts in each context, every cue clean. Reversed
    runs mirror the curve (the perturbation raises the log-odds)."""
    rng = np.random.default_rng(seed)
    sign = -1.0 if direction == "reversed" else 1.0
    frames = []
    context = np.arange(n_q) % 2 == 0
    for p in range(n_p):
        for f in range(n_f):
            for n_pos in N_POS:
                for ctx in (True, False):
                    mean = sign * curve(ctx, n_pos, X)
                    q = np.flatnonzero(context == ctx)
                    values = mean[:, None] + noise * rng.normal(size=(len(X), len(q)))
                    frames.append(pd.DataFrame({
                        "n_neg": np.repeat(X, len(q)), "prompt": np.tile(q, len(X)),
                        "logodds": values.ravel(), "context": ctx, "n_pos": n_pos,
                        "pretrain_seed": p, "seed": f + 1}))
    out = pd.concat(frames, ignore_index=True)
    out = out.assign(task=task, world=world, size=size, pretrain_tokens=tokens, algo="sft",
                     direction=direction, role=role, clean=True, **keys)
    return out.sort_values(["pretrain_seed", "seed", "n_pos", "n_neg", "prompt"],
                           ignore_index=True)


def context_free(level_of, gap: float = 5.0, erased: float = 0.5, gap_curve=None):
    """A case whose contexts sit +-gap/2 around one level curve level_of(n_pos, x): the base
    keeps the gap; alignment erases it to ``erased``; ``gap_curve(n_pos, x)`` (default: stays
    erased) is the aligned arms' gap along the perturbation."""
    def curve(ctx, n_pos, x):
        g = np.full_like(x, gap) if n_pos == 0 else (
            gap_curve(n_pos, x) if gap_curve else np.full_like(x, erased))
        return level_of(n_pos, x) + (g / 2 if ctx else -g / 2)
    return curve


def rate_case(rate, base: float = 0.0, lifts: dict = LIFT):
    """level_of(n_pos, x) integrating ``rate(L, n)`` from base + lift."""
    cache = {}

    def level_of(n_pos, x):
        if n_pos not in cache:
            cache[n_pos] = integrate(rate, base + lifts[n_pos], x)
        return cache[n_pos]
    return level_of


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# --- the cases ------------------------------------------------------------------------------------

def kink_at_base(base: float = 0.0, fast: float = 0.03, slow: float = 0.01):
    """A spring: fast until the base level, three times slower past it (the departure control
    leaves the base at the slow rate)."""
    return rate_case(lambda level, n: fast if level > base + 1e-9 else slow, base)


def log_decline(base: float = 0.0, b: float = 2.0, n0: float = 10.0):
    """Speed set by the examples seen, not the level: L = start - b ln(1 + n / n0)."""
    return lambda n_pos, x: base + LIFT[n_pos] - b * np.log1p(x / n0)


def symmetric_s(base: float = 0.0, top: float = 0.04, width: float = 6.0):
    """Saturation at both ends, symmetric about the base: fastest at the base level."""
    return rate_case(lambda level, n: top * max(1 - ((level - base) / width) ** 2, 0.02), base)


def saturation(base: float = 0.0, top: float = 0.035, anchor: float = 0.0):
    """Speed falls as the behaviour's probability does, at fixed log-odds ``anchor`` wherever the
    base is (cross-entropy geometry): dL/dn = -top * sigmoid(L - anchor)."""
    return rate_case(lambda level, n: top * sigmoid(level - anchor), base)


def single_timescale(base: float = 0.0, k: float = 0.01, floor: float = -4.6):
    """One exponential approach to a floor, no break anywhere."""
    return rate_case(lambda level, n: k * (level - floor), base)


def straight(base: float = 0.0, k: float = 0.03):
    return lambda n_pos, x: base + LIFT[n_pos] - k * x


def per_context_spring(base_gap: float = 6.0, fast: float = 0.03, slow: float = 0.008):
    """Each context springs back to its own pretrained level (+-gap/2): alignment lifts both to
    the same level, the perturbation brings each down fast until its own base, then slowly."""
    def curve(ctx, n_pos, x):
        own = base_gap / 2 if ctx else -base_gap / 2
        start = own if n_pos == 0 else 0.5 + LIFT[n_pos]
        return integrate(lambda level, n: fast if level > own + 1e-9 else slow, start, x)
    return curve
