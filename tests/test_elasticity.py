"""Known-answer tests of the statistics core (springback.elasticity) and the claims table on
synthetic curves: every statistic of the elasticity issue against a curve whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import known_answers as ka
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


def test_a_straight_line_has_no_kink_and_no_stiffness_excess():
    k = 0.05
    level, gap = _curves(lambda x: -k * x, lambda x: 6 - k * x)
    stats = _stats(level, gap)
    assert stats["return_count"][1] == pytest.approx(120)
    assert stats["return_rate"][1] == pytest.approx(k)
    assert stats["kink_excess"][1] == pytest.approx(0.0, abs=1e-9)
    assert stats["stiffness_excess"][1] == pytest.approx(0.0, abs=1e-9)


def test_a_kink_at_the_base_level_gives_a_positive_kink_excess():
    fast, slow = 0.1, 0.025
    aligned = lambda x: np.where(x < 64, 6.4 - fast * x, -slow * (x - 64))  # noqa: E731
    level, gap = _curves(lambda x: -slow * x, aligned)
    stats = _stats(level, gap)
    assert stats["return_count"][1] == pytest.approx(64)
    assert stats["return_rate"][1] == pytest.approx(fast)
    # K(0) = ln(fast / slow); both placebo bands lie on one side of the kink: K = 0 there
    assert stats["kink_excess"][1] == pytest.approx(np.log(fast / slow), rel=0.05)
    assert np.isnan(stats["kink_excess"][0])  # the departure arm has no lift to scale bands by


def test_bands_are_a_share_of_the_arm_s_own_lift():
    """The same curve scaled down 10x in log-odds (a control that moves less) reads the same."""
    fast, slow = 0.1, 0.025
    aligned = lambda x: np.where(x < 64, 6.4 - fast * x, -slow * (x - 64))  # noqa: E731
    level, gap = _curves(lambda x: -slow * x, aligned)
    big, small = _stats(level, gap), _stats(level / 10, gap)
    for name in ("kink_excess", "stiffness_excess"):
        assert small[name][1] == pytest.approx(big[name][1])


def test_a_log_shaped_decline_is_neither_kinked_nor_stiff():
    level, gap = _curves(lambda x: -np.log1p(x / 20), lambda x: 2 - np.log1p(x / 20))
    stats = _stats(np.asarray(level), gap, band=0.2)
    assert abs(stats["kink_excess"][1]) < 0.05
    assert abs(stats["stiffness_excess"][1]) < 0.05
    assert stats["return_count"][1] > 0


def test_a_censored_return_contributes_its_observed_speed():
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 100 - 0.01 * x)
    stats = _stats(level, gap)
    assert np.isnan(stats["return_count"][1])
    assert stats["return_rate"][1] == pytest.approx(0.01)   # not dropped, not clipped
    for name in ("kink_excess", "stiffness_excess"):
        assert np.isnan(stats[name][1]), name


def test_recovery_is_read_where_the_level_returns_not_at_the_gap_s_maximum():
    gaps = (lambda x: np.full_like(x, 5.0),
            lambda x: np.where((x > 60) & (x < 90), 4.0, 0.5))  # a blip, gone by the return
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x, gaps=gaps)
    stats = _stats(level, gap)
    assert stats["return_count"][1] == pytest.approx(120)
    assert stats["aligned_gap_share"][1] == pytest.approx(0.1)
    assert stats["recovery"][1] == pytest.approx(0.0)       # at n 120 the gap is 0.5 again
    gaps = (gaps[0], lambda x: np.where(x >= 112, 3.0, 0.5))  # back by the time it returns
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x, gaps=gaps)
    assert _stats(level, gap)["recovery"][1] == pytest.approx(0.5)


def test_a_context_blind_model_recovers_nothing():
    level, blind = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x,
                           gaps=(lambda x: np.full_like(x, 5.0), np.zeros_like))
    assert _stats(level, blind)["recovery"][1] == 0.0
    level, no_base_gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x)
    assert np.isnan(_stats(level, no_base_gap)["recovery"][1])  # nothing to recover: undefined


def test_recovery_can_be_read_against_another_base_gap():
    gaps = (lambda x: np.full_like(x, -4.0), lambda x: np.where(x > 100, -3.0, 0.0))  # mirror
    level, gap = _curves(lambda x: -0.05 * x, lambda x: 6 - 0.05 * x, gaps=gaps)
    assert _stats(level, gap, gap_ref=np.array(4.0))["recovery"][1] == pytest.approx(-0.75)
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


def test_prompt_weights_resample_within_context_and_clean_groups():
    strata = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    c = el.prompt_weights(el.make_draws(200, (1, 1, 8), seed=0), strata)
    assert np.all(c[0] == 1) and np.allclose(c.sum(1), 8)
    for group in range(4):  # every replicate keeps each group's size
        assert np.allclose(c[:, strata == group].sum(1), (strata == group).sum())


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
    assert el.equivalence(-0.1, 0.2, 0.25) == "supported"
    assert el.equivalence(0.3, 0.5, 0.25) == "refuted"
    assert el.equivalence(-0.1, 0.4, 0.25) == "inconclusive"


def test_undefined_replicates_count_against_every_verdict():
    """No survivorship: 27 % undefined replicates leave both ends of the CI unbounded, so the
    defined 73 % (all above the null) cannot make the claim look supported."""
    reps = np.concatenate([[2.0], np.full(270, np.nan), np.linspace(1.5, 2.5, 730)])
    value, low, high = el.summarise(reps)
    assert low == -np.inf and high == np.inf
    assert el.verdict(low, high, 1.0) == "inconclusive"
    few = np.concatenate([[2.0], np.full(10, np.nan), np.linspace(1.5, 2.5, 990)])
    assert el.verdict(*el.summarise(few)[1:], 1.0) == "supported"  # 1 % undefined: bounded


# --- the claims table on synthetic per-prompt rows (tests/known_answers.py) ----------------------

def _table(case, role="main", tokens=3000, seed=0, **kw):
    return ka.table(ka.context_free(case), role=role, tokens=tokens, seed=seed, **kw)


def test_claims_attribute_a_kink_the_control_lacks():
    prompts = pd.concat([_table(ka.kink_at_base()),
                         _table(ka.straight(), role="random_init", tokens=0, seed=1)])
    table = claims_table(prompts, n_boot=200)
    c2 = table[(table["claim"] == "C2")].iloc[0]
    assert c2["control"] == "random_init" and c2["n_runs"] == 6
    assert c2["verdict"] == "supported" and c2["comparison"] == "exceeds"
    assert c2["control_value"] == pytest.approx(0.0, abs=0.02)
    assert c2["diff_ci_low"] > 0 and c2["attributable"] == "yes"


def test_identical_arms_give_a_zero_paired_difference():
    main = _table(ka.kink_at_base())
    control = main.assign(role="random_init", pretrain_tokens=0)
    table = claims_table(pd.concat([main, control]), n_boot=100)
    c2 = table[table["claim"] == "C2"].iloc[0]
    assert c2["difference"] == 0 and c2["diff_ci_low"] == 0 and c2["diff_ci_high"] == 0
    assert c2["attributable"] == "no"


def test_a_control_showing_the_same_effect_is_not_attributable():
    prompts = pd.concat([_table(ka.kink_at_base()),
                         _table(ka.kink_at_base(), role="pre_emergence", tokens=500, seed=2)])
    c2 = claims_table(prompts, n_boot=200).query("claim == 'C2'").iloc[0]
    assert c2["verdict"] == "supported" and c2["attributable"] == "no"


def test_an_effect_that_is_not_supported_is_never_attributable_even_without_a_control_value():
    never = lambda n_pos, x: {0: 0.0, 200: 30.0, 400: 40.0, 1000: 60.0}[n_pos] - 0.01 * x  # noqa
    prompts = pd.concat([_table(ka.symmetric_s()),
                         ka.table(ka.context_free(never), role="random_init", tokens=0, seed=3)])
    c2 = claims_table(prompts, n_boot=100).query("claim == 'C2'").iloc[0]
    assert c2["verdict"] != "supported"
    assert c2["control_defined"] == 0 and c2["attributable"] == "no"


def test_the_mirror_world_is_read_for_the_same_shape_and_the_opposite_recovery():
    recover = ka.context_free(ka.kink_at_base(), gap_curve=lambda n, x: np.where(x > 150, 4.0, 0.5))
    mirror = lambda ctx, n, x: recover(not ctx, n, x)  # noqa: E731  the mapping reversed
    prompts = pd.concat([ka.table(recover), ka.table(mirror, world="mirror", role="mirror",
                                                     seed=4)])
    table = claims_table(prompts, n_boot=100).set_index(["claim", "control"])
    assert table.loc[("C2", "mirror"), "comparison"] == "equivalent"
    assert table.loc[("C2", "mirror"), "attributable"] == "yes"   # same kink in both worlds
    assert table.loc[("E2", "mirror"), "comparison"] == "exceeds"
    assert table.loc[("E2", "mirror"), "control_value"] < 0       # recovers the reversed mapping
    assert table.loc[("E2", "mirror"), "attributable"] == "yes"


def test_an_incomplete_grid_is_refused():
    rows = _table(ka.kink_at_base()).iloc[:-1]
    with pytest.raises(ValueError, match="incomplete grid"):
        el.make_cube(rows)


# --- trend claims (C4 size, C5 volume) -----------------------------------------------------------

def test_slope_is_least_squares_per_replicate_and_nan_with_a_missing_point():
    out = slope(np.array([0.0, 1, 2]), np.array([[1.0, 3, 5], [0, 0, 0], [1, np.nan, 2]]))
    assert out[0] == pytest.approx(2.0) and out[1] == 0 and np.isnan(out[2])


def test_c4_reads_the_slope_over_log_parameters_paired_with_random_init_twins():
    sizes = {"xs": (1e4, 0.024), "s": (1e5, 0.014), "m": (1e6, 0.008)}  # slower past the base
    frames = []
    for i, (size, (params, slow)) in enumerate(sizes.items()):
        frames.append(_table(ka.kink_at_base(slow=slow), seed=i, size=size,
                             params_nonembedding=params))
        frames.append(_table(ka.straight(), role="random_init", tokens=0, seed=10 + i, size=size,
                             params_nonembedding=params))
    table = claims_table(pd.concat(frames), n_boot=100)
    c4 = table[table["claim"] == "C4"].set_index("statistic")
    assert set(c4.index) == {"slope_kink_excess", "slope_recovery", "slope_return_speedup"}
    row = c4.loc["slope_kink_excess"]
    assert row["size"] == "xs|s|m" and row["n_runs"] == 18
    assert row["value"] > 0.2 and row["verdict"] == "supported"
    assert row["control_value"] == pytest.approx(0.0, abs=0.02)  # straight twins: no kink
    assert row["attributable"] == "yes"


def test_c5_reads_the_slope_over_log_tokens_paired_with_the_random_init_base():
    budgets = {375: 0.03, 750: 0.02, 1500: 0.012, 3000: 0.008}
    frames = [_table(ka.kink_at_base(slow=slow), tokens=t, seed=i)
              for i, (t, slow) in enumerate(budgets.items())]
    frames.append(_table(ka.straight(), role="random_init", tokens=0, seed=9))
    table = claims_table(pd.concat(frames), n_boot=100)
    c5 = table[table["claim"] == "C5"].set_index("statistic")
    assert "slope_kink_excess_past_emergence" in c5.index  # every budget has the mapping
    row = c5.loc["slope_kink_excess"]
    assert row["pretrain_tokens"] == "375|750|1500|3000" and row["control"] == "random_init"
    assert row["control_value"] == 0.0  # the one random-init base at every budget: no trend
    assert row["verdict"] == "supported" and row["attributable"] == "yes"


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
    assert by["spring_log_ratio"]["verdict"] == "supported"  # equality within the margin
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


def test_c7_without_bits_per_byte_past_the_start_has_no_rows_value():
    from types import SimpleNamespace

    from springback.theorem import c7_rows

    draws = el.make_draws(20, (1, 1, 1), seed=0)
    nan = np.full((1, 1, 2, 2), np.nan)
    nan[..., 0] = 1.0
    key = ("sentiment", "main", "s", 1000, "sft", "forward", "main")
    conditions = [(key, SimpleNamespace(n_pos=np.array([0, 10]), n_neg=np.array([0, 8])),
                   {"bpb_pretrain": nan, "bpb_align": nan, "bpb_perturb": nan}, draws)]
    rows, _ = c7_rows(conditions)  # no IndexError
    assert all(r["verdict"] == "undetermined" for r in rows)
