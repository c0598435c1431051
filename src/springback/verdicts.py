"""Claim rows: a statistic's replicates summarised into a value, a 95 % CI and a verdict, and
the paired comparison with a control (``claim_row``). Shared by claims.csv (springback.claims),
the compression theorem's rows (springback.theorem) and the pair report cards."""

from __future__ import annotations

import numpy as np

from springback.elasticity import equivalence, summarise, verdict

# How a control is compared with the effect (column ``comparison``):
# - exceeds: the effect minus the control, in the same replicate, lies above 0 (a control without
#   a pretrained spring cannot produce the effect: random init, pre-emergence; the mirror world for
#   context recovery, whose recovery, read against the main world's cues, has the opposite sign);
# - equivalent: |effect - control| lies within the margin (the mirror world, pretrained as much as
#   main with the mapping reversed, must show the same shape of rebound if pretraining makes it).
EXCEEDS, EQUIVALENT = "exceeds", "equivalent"

ROW_COLUMNS = ["claim", "statement", "task", "world", "size", "pretrain_tokens", "algo",
               "direction", "n_runs", "statistic", "null", "value", "ci_low", "ci_high",
               "verdict", "control", "comparison", "control_value", "control_defined",
               "difference", "diff_ci_low", "diff_ci_high", "attributable", "detail"]


def claim_row(claim: str, statement: str, stat: str, null: float, key: dict,
              effect: np.ndarray, control_name: str = "none",
              control: np.ndarray | None = None, *, comparison: str = EXCEEDS,
              margin: float | None = None, equality: bool = False, detail: str = "") -> dict:
    """One claims.csv row from replicate values (row 0 = point estimate) of the effect and,
    optionally, of a control computed from the same bootstrap draws. ``equality``: the claim
    is that the statistic equals ``null`` within +-``margin`` (two one-sided tests), not that it
    exceeds it."""
    value, low, high = summarise(effect)
    v = equivalence(low - null, high - null, margin) if equality else verdict(low, high, null)
    row = {"claim": claim, "statement": statement, **key, "statistic": stat, "null": null,
           "value": value, "ci_low": low, "ci_high": high, "verdict": v,
           "control": control_name, "comparison": comparison if control is not None else "",
           "detail": detail}
    if control is None:
        return {**row, "control_value": np.nan, "control_defined": np.nan, "difference": np.nan,
                "diff_ci_low": np.nan, "diff_ci_high": np.nan,
                "attributable": "no" if v in ("refuted", "inconclusive") else "undetermined"}
    diff, d_low, d_high = summarise(effect - control)
    return {**row, "control_value": summarise(control)[0],
            "control_defined": float(np.isfinite(control[1:]).mean()),
            "difference": diff, "diff_ci_low": d_low, "diff_ci_high": d_high,
            "attributable": attribution(v, d_low, d_high, comparison, margin)}


def attribution(verdict_: str, diff_low: float, diff_high: float, comparison: str = EXCEEDS,
                margin: float | None = None) -> str:
    """exceeds: yes when the claim is supported and the paired difference's CI lies above 0; no
    when the claim is refuted or inconclusive (whatever the control) or the difference's CI
    reaches 0; undetermined when the claim itself is, or when it is supported but the difference
    has no CI (the control's statistic is undefined in most replicates). equivalent: yes when the difference's CI lies
    within +-margin, no when it does not, undetermined without a CI."""
    if comparison == EQUIVALENT:
        if np.isnan(diff_low) or np.isnan(diff_high):
            return "undetermined"
        return "yes" if -margin < diff_low and diff_high < margin else "no"
    if verdict_ == "undetermined":
        return "undetermined"
    if verdict_ != "supported":
        return "no"
    if np.isnan(diff_low):
        return "undetermined"
    return "yes" if diff_low > 0 else "no"


def excluded(row: dict, why: str) -> dict:
    """A row whose effect comes from a regime that is not competent: no verdict, no CI."""
    return {**row, "ci_low": np.nan, "ci_high": np.nan, "verdict": "undetermined",
            "diff_ci_low": np.nan, "diff_ci_high": np.nan, "attributable": "undetermined",
            "detail": "; ".join(d for d in (f"excluded: {why}", row.get("detail", "")) if d)}
