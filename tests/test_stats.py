"""Tests for springback.stats (fast: each well under a second)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    import springback  # noqa: F401
except ModuleNotFoundError:  # package not installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from springback.stats import (  # noqa: E402
    attributable,
    bootstrap_ci,
    crossing_point,
    fit_two_phase,
    hierarchical_bootstrap_means,
    log_odds,
    seed_bootstrap,
    verdict,
)
from springback.stats import _slope_ratio  # noqa: E402

N_NEG = np.array([0, 8, 16, 32, 64, 100, 200, 400], dtype=float)


# ---------------------------------------------------------------- bootstrap_ci


def test_bootstrap_ci_constant_is_degenerate():
    assert bootstrap_ci(np.full(30, 0.7)) == pytest.approx((0.7, 0.7))


def test_bootstrap_ci_single_value_and_nans():
    assert bootstrap_ci(np.array([np.nan, 2.5, np.nan])) == (2.5, 2.5)


def test_bootstrap_ci_covers_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(3.0, 1.0, 25), rng.normal(3.0, 1.0, 2500)
    lo_s, hi_s = bootstrap_ci(small, seed=2)
    lo_l, hi_l = bootstrap_ci(large, seed=2)
    assert lo_s < small.mean() < hi_s
    assert lo_l < 3.0 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5


def test_bootstrap_ci_deterministic_and_custom_stat():
    v = np.random.default_rng(3).normal(size=40)
    assert bootstrap_ci(v, seed=5) == bootstrap_ci(v, seed=5)
    lo, hi = bootstrap_ci(v, stat=lambda a: float(np.median(a)))
    assert lo <= np.median(v) <= hi


# ------------------------------------------------ hierarchical_bootstrap_means


def _table(seed_shifts: list[float], n_prompts: int = 50, sd: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = [
        {"task": "t", "n_neg": 8, "seed": s, "prompt": p, "value": shift + rng.normal(0, sd)}
        for s, shift in enumerate(seed_shifts)
        for p in range(n_prompts)
    ]
    return pd.DataFrame(rows)


def test_hierarchical_exact_mean_and_n_seeds():
    table = pd.DataFrame({
        "task": ["a"] * 5 + ["b"] * 2,
        "seed": [0, 0, 0, 1, 1, 0, 0],
        "prompt": [0, 1, 2, 0, 1, 0, 1],
        "value": [1.0, 2.0, 3.0, 10.0, np.nan, 4.0, 6.0],
    })
    out = hierarchical_bootstrap_means(table, group_cols=["task"], n_boot=200)
    assert list(out.columns) == ["task", "mean", "ci_low", "ci_high", "n_seeds"]
    a, b = out.iloc[0], out.iloc[1]
    assert a["mean"] == pytest.approx((2.0 + 10.0) / 2)
    assert a["n_seeds"] == 2 and b["n_seeds"] == 1
    assert b["mean"] == pytest.approx(5.0)
    assert a["ci_low"] <= a["mean"] <= a["ci_high"]


def test_hierarchical_averages_repeated_units_first():
    table = pd.DataFrame({
        "task": ["a"] * 4, "seed": [0] * 4,
        "prompt": [0, 0, 0, 1], "value": [0.0, 0.0, 0.0, 1.0],
    })
    out = hierarchical_bootstrap_means(table, group_cols=["task"], n_boot=100)
    assert out["mean"].iloc[0] == pytest.approx(0.5)


def test_hierarchical_ci_widens_when_seeds_disagree():
    agree = hierarchical_bootstrap_means(_table([0.5, 0.5, 0.5]), group_cols=["task", "n_neg"])
    clash = hierarchical_bootstrap_means(_table([0.1, 0.5, 0.9]), group_cols=["task", "n_neg"])
    width = lambda df: float(df["ci_high"].iloc[0] - df["ci_low"].iloc[0])  # noqa: E731
    assert clash["mean"].iloc[0] == pytest.approx(0.5, abs=0.02)
    assert width(clash) > 5 * width(agree)
    assert agree["ci_low"].iloc[0] < agree["mean"].iloc[0] < agree["ci_high"].iloc[0]


def test_hierarchical_is_fast_enough():
    rng = np.random.default_rng(0)
    n_groups, n_seeds, n_prompts = 300, 3, 200
    g, s, p = np.meshgrid(
        np.arange(n_groups), np.arange(n_seeds), np.arange(n_prompts), indexing="ij"
    )
    table = pd.DataFrame({
        "group": g.ravel(), "seed": s.ravel(), "prompt": p.ravel(),
        "value": rng.random(g.size),
    })
    start = time.perf_counter()
    out = hierarchical_bootstrap_means(table, group_cols=["group"])
    assert time.perf_counter() - start < 2.0
    assert len(out) == n_groups and (out["n_seeds"] == n_seeds).all()


# -------------------------------------------------------------- seed_bootstrap


def test_seed_bootstrap_point_and_ci():
    per_seed = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    point, lo, hi = seed_bootstrap(per_seed, lambda a: float(a.mean()), n_boot=300)
    assert point == pytest.approx(3.5)
    assert 1.5 <= lo <= point <= hi <= 5.5


def test_seed_bootstrap_ignores_nan_results():
    per_seed = np.array([0.0, 1.0, 2.0, 3.0])
    fn = lambda a: float(a.mean()) if a.min() > 0 else np.nan  # noqa: E731
    point, lo, hi = seed_bootstrap(per_seed, fn, n_boot=300)
    assert np.isnan(point) and 1.0 <= lo <= hi <= 3.0
    _, lo2, hi2 = seed_bootstrap(per_seed, lambda a: np.nan, n_boot=50)
    assert np.isnan(lo2) and np.isnan(hi2)


# --------------------------------------------------------------- fit_two_phase


def _hinge(x: np.ndarray, c: float = 50.0, b1: float = -0.01, b2: float = -0.001) -> np.ndarray:
    return 0.9 + b1 * x + (b2 - b1) * np.maximum(x - c, 0.0)


def test_two_phase_recovers_noiseless_hinge():
    x = np.tile(np.array([0, 8, 16, 32, 50, 64, 100, 200, 400.0]), 3)
    fit = fit_two_phase(x, _hinge(x))
    assert fit.breakpoint == pytest.approx(50.0, abs=0.5)
    assert fit.slope1 == pytest.approx(-0.01, rel=1e-3)
    assert fit.slope2 == pytest.approx(-0.001, rel=1e-3)
    assert fit.intercept == pytest.approx(0.9, abs=1e-4)
    assert fit.slope_ratio == pytest.approx(10.0, rel=1e-2)
    assert fit.delta_aic > 10 and fit.lr_p < 1e-6


def test_two_phase_recovers_noisy_hinge_with_stacked_seeds():
    x = np.repeat(np.linspace(0, 400, 41), 3)
    y = _hinge(x) + np.random.default_rng(4).normal(0, 0.005, x.size)
    fit = fit_two_phase(x, y)
    assert fit.breakpoint == pytest.approx(50.0, abs=8.0)
    assert fit.slope1 == pytest.approx(-0.01, rel=0.15)
    assert fit.slope2 == pytest.approx(-0.001, rel=0.15)
    assert fit.delta_aic > 10 and fit.lr_p < 1e-3
    assert fit.aic1 - fit.aic2 == pytest.approx(fit.delta_aic)


def test_two_phase_prefers_line_on_linear_data():
    x = np.repeat(N_NEG, 3)
    y = 0.8 - 0.001 * x + np.random.default_rng(5).normal(0, 0.05, x.size)
    fit = fit_two_phase(x, y)
    assert fit.delta_aic < 2 or fit.lr_p > 0.05
    assert fit.sse2 <= fit.sse1


def test_two_phase_needs_four_distinct_x():
    with pytest.raises(ValueError, match="distinct x"):
        fit_two_phase(np.array([0, 0, 8, 8, 16, 16.0]), np.arange(6.0))


def test_slope_ratio_edge_cases():
    assert _slope_ratio(-0.01, -0.001) == pytest.approx(10.0)
    assert _slope_ratio(-0.01, 1e-14) == -np.inf
    assert _slope_ratio(0.02, 0.0) == np.inf
    assert np.isnan(_slope_ratio(0.0, 0.0))


def test_two_phase_flat_second_segment_gives_huge_ratio():
    fit = fit_two_phase(N_NEG, _hinge(N_NEG, c=64.0, b2=0.0))
    assert fit.slope2 == pytest.approx(0.0, abs=1e-9)
    assert abs(fit.slope_ratio) > 1e6  # sign of a ~0 slope2 is rounding noise


# -------------------------------------------------------------- crossing_point


def test_crossing_point_interpolates_down():
    x, y = np.array([0, 10, 20, 30.0]), np.array([1.0, 0.8, 0.4, 0.2])
    assert crossing_point(x, y, 0.5) == pytest.approx(17.5)


def test_crossing_point_up_and_unsorted_input():
    x, y = np.array([20, 0, 10.0]), np.array([0.9, 0.1, 0.3])
    assert crossing_point(x, y, 0.6, direction="up") == pytest.approx(15.0)


def test_crossing_point_start_and_never():
    x, y = np.array([0, 10, 20.0]), np.array([0.4, 0.3, 0.2])
    assert crossing_point(x, y, 0.5) == 0.0
    assert np.isnan(crossing_point(x, y, 0.1))
    assert np.isnan(crossing_point(x, y, 0.5, direction="up"))


# -------------------------------------------------------------------- log_odds


def test_log_odds_values_and_clipping():
    assert log_odds(0.5) == pytest.approx(0.0)
    assert log_odds(0.75) == pytest.approx(np.log(3.0))
    out = log_odds(np.array([0.0, 1.0]), eps=1e-3)
    assert out == pytest.approx([np.log(1e-3 / 0.999), np.log(0.999 / 1e-3)])


# ------------------------------------------------------ verdict / attributable


@pytest.mark.parametrize(
    ("low", "high", "expected", "outcome"),
    [
        (0.1, 0.3, "greater", "supported"),
        (-0.3, -0.1, "greater", "refuted"),
        (-0.1, 0.3, "greater", "inconclusive"),
        (-0.3, -0.1, "less", "supported"),
        (0.1, 0.3, "less", "refuted"),
        (np.nan, 0.3, "greater", "inconclusive"),
    ],
)
def test_verdict(low, high, expected, outcome):
    assert verdict(low, high, expected=expected) == outcome


def test_verdict_custom_null_and_bad_expected():
    assert verdict(0.6, 0.8, null=0.5) == "supported"
    assert verdict(0.4, 0.45, null=0.5) == "refuted"
    with pytest.raises(ValueError):
        verdict(0.1, 0.2, expected="bigger")


def test_attributable_both_ways():
    assert attributable(0.5, 0.7, 0.1, 0.4)
    assert not attributable(0.3, 0.7, 0.1, 0.4)
    assert attributable(-0.7, -0.5, -0.4, 0.1, expected="less")
    assert not attributable(-0.7, -0.3, -0.4, 0.1, expected="less")
    assert not attributable(np.nan, 0.7, 0.1, 0.4)
