"""Known-answer tests of the statistics core (springback.elasticity) and the claims table on
synthetic curves: every statistic of the elasticity issue against a curve whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from springback import elasticity as el
from springback.claims import claims_table, slope

X = np.arange(0, 321, 8, dtype=float)


def _curves(*arms, gaps=None):
    """L[arm, n_neg] from functions of x; G defaults to zero (a context-blind model)."""
    level = np.stack([f(X) for f in arms])
    gap = np.zeros_like(level) if gaps is None else np.stack([g(X) for g in gaps])
    return level, gap


def _stats(level, gap, sign=-1.0, **kw):
    return el.curve_stats(X, level, gap, sign, **kw)


def test_first_crossing_interpolates_and_is_nan_when_never():
    x = np.array([0.0, 10, 20, 30])
    y = np.array([5.0, 3, 1, -1])
    assert el.first_crossing(x, y, np.array(2.0), -1.0) == pytest.approx(15.0)
    assert el.first_crossing(x, y, np.array(6.0), -1.0) == 0.0      # already there
    assert np.isnan(el.first_crossing(x, y, np.array(-5.0), -1.0))  # never
    assert el.first_crossing(x, -y, np.array(-2.0), 1.0) == pytest.approx(15.0)


def test_a_straight_line_in_log_odds_is_not_two_phase():
    k = 0.05
    level, gap = _curves(lambda x: -k * x, lambda x: 6 - k * x)
    stats = _stats(level, gap)
    assert stats["return_count"][1] == pytest.approx(120)
    assert stats["beyond_count"][1] == pytest.approx(40)
    assert stats["two_phase"][1] == pytest.approx(1.0)
    assert stats["stiffness"][1] == pytest.approx(1.0)  # identical arms past the base: S = 1


def test_a_kink_at_the_base_level_is_two_phase_with_the_slope_ratio():
    fast, slow = 0.1, 0.025
    aligned = lambda x: np.where(x < 64, 6.4 - fast * x, -slow * (x - 64))  # noqa: E731
    level, gap = _curves(lambda x: -slow * x, aligned)
    stats = _stats(level, gap)
    assert stats["return_count"][1] == pytest.approx(64)
    assert stats["two_phase"][1] == pytest.approx(fast / slow)
    assert stats["stiffness"][1] == pytest.approx(1.0)


def test_stiffness_is_the_ratio_of_beyond_to_departure_counts():
    level, gap = _curves(lambda x: -0.05 * x,                                  # 40 to depart 2 nats
                         lambda x: np.where(x < 40, 4 - 0.1 * x, -0.0125 * (x - 40)))  # 160 past base
    stats = _stats(level, gap)
    assert stats["departure_count"][1] == pytest.approx(40)
    assert stats["beyond_count"][1] == pytest.approx(160)
    assert stats["stiffness"][1] == pytest.approx(4.0)


def test_a_curve_that_never_returns_has_undefined_return_statistics():
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 100 - 0.01 * x)
    stats = _stats(level, gap)
    for name in ("return_count", "beyond_count", "stiffness", "two_phase"):
        assert np.isnan(stats[name][1]), name


def test_a_context_blind_model_recovers_nothing_and_a_recovered_gap_counts():
    level, blind = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x,
                           gaps=(lambda x: np.full_like(x, 5.0), np.zeros_like))
    assert _stats(level, blind)["recovery"][1] == 0.0
    level, no_base_gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x)
    assert np.isnan(_stats(level, no_base_gap)["recovery"][1])  # nothing to recover: undefined
    gaps = (lambda x: np.full_like(x, 5.0),
            lambda x: np.where((x > 100) & (x < 140), 3.0, 0.5))  # erased to 0.5, back to 3
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x, gaps=gaps)
    stats = _stats(level, gap)
    assert stats["aligned_gap_share"][1] == pytest.approx(0.1)
    assert stats["peak_gap_share"][1] == pytest.approx(0.6)
    assert stats["recovery"][1] == pytest.approx(0.5)
    # a gap that alignment never erased is retained, not recovered
    level, kept = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x,
                          gaps=(lambda x: np.full_like(x, 5.0),) * 2)
    assert _stats(level, kept)["recovery"][1] == 0.0


def test_recovery_can_be_read_against_another_base_gap():
    gaps = (lambda x: np.full_like(x, -4.0), lambda x: np.where(x > 100, -3.0, 0.0))  # mirror
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x, gaps=gaps)
    assert _stats(level, gap, gap_ref=np.array(4.0))["recovery"][1] == pytest.approx(0.0)
    assert _stats(level, gap)["recovery"][1] == pytest.approx(0.75)  # own (negative) base gap


def test_kl_rebound_finds_the_minimum_share_and_where():
    kl = np.array([[0.0, np.nan, 0.2, 0.3], [0.5, np.nan, 0.1, 0.4]])
    out = el.kl_stats(np.array([0.0, 8, 16, 24]), kl)
    assert out["kl_min_share"][1] == pytest.approx(0.2)
    assert out["kl_min_at"][1] == 16


def test_run_weights_resample_runs_and_row_zero_is_every_run_once():
    draws = el.make_draws(50, (3, 2, 10), seed=1)
    w = el.run_weights(draws, 3, 2)
    assert np.all(w[0] == 1)
    assert np.allclose(w.sum((1, 2)), 6)
    assert len({tuple(r.ravel()) for r in w[1:]}) > 10
    one = el.run_weights(draws, 1, 2)  # a control with one pretraining seed draws it every time
    assert np.allclose(one.sum((1, 2)), 2)


def test_prompt_weights_sum_to_the_prompt_count():
    c = el.prompt_weights(el.make_draws(20, (1, 1, 7), seed=0), 7)
    assert np.all(c[0] == 1) and np.allclose(c.sum(1), 7)


def test_summaries_and_verdicts():
    reps = np.concatenate([[2.0], np.linspace(1.5, 2.5, 1000)])
    value, low, high = el.summarise(reps)
    assert value == 2.0 and 1.5 < low < 1.6 and 2.4 < high < 2.5
    assert el.verdict(low, high, 1.0) == "supported"
    assert el.verdict(low, high, 3.0) == "refuted"
    assert el.verdict(low, high, 2.0) == "inconclusive"
    assert el.verdict(np.nan, np.nan, 1.0) == "undetermined"
    mostly_nan = np.concatenate([[1.0], np.full(900, np.nan), np.ones(100)])
    assert np.isnan(el.summarise(mostly_nan)[1])


# --- the claims table on synthetic per-prompt rows -------------------------------------------

def _prompt_rows(role: str, tokens: int, curve, *, direction="forward", n_p=3, n_f=2, n_q=8,
                 gap=0.0, noise=0.05, seed=0, **keys) -> pd.DataFrame:
    """Per-prompt log-odds following ``curve(n_pos, x)``, +-gap/2 by context, with noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_p):
        for f in range(n_f):
            for n_pos in (0, 200, 1000):
                for x in X:
                    for q in range(n_q):
                        ctx = q % 2 == 0
                        lo = curve(n_pos, x) + (gap / 2 if ctx else -gap / 2) + noise * rng.normal()
                        rows.append({"task": "sentiment", "world": "main", "size": "s",
                                     "pretrain_tokens": tokens, "algo": "sft",
                                     "direction": direction, "role": role, "pretrain_seed": p,
                                     "seed": f + 1, "n_pos": n_pos, "n_neg": x, "prompt": q,
                                     "context": ctx, "clean": True, "logodds": lo, **keys})
    return pd.DataFrame(rows)


def _kinked(n_pos, x, fast=0.1, slow=0.02):
    start = {0: 0.0, 200: 3.2, 1000: 6.4}[n_pos]
    if n_pos == 0:
        return -slow * x
    cross = start / fast
    return np.where(x < cross, start - fast * x, -slow * (x - cross))


def _straight(n_pos, x, k=0.05):
    return {0: 0.0, 200: 3.2, 1000: 6.4}[n_pos] - k * x


def test_claims_attribute_a_kink_the_control_lacks():
    prompts = pd.concat([_prompt_rows("main", 3000, _kinked),
                         _prompt_rows("random_init", 0, _straight, seed=1)])
    table = claims_table(prompts, n_boot=200)
    c2 = table[(table["claim"] == "C2")].iloc[0]
    assert c2["control"] == "random_init" and c2["n_runs"] == 6
    assert c2["value"] == pytest.approx(5.0, rel=0.1) and c2["verdict"] == "supported"
    assert c2["control_value"] == pytest.approx(1.0, rel=0.1)
    assert c2["diff_ci_low"] > 0 and c2["attributable"] == "yes"


def test_identical_arms_give_a_zero_paired_difference():
    main = _prompt_rows("main", 3000, _kinked)
    control = main.assign(role="random_init", pretrain_tokens=0)
    table = claims_table(pd.concat([main, control]), n_boot=100)
    e1 = table[table["claim"] == "E1"].iloc[0]
    assert e1["difference"] == 0 and e1["diff_ci_low"] == 0 and e1["diff_ci_high"] == 0
    assert e1["attributable"] == "no"


def test_a_control_showing_the_same_effect_is_not_attributable():
    prompts = pd.concat([_prompt_rows("main", 3000, _kinked),
                         _prompt_rows("pre_emergence", 500, _kinked, seed=2)])
    c2 = claims_table(prompts, n_boot=200).query("claim == 'C2'").iloc[0]
    assert c2["verdict"] == "supported" and c2["attributable"] == "no"


def test_an_effect_on_the_wrong_side_is_never_attributable():
    """A refuted claim stays unattributed even where the control is worse still."""
    worse = lambda n_pos, x: _kinked(n_pos, x, fast=0.04, slow=0.1)  # noqa: E731  T = 0.4
    prompts = pd.concat([_prompt_rows("main", 3000, lambda n, x: _straight(n, x, k=0.05)),
                         _prompt_rows("pre_emergence", 500, worse, seed=4)])
    table = claims_table(prompts, n_boot=100)
    c2 = table.query("claim == 'C2'").iloc[0]
    assert c2["verdict"] != "supported" and c2["attributable"] == "no"


def test_a_control_that_never_returns_leaves_attribution_undetermined():
    never = lambda n_pos, x: {0: 0.0, 200: 30.0, 1000: 60.0}[n_pos] - 0.01 * x  # noqa: E731
    prompts = pd.concat([_prompt_rows("main", 3000, _kinked),
                         _prompt_rows("random_init", 0, never, seed=3)])
    e1 = claims_table(prompts, n_boot=100).query("claim == 'E1'").iloc[0]
    assert e1["verdict"] == "inconclusive" or e1["verdict"] == "supported"
    assert np.isnan(e1["control_value"]) and e1["control_defined"] == 0
    assert e1["attributable"] == "undetermined"


def test_an_incomplete_grid_is_refused():
    rows = _prompt_rows("main", 3000, _kinked).iloc[:-1]
    with pytest.raises(ValueError, match="incomplete grid"):
        el.make_cube(rows)


# --- trend claims (C4 size, C5 volume) -----------------------------------------------------------

def test_slope_is_least_squares_per_replicate_and_nan_with_a_missing_point():
    out = slope(np.array([0.0, 1, 2]), np.array([[1.0, 3, 5], [0, 0, 0], [1, np.nan, 2]]))
    assert out[0] == pytest.approx(2.0) and out[1] == 0 and np.isnan(out[2])


def _stiff(stiffness, dep=0.05, fast=0.1):
    """Departure at ``dep`` nats/example, return at ``fast``, then ``dep / stiffness``."""
    def curve(n_pos, x):
        if n_pos == 0:
            return -dep * x
        start = {200: 3.2, 1000: 6.4}[n_pos]
        cross = start / fast
        return np.where(x < cross, start - fast * x, -dep / stiffness * (x - cross))
    return curve


def test_c4_reads_the_slope_over_log_parameters_paired_with_random_init_twins():
    sizes = {"xs": (1e4, 1.0), "s": (1e5, 2.0), "m": (1e6, 4.0)}
    frames = []
    for i, (size, (params, stiffness)) in enumerate(sizes.items()):
        frames.append(_prompt_rows("main", 3000, _stiff(stiffness), seed=i, size=size,
                                   params_nonembedding=params))
        frames.append(_prompt_rows("random_init", 0, _straight, seed=10 + i, size=size,
                                   params_nonembedding=params))
    table = claims_table(pd.concat(frames), n_boot=100)
    c4 = table[table["claim"] == "C4"].set_index("statistic")
    assert set(c4.index) == {"slope_stiffness", "slope_recovery", "slope_faster_return"}
    row = c4.loc["slope_stiffness"]
    assert row["size"] == "xs|s|m" and row["n_runs"] == 18
    assert row["value"] == pytest.approx(1.5, rel=0.1) and row["verdict"] == "supported"
    assert row["control_value"] == pytest.approx(0.0, abs=0.1)  # straight twins: S = 1 at all sizes
    assert row["attributable"] == "yes"


def test_c5_reads_the_slope_over_log_tokens_and_past_emergence():
    budgets = {375: (0.0, 0.05), 750: (5.0, 0.1), 1500: (5.0, 0.2), 3000: (5.0, 0.4)}
    frames = [_prompt_rows("main", t, _stiff(1.0, fast=fast), seed=i, gap=gap)
              for i, (t, (gap, fast)) in enumerate(budgets.items())]
    table = claims_table(pd.concat(frames), n_boot=100)
    c5 = table[table["claim"] == "C5"].set_index("statistic")
    assert "slope_faster_return_past_emergence" in c5.index  # three budgets have the mapping
    row = c5.loc["slope_faster_return"]
    assert row["pretrain_tokens"] == "375|750|1500|3000" and row["control"] == "none"
    assert row["value"] > 0 and row["verdict"] == "supported"  # more tokens, fewer to return
    assert row["attributable"] == "undetermined"


# --- the compression theorem (C7) ----------------------------------------------------------------

def test_c7_recovers_a_known_k_exponent_and_the_spring_invariant():
    from types import SimpleNamespace

    from springback.theorem import c7_rows

    n_pos, n_neg = np.array([0, 100, 1000]), np.array([0, 8, 16])
    draws = el.make_draws(50, (2, 2, 1), seed=0)
    conditions = []
    for tokens in (100_000, 1_000_000):
        k = np.r_[np.nan, tokens / n_pos[1:]]
        shape = (2, 2, 3, 3)
        p = np.full(shape, 1.0)
        a = np.full(shape, 2.0)
        p[..., 2] -= 1e-6 * (1 + 0.1 * np.arange(2))[:, None, None]  # D_p improves a little
        a[..., 2] += (1e-6 * np.nan_to_num(k))[None, None, :]         # D_a worsens k times more
        p[..., 1] = a[..., 1] = np.nan                                # a point without text
        metrics = {"bpb_pretrain": p, "bpb_align": a, "bpb_perturb": a.copy()}
        key = ("sentiment", "main", "s", tokens, "sft", "forward", "main")
        conditions.append((key, SimpleNamespace(n_pos=n_pos, n_neg=n_neg), metrics, draws))
    rows, points = c7_rows(conditions)
    by = {r["statistic"]: r for r in rows}
    assert by["k_exponent"]["value"] == pytest.approx(1.0, abs=0.05)
    assert by["k_exponent"]["verdict"] == "supported"
    assert by["delta_a"]["verdict"] == "supported" and by["a_moves_more"]["verdict"] == "supported"
    assert len(points) == 4 and all(pt["delta_p"] < 0 < pt["delta_a"] for pt in points)
    # |D_a| Delta gamma_a = |D_p| (-Delta gamma_p) up to the 1.0-1.1 spread of Delta gamma_p
    assert abs(by["spring_log_ratio"]["value"]) < 0.05


def test_recovery_is_undefined_without_a_mapping_to_recover():
    gaps = (lambda x: np.full_like(x, 0.01), lambda x: np.where(x > 100, 0.3, 0.0))
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x, gaps=gaps)
    assert np.isnan(_stats(level, gap)["recovery"][1])  # 0.3 / 0.01 would read as 30x
    assert np.isnan(_stats(level, gap, gap_ref=np.array(0.2))["recovery"][1])
    assert _stats(level, gap, gap_ref=np.array(0.6))["recovery"][1] == pytest.approx(0.5)
