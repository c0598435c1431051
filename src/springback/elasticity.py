"""The statistics core: rebound curves in log-odds, the elasticity statistics, and the paired
hierarchical bootstrap. curves.csv, the elasticity tables, claims.csv and the figures all come
from these functions.

A *condition* is one (task, world, size, pretrain_tokens, algo, direction); its per-prompt
log-odds form a cube ``V[pretrain_seed, seed, arm, n_neg, prompt]`` where arm 0 is the departure
control (n_pos = 0, the base perturbed directly) and the other arms the n_pos grid.

Statistics read mean log-odds curves L[arm, n_neg] (mean over prompts of log P(target) -
log P(contrary)) and cue-gap curves G[arm, n_neg] (clean-cue prompts: target-context mean minus
other-context mean), never the prompt-mean probability, which a context-blind model reproduces.
``s`` is the direction of the perturbation in log-odds: -1 forward (D_t lowers the target
behaviour), +1 reversed. The base level is L0 = L[0, 0]; y = s (L - L0) is the displacement
toward the perturbation (aligned arms start at y = -lift, reach the base level at y = 0).

The null of every statistic is *no pull toward the pretrained state*: a curve whose speed
depends on the examples seen (a smooth log-shaped decline), on the log-odds alone wherever the
base is (saturation, a single timescale), or on nothing (a straight line). Each statistic below
is built to read 0 on all of these (docs/statistics.md shows the null curves):

- ``kink_excess`` (C2, C8): does the curve slow down *at the base level* more than at nearby
  levels? K(y) = ln(examples to cross the band [y, y + h] / examples to cross [y - h, y]); the
  excess K(0) - (K(-h) + K(h)) / 2. A kink at the base gives ln(slope ratio); a straight line,
  a log decline (K constant) and an S-curve symmetric about the base (K odd) give 0.
- ``stiffness_excess`` (E1): does leaving the base level again cost the aligned model more
  examples than it costs the fresh base (the departure control), beyond the same ratio one band
  further on? R(y) = ln(aligned examples across [y, y + h] / departure examples across it);
  the excess R(0) - R(h). Curves whose speed depends on the level alone give R = 0; a log
  decline gives a constant R: both 0.
- ``recovery`` (E2): the cue gap when the aligned curve passes back through the base level
  (interpolated; the grid end if it never does: censored) minus the gap right after alignment,
  as a share of the reference base's gap. Read at a point the *level* curve fixes, never at the
  gap's own maximum (a maximum over noisy grid points is positive for a curve that recovers
  nothing); undefined when the reference gap is under ``MIN_GAP`` nats.
- ``return_speed_gain`` (C3): ln(examples the shallowest aligned arm needs from its start back
  to the base level / examples the deepest needs across the same levels): does more alignment
  spring back faster *from the same log-odds*? Not a count (a deeper alignment that returns
  later only because it starts higher reads 0) and not a rate over different levels (any speed
  that grows with the level, a single timescale toward the floor included, makes a
  higher-starting arm faster on average). A speed set by the examples seen (log decline) reads
  negative.
- ``return_rate`` (nats per example): the speed back toward the base level, from the aligned
  start to the last checkpoint before the base crossing; a run that has not returned by the
  grid end is censored and contributes its speed so far (displacement / exposure, the
  constant-rate estimate) instead of being dropped or clipped.
- ``return_speedup``: return rate / the departure control's speed over its first ``early``
  examples, scale-free across models of different plasticity (the C4 / C5 trends).

Bands are scale-free: h = ``band`` x the arm's own lift, so a control that moves less is read on
its own scale. E3 (the breakpoint follows the pretrained prior) compares conditions across
worlds and lives in ``registration_shift``.

Bootstrap: each replicate resamples pretraining seeds, then fine-tuning seeds within each, then
prompts within each context x clean group (every study builds the same number of prompts per
context), from shared uniform draws, so every condition with the same shape (an effect and its
controls: same seeds, same prompts) is resampled identically: an effect and its control are
compared within the replicate (paired). Replicate 0 is the point estimate (no resampling).
Undefined replicates are not dropped: a CI's low end treats them as -inf and its high end as
+inf (``summarise``), so a statistic that exists only in the replicates that favour it cannot
look decided.
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

    @property
    def strata(self) -> np.ndarray:
        """The resampling group of each prompt: context x clean."""
        return 2 * self.contexts.astype(int) + self.clean.astype(int)


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


def prompt_weights(draws: Draws, strata: np.ndarray) -> np.ndarray:
    """C[b, prompt]: prompt resample counts, each context x clean group resampled within itself
    from the draws at its own prompts' slots (row 0: every prompt once)."""
    n_q = len(strata)
    idx = np.empty((draws.prompt.shape[0], n_q), dtype=int)
    for group in np.unique(strata):
        members = np.flatnonzero(strata == group)
        idx[:, members] = members[np.floor(draws.prompt[:, members] * len(members)).astype(int)]
    return np.concatenate([np.ones((1, n_q)), _counts(idx, n_q)])


def _prompt_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the last (prompt) axis for every replicate: [..., B]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return values @ weights.T / weights.sum(1)


def _run_mean(per_run: np.ndarray, w: np.ndarray) -> np.ndarray:
    """per_run[p, f, ..., B] combined with run weights W[B, p, f] -> [B, ...]."""
    total = np.einsum("bpf,pf...b->b...", w, per_run)
    return total / w.sum((1, 2)).reshape((-1,) + (1,) * (total.ndim - 1))


def _level_and_gap(cube: Cube, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prompt means (level, cue gap) of every run for prompt weights c: [p, f, arm, n_neg, B]."""
    level = _prompt_mean(cube.values, c)
    on = _prompt_mean(cube.values, c * (cube.contexts & cube.clean))
    off = _prompt_mean(cube.values, c * (~cube.contexts & cube.clean))
    return level, on - off


def replicate_curves(cube: Cube, draws: Draws) -> tuple[np.ndarray, np.ndarray]:
    """Mean log-odds L[b, arm, n_neg] and cue gap G[b, arm, n_neg] of every replicate."""
    n_p, n_f = cube.values.shape[:2]
    level, gap = _level_and_gap(cube, prompt_weights(draws, cube.strata))
    w = run_weights(draws, n_p, n_f)
    return _run_mean(level, w), _run_mean(gap, w)


def run_curves(cube: Cube) -> tuple[np.ndarray, np.ndarray]:
    """Per-run mean log-odds and cue gap curves: [pretrain_seed, seed, arm, n_neg] each."""
    level, gap = _level_and_gap(cube, np.ones((1, cube.values.shape[-1])))
    return level[..., 0], gap[..., 0]


def replicate_metric(values: np.ndarray, draws: Draws) -> np.ndarray:
    """A checkpoint-level metric C[pseed, seed, arm, n_neg] averaged over each replicate's runs."""
    n_p, n_f = values.shape[:2]
    return _run_mean(values[..., None], run_weights(draws, n_p, n_f))


# --- statistics of curves (vectorised over leading axes) ----------------------------------------

def crossing_times(x: np.ndarray, y: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """First x at which an increasing-direction curve ``y[..., n]`` reaches each of
    ``levels[..., k]`` (broadcast against y's leading axes), linearly interpolated between grid
    points: [..., k]; x[0] where it starts at or past the level, NaN where it never gets there."""
    z = y[..., None, :] - np.asarray(levels)[..., None]
    reached = z >= 0
    k = np.argmax(reached, axis=-1)
    prev = np.maximum(k - 1, 0)
    z_k = np.take_along_axis(z, k[..., None], -1)[..., 0]
    z_p = np.take_along_axis(z, prev[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(k > 0, -z_p / (z_k - z_p), 0.0)
    out = x[prev] + frac * (x[k] - x[prev])
    return np.where(reached.any(-1), out, np.nan)


def first_crossing(x: np.ndarray, y: np.ndarray, level: np.ndarray, sign: float) -> np.ndarray:
    """First x at which ``sign * (y - level)`` reaches 0 along the last axis (see
    ``crossing_times``)."""
    return crossing_times(x, sign * y, sign * np.asarray(level)[..., None])[..., 0]


def value_at(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """y[..., n] linearly interpolated at ``at[...]`` (one point per curve; NaN where NaN)."""
    at = np.broadcast_to(np.asarray(at, float), y.shape[:-1])
    k = np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(x) - 2)
    k = np.where(np.isfinite(at), k, 0)
    with np.errstate(invalid="ignore"):
        frac = (at - x[k]) / (x[k + 1] - x[k])
    lo = np.take_along_axis(y, k[..., None], -1)[..., 0]
    hi = np.take_along_axis(y, (k + 1)[..., None], -1)[..., 0]
    return np.where(np.isfinite(at), lo + frac * (hi - lo), np.nan)


MIN_GAP = 0.5  # nats: a base cue gap below this is no context mapping (pre-emergence: ~0.00)
BAND = 0.125   # default band half-width and placebo offset, as a share of the arm's own lift
EARLY = 64     # default examples over which the departure control's speed is read
MIN_EXCESS = 0.1  # default smallest kink / stiffness excess that counts (ln units; see claims)


def _log(a: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), np.nan)


def curve_stats(x: np.ndarray, level: np.ndarray, gap: np.ndarray, sign: float, *,
                band: float = BAND, early: float = EARLY,
                gap_ref: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every elasticity statistic of curves L[..., arm, n_neg] and G[..., arm, n_neg]; each
    value is [..., arm] (NaN on the departure arm where a statistic needs an alignment).
    ``gap_ref``: the cue gap the recovery is a share of (default: this base's own)."""
    base = level[..., 0, 0]
    y = sign * (level - base[..., None, None])            # displacement toward the perturbation
    lift = -y[..., 0]
    aligned = lift > 0
    h = np.where(aligned, band * lift, np.nan)            # [..., arm]
    offsets = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    t = crossing_times(x, y, h[..., None] * offsets)       # aligned arm at -2h .. 2h: [..., arm, 5]
    t_dep = crossing_times(x, y[..., :1, :], h[..., None] * offsets[2:])  # departure at 0, h, 2h
    cross = np.diff(t, axis=-1)                           # examples across each band [-2h..2h]
    k = _log(cross[..., 1:]) - _log(cross[..., :-1])      # K(-h), K(0), K(h)
    dep_cross = np.diff(t_dep, axis=-1)                   # departure across [0, h], [h, 2h]
    r = _log(cross[..., 2:]) - _log(dep_cross)            # R(0), R(h)
    back = t[..., 2]
    end = x[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return_rate = return_speed(x, y, lift, back)
        dep_speed = value_at(x, y[..., 0, :], np.asarray(float(early))) / early
        ref = base_gap_ref(gap, gap_ref)
        at = np.where(np.isfinite(back), back, end)
        gap_back = value_at(x, gap, at)
        out = {
            "base_level": np.broadcast_to(base[..., None], lift.shape).copy(),
            "lift": lift,
            "return_count": back,
            "return_rate": np.where(aligned, return_rate, np.nan),
            "departure_rate": np.broadcast_to(dep_speed[..., None], lift.shape).copy(),
            "return_speed_gain": speed_gain(x, y, lift),
            "kink_excess": k[..., 1] - 0.5 * (k[..., 0] + k[..., 2]),
            "stiffness_excess": r[..., 0] - r[..., 1],
            "aligned_gap_share": gap[..., 0] / ref,
            "gap_at_return_share": gap_back / ref,
        }
        out["return_speedup"] = np.where(out["departure_rate"] > 0,
                                         out["return_rate"] / out["departure_rate"], np.nan)
    out["recovery"] = np.where(aligned, out["gap_at_return_share"] - out["aligned_gap_share"],
                               np.nan)
    return out


def return_speed(x: np.ndarray, y: np.ndarray, lift: np.ndarray,
                 back: np.ndarray) -> np.ndarray:
    """Speed (nats per example) from the aligned start to the last checkpoint still on the
    aligned side before the base crossing ``back`` (its displacement over its examples: no
    interpolation across a slow-down at the base); a run that has not returned by the grid end
    (censored) contributes its speed over the whole grid; a crossing before the first
    checkpoint, lift / crossing."""
    before = (x < np.where(np.isfinite(back), back, np.inf)[..., None]) & (y < 0)
    last = np.where(before, np.arange(len(x)), 0).max(-1)
    reached = np.take_along_axis(y, last[..., None], -1)[..., 0] + lift
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(last > 0, reached / x[last], lift / back)


def speed_gain(x: np.ndarray, y: np.ndarray, lift: np.ndarray) -> np.ndarray:
    """Per aligned arm: ln(examples the shallowest aligned arm (arm 1) needs from its start
    back to the base level / examples this arm needs across the same levels) - positive when
    the deeper alignment moves back faster *from the same log-odds*, so neither the head start
    of a higher lift nor a speed that depends on the level alone (saturation, a single
    timescale, a kink at the base) can produce it. Levels: the lower of the two lifts."""
    common = np.minimum(lift, lift[..., 1:2])
    t = crossing_times(x, y, np.stack([-common, np.zeros_like(common)], -1))
    across = t[..., 1] - t[..., 0]
    return np.where(lift > 0, _log(across[..., 1:2]) - _log(across), np.nan)


def base_gap_ref(gap: np.ndarray, gap_ref: np.ndarray | None) -> np.ndarray:
    """The cue gap recoveries are shares of, [..., 1]: this base's own, or ``gap_ref``; NaN
    where it is under ``MIN_GAP`` nats (a base without the mapping has nothing to recover)."""
    ref = gap[..., 0, 0] if gap_ref is None else np.asarray(gap_ref, float)
    ref = np.where(np.abs(ref) < MIN_GAP, np.nan, ref)
    return ref[..., None]


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


# --- E3: does the rebound follow the pretrained prior? ------------------------------------------

LEVEL_STEP = 0.05  # nats: the level grid of the registration


def level_profile(x: np.ndarray, level: np.ndarray, sign: float,
                  grid: np.ndarray) -> np.ndarray:
    """Examples each aligned arm needs to reach every absolute log-odds level of ``grid``
    (moving in the perturbation's direction): [..., aligned arm, level]; NaN at levels the arm
    starts past (nothing to cross) or never reaches."""
    t = crossing_times(x, sign * level[..., 1:, :], sign * grid)
    return np.where(t > x[0], t, np.nan)


RATE_WINDOW = 0.5  # nats: the level window over which the registration reads a curve's speed


def log_slowness(profile: np.ndarray, *, step: float = LEVEL_STEP,
                 window: float = RATE_WINDOW) -> np.ndarray:
    """ln(examples per nat) at every level of a level-time profile [..., level]: the time the
    curve takes to cross a ``window``-wide band centred on the level (NaN where not crossed)."""
    k = max(int(round(window / step / 2)), 1)
    out = np.full(profile.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        across = np.abs(profile[..., :-2 * k] - profile[..., 2 * k:]) / (2 * k * step)
        out[..., k:-k] = np.where(across > 0, np.log(np.where(across > 0, across, 1)), np.nan)
    return out


def registration_shift(ref: np.ndarray, other: np.ndarray, *, step: float = LEVEL_STEP,
                       shifts: np.ndarray | None = None, min_overlap: int = 40) -> np.ndarray:
    """The level shift delta (nats) that best superimposes ``other``'s speed profile on
    ``ref``'s. Profiles are level-time profiles [B, arm, level] on one grid of ``step``
    (``level_profile``); each becomes ln(examples per nat) by level (``log_slowness``), and
    delta minimises the mean squared difference of other(level + delta) - ref(level) - c over
    the levels both cross, c a free constant (one model may be faster everywhere). Returns [B]
    (NaN where no shift overlaps ``min_overlap`` levels). A speed set by the log-odds wherever
    the base is (saturation) gives 0; one set by the distance to the base gives the base's
    shift; one set by the examples seen (a log decline: ln slowness linear in the level) fits
    every shift equally and reads as noise."""
    shifts = np.arange(-30, 71) if shifts is None else shifts
    ref, other = log_slowness(ref, step=step), log_slowness(other, step=step)
    n = ref.shape[-1]
    best, best_j = np.full(ref.shape[0], np.inf), np.full(ref.shape[0], np.nan)
    for j in shifts:
        moved = np.full_like(other, np.nan)
        lo, hi = max(0, -j), min(n, n - j)
        moved[..., lo:hi] = other[..., lo + j:hi + j]
        diff = (moved - ref).reshape(len(ref), -1)
        valid = np.isfinite(diff)
        count = valid.sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(valid, diff, 0).sum(-1) / count
            mse = np.where(valid, (diff - c[:, None]) ** 2, 0).sum(-1) / count
        mse = np.where(count >= min_overlap, mse, np.inf)
        better = mse < best
        best, best_j = np.where(better, mse, best), np.where(better, j, best_j)
    return best_j * step


# --- summaries ---------------------------------------------------------------------------------

def slope(x: np.ndarray, values: np.ndarray, min_points: int | None = None) -> np.ndarray:
    """Least-squares slope of values[b, point] on x[point] per replicate b. Without
    ``min_points``: NaN where any point is NaN (the trend claims: every point of a series must
    exist). With it: fitted through each replicate's finite points, NaN unless there are at
    least ``min_points`` of them at two x or more (C7's k fit, which has no ratio where D_p did
    not improve)."""
    if min_points is not None:
        out = np.full(len(values), np.nan)
        for b, row in enumerate(values):
            ok = np.isfinite(row)
            if ok.sum() >= min_points and len(np.unique(x[ok])) >= 2:
                out[b] = slope(x[ok], row[None, ok])[0]
        return out
    xc = x - x.mean()
    with np.errstate(invalid="ignore"):
        out = (values - values.mean(1, keepdims=True)) @ xc / (xc @ xc)
    return np.where(np.isfinite(values).all(1), out, np.nan)


def summarise(reps: np.ndarray, max_undefined: float = 0.5) -> tuple[float, float, float]:
    """(point, 2.5 %, 97.5 %) of replicate values (row 0 = point estimate). Undefined replicates
    count against every verdict: the low end takes them as -inf, the high end as +inf (so more
    than 2.5 % undefined leaves that end unbounded). No CI (NaN) when the point estimate is
    undefined or more than ``max_undefined`` of the replicates are."""
    point, boot = float(reps[0]), np.asarray(reps[1:], float)
    finite = np.isfinite(boot)
    if not np.isfinite(point) or not boot.size or (~finite).mean() > max_undefined:
        return point, np.nan, np.nan
    low = np.quantile(np.where(finite, boot, -np.inf), 0.025, method="lower")
    high = np.quantile(np.where(finite, boot, np.inf), 0.975, method="higher")
    return point, float(low), float(high)


def verdict(low: float, high: float, null: float) -> str:
    """supported: the CI lies above the null (the paper's side); refuted: below; inconclusive:
    it straddles it; undetermined: no CI."""
    if np.isnan(low) or np.isnan(high):
        return "undetermined"
    if low > null:
        return "supported"
    if high < null:
        return "refuted"
    return "inconclusive"


def equivalence(low: float, high: float, margin: float) -> str:
    """For a claim of equality (a value of 0 within +-margin): supported when the CI lies
    inside the margin (two one-sided tests at 2.5 % each), refuted when it lies wholly outside,
    inconclusive otherwise, undetermined without a CI."""
    if np.isnan(low) or np.isnan(high):
        return "undetermined"
    if -margin < low and high < margin:
        return "supported"
    if low > margin or high < -margin:
        return "refuted"
    return "inconclusive"
