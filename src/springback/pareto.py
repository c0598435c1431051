"""The Pareto assumption (paper Assumption A.7) checked on data: is the probability mass of
responses heavy-tailed like a power law?

From a list of response strings (world data or model samples): the rank-frequency table of whole
responses and of their n-word prefixes, and a fit of the distribution of *counts* (how often each
distinct response or prefix occurs) with the ``powerlaw`` package (Clauset, Shalizi & Newman 2009:
discrete maximum likelihood, xmin by the KS distance). A Zipf rank-frequency law f(r) ~ r^-s gives
counts with a power-law tail of exponent alpha = 1 + 1/s; the table reports both. The power law is
compared with exponential and log-normal tails by normalised log-likelihood ratios (R > 0 favours
the power law, p its two-sided significance).

Verdict rule (``verdict``): "inconclusive" with fewer than ``MIN_TAIL`` counts in the fitted tail;
"does not hold" when the exponential or the log-normal is significantly better (R < 0, p < ALPHA);
"holds" when the power law is significantly better than the exponential (R > 0, p < ALPHA) and not
significantly worse than the log-normal; "inconclusive" otherwise.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

MIN_TAIL = 50   # counts in the fitted tail below which no verdict is given
ALPHA = 0.1     # significance level of the likelihood-ratio tests


def rank_frequency(items: Sequence[str]) -> pd.DataFrame:
    """Distinct items by decreasing count: item, count, rank (1 = most frequent), frequency."""
    pairs = sorted(Counter(items).items(), key=lambda kv: (-kv[1], kv[0]))
    frame = pd.DataFrame(pairs, columns=["item", "count"])
    return frame.assign(rank=np.arange(1, len(frame) + 1), frequency=frame["count"] / len(items))


def prefixes(responses: Sequence[str], n: int) -> list[str]:
    """The first n whitespace-separated words of every response."""
    return [" ".join(r.split()[:n]) for r in responses]


def fit_counts(counts: Sequence[int]) -> dict:
    """Power-law fit of a count distribution and its comparison with the alternatives."""
    import powerlaw

    counts, nan = np.asarray(counts), float("nan")
    none = {"alpha": nan, "zipf_exponent": nan, "xmin": nan, "n_tail": 0, "R_exponential": nan,
            "p_exponential": nan, "R_lognormal": nan, "p_lognormal": nan,
            "verdict": "inconclusive"}
    if len(np.unique(counts)) < 2:  # every item as frequent as the others: no tail to fit
        return none
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            fit = powerlaw.Fit(counts, discrete=True, verbose=0)
            r_exp, p_exp = fit.distribution_compare("power_law", "exponential",
                                                    normalized_ratio=True)
            r_ln, p_ln = fit.distribution_compare("power_law", "lognormal", normalized_ratio=True)
        except ValueError:  # powerlaw: "No data points in defined range" (too few counts)
            return none
    alpha = float(fit.power_law.alpha)
    out = {"alpha": alpha, "zipf_exponent": 1 / (alpha - 1), "xmin": float(fit.power_law.xmin),
           "n_tail": int((np.asarray(counts) >= fit.power_law.xmin).sum()),
           "R_exponential": float(r_exp), "p_exponential": float(p_exp),
           "R_lognormal": float(r_ln), "p_lognormal": float(p_ln)}
    return out | {"verdict": verdict(out)}


def verdict(fit: dict) -> str:
    """"holds", "does not hold" or "inconclusive" by the rule in the module docstring."""
    if fit["n_tail"] < MIN_TAIL:
        return "inconclusive"
    worse = [fit[f"R_{d}"] < 0 and fit[f"p_{d}"] < ALPHA for d in ("exponential", "lognormal")]
    if any(worse):
        return "does not hold"
    beats_exp = fit["R_exponential"] > 0 and fit["p_exponential"] < ALPHA
    return "holds" if beats_exp else "inconclusive"


def pareto_table(responses: Sequence[str], prefix_words: Sequence[int] = (1, 2, 3)) -> pd.DataFrame:
    """One row per level (whole responses, then n-word prefixes): distinct items, the fit and
    its verdict."""
    levels = {"response": list(responses)} | {f"prefix-{n}": prefixes(responses, n)
                                              for n in prefix_words}
    rows = []
    for level, items in levels.items():
        counts = rank_frequency(items)["count"]
        rows.append({"level": level, "items": len(items), "distinct": len(counts),
                     **fit_counts(counts)})
    return pd.DataFrame(rows)
