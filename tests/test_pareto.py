"""The Pareto check (Assumption A.7): known rank-frequency tables, Zipf data holds, geometric data
does not, too little data is inconclusive."""

from __future__ import annotations

import numpy as np
import pytest

from springback import pareto


def _zipf(n: int, s: float, rng, vocab: int = 100_000) -> list[str]:
    p = np.arange(1, vocab + 1, dtype=float) ** -s
    return [f"r{i}" for i in rng.choice(vocab, size=n, p=p / p.sum())]


def test_rank_frequency_known_answer():
    table = pareto.rank_frequency(["b", "a", "b", "c", "b", "a"])
    assert table["item"].tolist() == ["b", "a", "c"]
    assert table["count"].tolist() == [3, 2, 1] and table["rank"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(table["frequency"], [0.5, 1 / 3, 1 / 6])
    assert pareto.prefixes(["sorry , i can not", "sure"], 2) == ["sorry ,", "sure"]


def test_zipf_responses_hold():
    fit = pareto.fit_counts(pareto.rank_frequency(_zipf(20_000, 1.1, np.random.default_rng(0)))
                            ["count"])
    assert fit["verdict"] == "holds"
    assert fit["R_exponential"] > 0 and fit["p_exponential"] < pareto.ALPHA
    assert fit["zipf_exponent"] == pytest.approx(1.1, abs=0.2)
    assert fit["alpha"] == pytest.approx(1 + 1 / fit["zipf_exponent"])


@pytest.mark.parametrize("kind", ["geometric counts", "geometric ranks"])
def test_geometric_responses_do_not_hold(kind):
    rng = np.random.default_rng(1)
    if kind == "geometric counts":  # every distinct response occurs Geometric(mean 20) times
        items = [f"r{i}" for i, c in enumerate(rng.geometric(1 / 20, size=1000)) for _ in range(c)]
    else:  # rank-frequency f(r) ~ 0.99^r
        items = [f"r{i}" for i in rng.geometric(0.01, size=20_000)]
    fit = pareto.fit_counts(pareto.rank_frequency(items)["count"])
    assert fit["verdict"] == "does not hold"
    assert fit["R_exponential"] < 0


def test_verdict_rule():
    base = {"n_tail": 100, "R_exponential": 3.0, "p_exponential": 0.01, "R_lognormal": 0.5,
            "p_lognormal": 0.6}
    assert pareto.verdict(base) == "holds"
    assert pareto.verdict(base | {"n_tail": pareto.MIN_TAIL - 1}) == "inconclusive"
    assert pareto.verdict(base | {"p_exponential": 0.5}) == "inconclusive"
    assert pareto.verdict(base | {"R_lognormal": -2.0, "p_lognormal": 0.01}) == "does not hold"
    assert pareto.verdict(base | {"R_exponential": -2.0}) == "does not hold"


def test_pareto_table_has_a_row_per_level():
    responses = [" ".join(w) for w in np.random.default_rng(2).choice(
        ["good", "bad", "fine", "the", "film"], size=(300, 4))]
    table = pareto.pareto_table(responses, prefix_words=(1, 2))
    assert table["level"].tolist() == ["response", "prefix-1", "prefix-2"]
    assert table["items"].tolist() == [300] * 3
    assert table["distinct"].tolist()[1] == 5
    assert set(table["verdict"]) <= {"holds", "does not hold", "inconclusive"}
    assert table.loc[1, "verdict"] == "inconclusive"  # five distinct first words: too few


def test_counts_without_a_tail_are_inconclusive():
    from springback.pareto import fit_counts

    fit = fit_counts([1] * 30)  # every response distinct: nothing to fit
    assert fit["verdict"] == "inconclusive" and fit["n_tail"] == 0
