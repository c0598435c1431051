"""Statistics for rebound curves: bootstrap CIs, two-phase fits, verdicts.

A rebound curve is a behaviour score ``y`` (share of positive outputs, mean
log-odds, ...) as a function of ``n_neg``, the number of perturbation
examples, measured for several seeds and several prompts per checkpoint.

Every random function takes ``seed: int`` and draws from
``np.random.default_rng(seed)``, so results are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

_EXPECTED = ("greater", "less")
_BANK_CACHE_MAX = 32


# --------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------


def _percentile_ci(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of the non-NaN entries of ``boot`` (NaN if none)."""
    boot = boot[~np.isnan(boot)]
    if boot.size == 0:
        return (np.nan, np.nan)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))


def _apply_rows(stat: Callable, samples: np.ndarray) -> np.ndarray:
    """``stat`` of each row, using its ``axis`` argument when it has one."""
    try:
        out = np.asarray(stat(samples, axis=1), dtype=float)
    except TypeError:
        out = np.array([stat(row) for row in samples], dtype=float)
    if out.shape != (samples.shape[0],):
        raise ValueError("stat must map a 1-D array to a scalar")
    return out


def bootstrap_ci(
    values: np.ndarray,
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    stat: Callable = np.mean,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` over a 1-D array (NaNs dropped).

    One value gives the degenerate interval ``(v, v)``; no value gives NaNs.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    if v.size <= 1:
        x = float(v[0]) if v.size else np.nan
        return (x, x)
    idx = np.random.default_rng(seed).integers(0, v.size, (n_boot, v.size))
    return _percentile_ci(_apply_rows(stat, v[idx]), alpha)


def _count_bank(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """(n_boot, n) matrix of multinomial resample counts of n items."""
    idx = rng.integers(0, n, (n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _seed_resample_means(
    per_seed: list[np.ndarray], banks: dict, rng: np.random.Generator, n_boot: int
) -> np.ndarray:
    """(n_seeds, n_boot) prompt-resample means, one bank of counts per seed slot."""
    rows = []
    for slot, v in enumerate(per_seed):
        key = (slot, v.size)
        if key not in banks:
            if len(banks) >= _BANK_CACHE_MAX:
                banks.clear()
            banks[key] = _count_bank(rng, n_boot, v.size)
        rows.append(banks[key] @ v / v.size)
    return np.stack(rows)


def _two_level_ci(
    means: np.ndarray, rng: np.random.Generator, alpha: float
) -> tuple[float, float]:
    """CI of the mean over resampled seeds, each with its own prompt resample.

    Slot ``j`` of replicate ``b`` takes column ``(b + j) % n_boot``, so a seed
    drawn twice in one replicate gets two independent prompt resamples.
    """
    n_seeds, n_boot = means.shape
    sidx = rng.integers(0, n_seeds, (n_boot, n_seeds))
    cols = (np.arange(n_boot)[:, None] + np.arange(n_seeds)) % n_boot
    return _percentile_ci(means[sidx, cols].mean(axis=1), alpha)


def _split_by_seed(seeds: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
    """Split ``values`` into runs of equal (already sorted) ``seeds``."""
    cuts = np.flatnonzero(seeds[1:] != seeds[:-1]) + 1
    return np.split(values, cuts)


def hierarchical_bootstrap_means(
    table: pd.DataFrame,
    *,
    group_cols: list[str],
    seed_col: str = "seed",
    unit_col: str = "prompt",
    value_col: str = "value",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean over seeds of per-seed prompt means, with a two-level bootstrap CI.

    Rows sharing (group, seed, unit) are first averaged, so the prompt is the
    resampling unit; NaN values are dropped and groups left with no value are
    omitted. Each bootstrap replicate resamples seeds with replacement, then
    prompts within each chosen seed. Prompt resamples are drawn from count
    banks shared by groups with the same seed slot and prompt count: each
    group's CI is an exact two-level bootstrap, only the Monte Carlo noise is
    correlated across groups. Returns ``group_cols + ["mean", "ci_low",
    "ci_high", "n_seeds"]``, sorted by group.
    """
    keys = [*group_cols, seed_col, unit_col]
    agg = table.groupby(keys, sort=True)[value_col].mean().dropna().reset_index()
    values = agg[value_col].to_numpy(dtype=float)
    seeds = agg[seed_col].to_numpy()
    rng, banks, rows = np.random.default_rng(seed), {}, []
    for key, idx in agg.groupby(list(group_cols), sort=True).indices.items():
        per_seed = _split_by_seed(seeds[idx], values[idx])
        means = _seed_resample_means(per_seed, banks, rng, n_boot)
        point = float(np.mean([v.mean() for v in per_seed]))
        low, high = _two_level_ci(means, rng, alpha)
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, point, low, high, len(per_seed)))
    columns = [*group_cols, "mean", "ci_low", "ci_high", "n_seeds"]
    return pd.DataFrame(rows, columns=columns)


def seed_bootstrap(
    per_seed: np.ndarray,
    fn: Callable[[np.ndarray], float],
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(fn(per_seed), low, high)`` with a CI from resampling seeds (rows).

    ``per_seed`` has shape ``(n_seeds, ...)``; ``fn`` maps an array of that
    shape to a float. Replicates where ``fn`` returns NaN are ignored; if all
    are NaN the CI is NaN.
    """
    arr = np.asarray(per_seed)
    rng = np.random.default_rng(seed)
    n = arr.shape[0]
    boot = np.array([fn(arr[rng.integers(0, n, n)]) for _ in range(n_boot)], dtype=float)
    return (float(fn(arr)), *_percentile_ci(boot, alpha))


# --------------------------------------------------------------------------
# Two-phase (hinge) fit
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoPhaseFit:
    """Continuous two-segment fit ``y = a + b1*x + (b2-b1)*max(x-c, 0)``.

    ``aic*`` are Gaussian AICs ``n*log(sse/n) + 2k`` (k=4 hinge, k=2 line);
    ``delta_aic = aic1 - aic2`` (positive favours two phases); ``lr_stat`` /
    ``lr_p`` is an approximate likelihood-ratio test, chi2 with 2 df.
    """

    breakpoint: float
    slope1: float
    slope2: float
    intercept: float
    sse2: float
    sse1: float
    aic2: float
    aic1: float
    delta_aic: float
    lr_stat: float
    lr_p: float
    slope_ratio: float


def _hinge_lstsq(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Coefficients (a, b1, b2 - b1) and SSE of the hinge at breakpoint c."""
    design = np.column_stack([np.ones_like(x), x, np.maximum(x - c, 0.0)])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return coef, float(np.sum((y - design @ coef) ** 2))


def _best_breakpoint(x: np.ndarray, y: np.ndarray, n_grid: int = 200) -> float:
    """Grid search over ``n_grid`` interior breakpoints, then bounded refinement."""
    lo, hi = float(x.min()), float(x.max())
    grid = np.linspace(lo, hi, n_grid + 2)
    sses = [_hinge_lstsq(x, y, c)[1] for c in grid[1:-1]]
    k = int(np.argmin(sses)) + 1
    res = optimize.minimize_scalar(
        lambda c: _hinge_lstsq(x, y, c)[1],
        bounds=(grid[k - 1], grid[k + 1]),
        method="bounded",
    )
    return float(res.x) if res.fun < sses[k - 1] else float(grid[k])


def _gaussian_aic(sse: float, n: int, k: int) -> float:
    return float(n * np.log(sse / n) + 2 * k)


def _slope_ratio(slope1: float, slope2: float) -> float:
    """slope1/slope2; ±inf (sign of slope1) if slope2 ~ 0, NaN if both are."""
    if abs(slope2) >= 1e-12:
        return slope1 / slope2
    return float(np.sign(slope1) * np.inf) if slope1 != 0 else np.nan


def _clean_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float copies of x, y with non-finite pairs dropped."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.size} vs {y.size})")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def fit_two_phase(x: np.ndarray, y: np.ndarray) -> TwoPhaseFit:
    """Least-squares hinge fit vs a straight line (repeated x values allowed).

    Needs at least 4 distinct finite x values. SSEs are floored at a tiny
    fraction of the total sum of squares so that exact fits keep finite AICs.
    """
    x, y = _clean_xy(x, y)
    n_distinct = np.unique(x).size
    if n_distinct < 4:
        raise ValueError(f"fit_two_phase needs >= 4 distinct x values, got {n_distinct}")
    c = _best_breakpoint(x, y)
    (a, b1, d), sse2 = _hinge_lstsq(x, y, c)
    sse1 = float(np.sum((y - np.polyval(np.polyfit(x, y, 1), x)) ** 2))
    floor = max(float(np.sum((y - y.mean()) ** 2)) * 1e-20, np.finfo(float).tiny)
    sse1, sse2 = max(sse1, floor), max(min(sse2, sse1), floor)
    n = x.size
    aic1, aic2 = _gaussian_aic(sse1, n, 2), _gaussian_aic(sse2, n, 4)
    lr_stat = max(float(n * np.log(sse1 / sse2)), 0.0)
    return TwoPhaseFit(
        breakpoint=c, slope1=float(b1), slope2=float(b1 + d), intercept=float(a),
        sse2=sse2, sse1=sse1, aic2=aic2, aic1=aic1, delta_aic=aic1 - aic2,
        lr_stat=lr_stat, lr_p=float(sps.chi2.sf(lr_stat, 2)),
        slope_ratio=_slope_ratio(float(b1), float(b1 + d)),
    )


# --------------------------------------------------------------------------
# Curve helpers
# --------------------------------------------------------------------------


def crossing_point(
    x: np.ndarray, y: np.ndarray, level: float, *, direction: str = "down"
) -> float:
    """First x where the curve reaches ``level``, linearly interpolated.

    The curve is sorted by x (y averaged over repeated x; non-finite pairs
    dropped). ``direction="down"`` looks for ``y <= level``, ``"up"`` for
    ``y >= level``. Returns ``x[0]`` if the start is already at/past the
    level, NaN if the level is never reached.
    """
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    x, y = _clean_xy(x, y)
    xs, inv = np.unique(x, return_inverse=True)
    ys = np.bincount(inv, weights=y) / np.bincount(inv)
    hit = ys <= level if direction == "down" else ys >= level
    if not hit.any():
        return np.nan
    i = int(np.argmax(hit))
    if i == 0:
        return float(xs[0])
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def log_odds(p: np.ndarray | float, eps: float = 1e-6) -> np.ndarray | float:
    """Logit of ``p`` clipped to ``[eps, 1 - eps]`` (a float for scalar input)."""
    q = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    out = np.log(q) - np.log1p(-q)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------


def _check_expected(expected: str) -> None:
    if expected not in _EXPECTED:
        raise ValueError(f"expected must be 'greater' or 'less', got {expected!r}")


def verdict(
    low: float, high: float, *, null: float = 0.0, expected: str = "greater"
) -> str:
    """Classify a confidence interval ``[low, high]`` against a null value.

    Rule: "supported" if the whole CI lies strictly on the paper's side of
    ``null`` (expected "greater": ``low > null``; "less": ``high < null``);
    "refuted" if it lies strictly on the other side ("greater": ``high <
    null``; "less": ``low > null``); otherwise, including when the CI touches
    or contains ``null`` or a bound is NaN, "inconclusive".
    """
    _check_expected(expected)
    if np.isnan(low) or np.isnan(high):
        return "inconclusive"
    above, below = low > null, high < null
    if above or below:
        return "supported" if above == (expected == "greater") else "refuted"
    return "inconclusive"


def attributable(
    effect_low: float,
    effect_high: float,
    control_low: float,
    control_high: float,
    *,
    expected: str = "greater",
) -> bool:
    """Whether an effect stands clear of its control.

    Rule: True only if the effect's CI lies entirely beyond the control's CI
    in the expected direction ("greater": ``effect_low > control_high``;
    "less": ``effect_high < control_low``); overlapping CIs or any NaN bound
    give False.
    """
    _check_expected(expected)
    bounds = (effect_low, effect_high, control_low, control_high)
    if any(np.isnan(b) for b in bounds):
        return False
    if expected == "greater":
        return bool(effect_low > control_high)
    return bool(effect_high < control_low)
