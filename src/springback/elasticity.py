"""The statistics core: rebound curves in log-odds, their elasticity statistics, and the paired
hierarchical bootstrap. curves.csv, the elasticity tables, claims.csv and the figures all come
from these functions.

A *condition* is one (task, world, size, pretrain_tokens, algo, direction); its per-prompt
log-odds form a cube ``V[pretrain_seed, seed, arm, n_neg, prompt]`` where arm 0 is the departure
control (n_pos = 0, the base perturbed directly) and the other arms the n_pos grid.

Statistics read mean log-odds curves L[arm, n_neg] (mean over prompts of log P(target) -
log P(contrary)) and cue-gap curves G[arm, n_neg] (clean-cue prompts: target-context mean minus
other-context mean), never the prompt-mean probability, which a context-blind model reproduces.
``s`` is the direction of the perturbation in log-odds: -1 forward (D_t lowers the target
behaviour), +1 reversed. The base level is L0 = L[0, 0].

- return count: perturbation examples until L reaches L0 (linear interpolation between grid
  points; NaN if never);
- beyond count: further examples until L is ``beyond`` nats past L0 (default 2);
- departure count: examples the departure control needs to move ``beyond`` nats from L0;
- retained stiffness S = beyond count / departure count (elastic: S > 1, the pretrained state
  resists being left again more than a fresh base does);
- two-phase ratio T = slope before the base crossing / slope after it, the breakpoint anchored at
  the crossing (each slope = displacement / examples over its segment): a straight line in
  log-odds gives 1, a kink at the base level gives the slope ratio;
- context recovery E2 = (peak cue gap over the perturbation - cue gap right after alignment) /
  the reference base's cue gap (a model that never follows context recovers nothing; a gap that
  alignment did not erase is not counted as recovered; undefined when the reference gap is under
  ``MIN_GAP`` nats: a base without the mapping has nothing to recover, and a share of ~0 is noise).

Bootstrap: each replicate resamples pretraining seeds, then fine-tuning seeds within each, then
prompts, from shared uniform draws, so every condition with the same shape (the main base and
its random-init and pre-emergence controls: same seeds, same prompts) is resampled identically:
an effect and its control are compared within the replicate (paired). Replicate 0 is the point
estimate (no resampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CONDITION = ["task", "world", "size", "pretrain_tokens", "algo", "direction"]
RUN = ["pretrain_seed", "seed"]
AXES = RUN + ["n_pos", "n_neg", "prompt"]


@dataclass
class Cube:
    """Per-prompt log-odds of one condition, V[pretrain_seed, seed, arm, n_neg, prompt]."""

    values: np.ndarray
    n_pos: np.ndarray
    n_neg: np.ndarray
    contexts: np.ndarray  # per prompt: True in the context that favours the target behaviour
    clean: np.ndarray     # per prompt: every cue agrees with the context
    sign: float           # -1 forward, +1 reversed

    @property
    def runs(self) -> int:
        return self.values.shape[0] * self.values.shape[1]


def make_cube(frame: pd.DataFrame, metric: str = "logodds") -> Cube:
    """Reshape one condition's per-prompt rows into a complete cube (fails on a hole)."""
    frame = frame.sort_values(AXES)
    shape = [frame[c].nunique() for c in AXES]
    if int(np.prod(shape)) != len(frame):
        raise ValueError(f"incomplete grid of checkpoints: {dict(zip(AXES, shape))} vs {len(frame)} rows")
    first = frame.drop_duplicates("prompt").sort_values("prompt")
    return Cube(frame[metric].to_numpy(float).reshape(shape), np.sort(frame["n_pos"].unique()),
                np.sort(frame["n_neg"].unique()), first["context"].to_numpy(bool),
                first["clean"].to_numpy(bool),
                1.0 if frame["direction"].iloc[0] == "reversed" else -1.0)


def condition_cubes(prompts: pd.DataFrame, n_boot: int, *, metric: str = "logodds",
                    seed: int = 0) -> tuple[dict[tuple, Cube], "Draws"]:
    """A cube per (condition, role) of a per-prompt table, and the bootstrap draws they share."""
    shape = tuple(prompts[c].nunique() for c in ("pretrain_seed", "seed", "prompt"))
    cubes = {key: make_cube(frame, metric)
             for key, frame in prompts.groupby(CONDITION + ["role"])}
    return cubes, make_draws(n_boot, shape, seed)


# --- the paired hierarchical bootstrap ---------------------------------------------------------

@dataclass
class Draws:
    """Shared uniform draws of a bootstrap: pretraining-seed slots, seed slots, prompt slots."""

    pseed: np.ndarray   # [B, max pretraining seeds]
    seed: np.ndarray    # [B, max pretraining seeds, max seeds]
    prompt: np.ndarray  # [B, max prompts]


def make_draws(n_boot: int, shape: tuple[int, int, int], seed: int = 0) -> Draws:
    rng = np.random.default_rng(seed)
    n_p, n_f, n_q = shape
    return Draws(rng.random((n_boot, n_p)), rng.random((n_boot, n_p, n_f)),
                 rng.random((n_boot, n_q)))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Counts of each of n items per row of an index matrix [B, k] -> [B, n]."""
    rows = np.arange(idx.shape[0])[:, None]
    out = np.zeros((idx.shape[0], n))
    np.add.at(out, (np.broadcast_to(rows, idx.shape), idx), 1.0)
    return out


def run_weights(draws: Draws, n_p: int, n_f: int) -> np.ndarray:
    """W[b, pseed, seed]: how often each run enters replicate b (row 0: every run once)."""
    p_idx = np.floor(draws.pseed[:, :n_p] * n_p).astype(int)
    f_idx = np.floor(draws.seed[:, :n_p, :n_f] * n_f).astype(int)
    w = np.zeros((len(p_idx), n_p, n_f))
    for slot in range(n_p):
        counts = _counts(f_idx[:, slot], n_f)
        w[np.arange(len(p_idx)), p_idx[:, slot]] += counts
    return np.concatenate([np.ones((1, n_p, n_f)), w])


def prompt_weights(draws: Draws, n_q: int) -> np.ndarray:
    """C[b, prompt]: prompt resample counts (row 0: every prompt once)."""
    idx = np.floor(draws.prompt[:, :n_q] * n_q).astype(int)
    return np.concatenate([np.ones((1, n_q)), _counts(idx, n_q)])


def _prompt_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the last (prompt) axis for every replicate: [..., B]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return values @ weights.T / weights.sum(1)


def _run_mean(per_run: np.ndarray, w: np.ndarray) -> np.ndarray:
    """per_run[p, f, ..., B] combined with run weights W[B, p, f] -> [B, ...]."""
    total = np.einsum("bpf,pf...b->b...", w, per_run)
    return total / w.sum((1, 2)).reshape((-1,) + (1,) * (total.ndim - 1))


def replicate_curves(cube: Cube, draws: Draws) -> tuple[np.ndarray, np.ndarray]:
    """Mean log-odds L[b, arm, n_neg] and cue gap G[b, arm, n_neg] of every replicate."""
    n_p, n_f, _, _, n_q = cube.values.shape
    c = prompt_weights(draws, n_q)
    w = run_weights(draws, n_p, n_f)
    level = _prompt_mean(cube.values, c)
    on = _prompt_mean(cube.values, c * (cube.contexts & cube.clean))
    off = _prompt_mean(cube.values, c * (~cube.contexts & cube.clean))
    return _run_mean(level, w), _run_mean(on - off, w)


def run_curves(cube: Cube) -> tuple[np.ndarray, np.ndarray]:
    """Per-run mean log-odds and cue gap curves: [pretrain_seed, seed, arm, n_neg] each."""
    ones = np.ones((1, cube.values.shape[-1]))
    level = _prompt_mean(cube.values, ones)[..., 0]
    on = _prompt_mean(cube.values, ones * (cube.contexts & cube.clean))[..., 0]
    off = _prompt_mean(cube.values, ones * (~cube.contexts & cube.clean))[..., 0]
    return level, on - off


def replicate_metric(values: np.ndarray, draws: Draws) -> np.ndarray:
    """A checkpoint-level metric C[pseed, seed, arm, n_neg] averaged over each replicate's runs."""
    n_p, n_f = values.shape[:2]
    return _run_mean(values[..., None], run_weights(draws, n_p, n_f))


# --- statistics of curves (vectorised over leading axes) ----------------------------------------

def first_crossing(x: np.ndarray, y: np.ndarray, level: np.ndarray, sign: float) -> np.ndarray:
    """First x at which ``sign * (y - level)`` reaches 0 along the last axis, linearly
    interpolated between grid points; x[0] if it starts there, NaN if it never gets there."""
    z = sign * (y - np.asarray(level)[..., None])
    reached = z >= 0
    k = np.argmax(reached, axis=-1)
    prev = np.maximum(k - 1, 0)
    z_k = np.take_along_axis(z, k[..., None], -1)[..., 0]
    z_p = np.take_along_axis(z, prev[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(k > 0, -z_p / (z_k - z_p), 0.0)
    out = x[prev] + frac * (x[k] - x[prev])
    return np.where(reached.any(-1), out, np.nan)


MIN_GAP = 0.5  # nats: a base cue gap below this is no context mapping (pre-emergence: ~0.00)


def curve_stats(x: np.ndarray, level: np.ndarray, gap: np.ndarray, sign: float, *,
                beyond: float = 2.0, gap_ref: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every elasticity statistic of curves L[..., arm, n_neg] and G[..., arm, n_neg]; each
    value is [..., arm] (the departure arm's own entries are NaN where undefined).
    ``gap_ref``: the cue gap the recovery is a share of (default: this base's own)."""
    base = level[..., 0, 0][..., None]
    base_gap = gap[..., 0, 0][..., None] if gap_ref is None else np.asarray(gap_ref)[..., None]
    # a reference without the mapping (|gap| < MIN_GAP nats) leaves nothing to recover
    base_gap = np.where(np.abs(base_gap) < MIN_GAP, np.nan, base_gap)
    departure = first_crossing(x, level[..., 0, :], base[..., 0] + sign * beyond, sign)[..., None]
    back = first_crossing(x, level, base, sign)
    past = first_crossing(x, level, base + sign * beyond, sign) - back
    lift = -sign * (level[..., 0] - base)
    with np.errstate(invalid="ignore", divide="ignore"):
        two_phase = np.where(back > 0, (lift / back) / (beyond / past), np.nan)
        out = {
            "base_level": np.broadcast_to(base, lift.shape), "lift": lift,
            "return_count": back, "beyond_count": past,
            "departure_count": np.broadcast_to(departure, lift.shape),
            "stiffness": past / departure, "two_phase": two_phase,
            "aligned_gap_share": gap[..., 0] / base_gap,
            "peak_gap_share": (gap[..., 1:] / base_gap[..., None]).max(-1),
        }
    out["recovery"] = out["peak_gap_share"] - out["aligned_gap_share"]
    return out


def kl_stats(x: np.ndarray, kl: np.ndarray) -> dict[str, np.ndarray]:
    """KL rebound (paper Table 3 analogue) of KL curves [..., arm, n_neg] (NaN where not
    measured): the minimum along the perturbation as a share of the KL after alignment, and
    where it occurs."""
    later = np.where(np.isnan(kl[..., 1:]), np.inf, kl[..., 1:])
    k = later.argmin(-1)
    low = np.take_along_axis(later, k[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"kl_aligned": kl[..., 0], "kl_min": np.where(np.isinf(low), np.nan, low),
                "kl_min_share": np.where(np.isinf(low), np.nan, low) / kl[..., 0],
                "kl_min_at": np.where(np.isinf(low), np.nan, x[1:][k])}


# --- summaries ---------------------------------------------------------------------------------

def summarise(reps: np.ndarray, min_share: float = 0.5) -> tuple[float, float, float]:
    """(point, 2.5 %, 97.5 %) of replicate values (row 0 = point estimate); the CI is NaN when
    fewer than ``min_share`` of the replicates are finite (e.g. a curve that never returns)."""
    boot = reps[1:][np.isfinite(reps[1:])]
    if boot.size < min_share * max(len(reps) - 1, 1):
        return float(reps[0]), np.nan, np.nan
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(reps[0]), float(low), float(high)


def verdict(low: float, high: float, null: float) -> str:
    """supported: the CI lies above the null (the paper's side); refuted: below; inconclusive:
    it straddles it; undetermined: no CI (too few finite replicates)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undetermined"
    if low > null:
        return "supported"
    if high < null:
        return "refuted"
    return "inconclusive"
