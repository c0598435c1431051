"""The claims table: per claim of the paper (and springback's elasticity statistics), what was
measured, a 95 % CI, a verdict, and the paired comparison with every control.

Everything is computed from the per-prompt table (``tables/prompts.parquet``) by the statistics
core (``springback.elasticity``), so a user can recompute claims.csv from that file alone:

    python -m springback.claims results/toy/tables/prompts.parquet claims.csv

Roles: the pretrained base of the main world is the *effect*; the controls are the bases whose
``role`` names one (``random_init``, ``pre_emergence``, ``mirror``). For every replicate of the
paired bootstrap the statistic is computed on the effect and on the control, and ``difference``
= effect - control; ``attributable`` is "yes" when the claim is supported and the difference's
CI lies entirely on the paper's side of 0 (the effect exceeds what the control shows in the same
replicate), "no" when either fails, "undetermined" when the difference has no CI (``control_defined`` = the share of
replicates in which the control's statistic exists: 0 when, e.g., the control never returns to its
base level within the n_neg grid).
The verdict tests the statistic against its null (1 for ratios, 0 for differences).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from springback.elasticity import (CONDITION, condition_cubes, curve_stats, replicate_curves,
                                   summarise, verdict)

STATEMENTS = {
    "C2": "Two-phase rebound: log-odds move fast until the base level, then slowly.",
    "C3": "More alignment data springs back faster: fewer negatives to return to base, and a "
          "stiffer pretrained state once there.",
    "C8": "Bidirectional: aligning on the contrary data first, then perturbing with the target "
          "data, shows the same two-phase rebound.",
    "E1": "Retained stiffness: after springing back to the base level, moving 2 nats beyond it "
          "takes more examples than leaving the base the first time (S > 1).",
    "E2": "Context recovery: during the perturbation the pretrained cue -> behaviour mapping comes "
          "back (peak cue gap minus the gap right after alignment, as a share of the base's).",
}

# (claim, direction, statistic, arm ("deep" = largest n_pos, "gain" = largest minus smallest),
#  null); the paper's side is always "greater than the null".
SPECS = [
    ("C2", "forward", "two_phase", "deep", 1.0),
    ("C3", "forward", "return_saving", "gain", 0.0),
    ("C3", "forward", "stiffness_gain", "gain", 0.0),
    ("C8", "reversed", "two_phase", "deep", 1.0),
    ("E1", "forward", "stiffness", "deep", 1.0),
    ("E2", "forward", "recovery", "deep", 0.0),
]


def claim_values(stats: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Replicate values of a claim statistic from curve statistics [B, arm]."""
    if name == "return_saving":  # smallest aligned arm minus deepest: > 0 = deeper returns sooner
        return stats["return_count"][:, 1] - stats["return_count"][:, -1]
    if name == "stiffness_gain":
        return stats["stiffness"][:, -1] - stats["stiffness"][:, 1]
    return stats[name][:, -1]


def condition_stats(cube, draws, *, beyond: float, gap_ref=None):
    level, gap = replicate_curves(cube, draws)
    return curve_stats(cube.n_neg.astype(float), level, gap, cube.sign, beyond=beyond,
                       gap_ref=gap_ref), gap[:, 0, 0]


def claim_row(claim, stat, null, key, effect, control_name, control) -> dict:
    value, low, high = summarise(effect)
    row = {"claim": claim, "statement": STATEMENTS[claim], **key, "statistic": stat,
           "null": null, "value": value, "ci_low": low, "ci_high": high,
           "verdict": verdict(low, high, null), "control": control_name}
    if control is None:
        return {**row, "control_value": np.nan, "control_defined": np.nan, "difference": np.nan,
                "diff_ci_low": np.nan, "diff_ci_high": np.nan, "attributable": "undetermined"}
    c_value = summarise(control)[0]
    diff, d_low, d_high = summarise(effect - control)
    return {**row, "control_value": c_value,
            "control_defined": float(np.isfinite(control[1:]).mean()),
            "difference": diff, "diff_ci_low": d_low, "diff_ci_high": d_high,
            "attributable": attribution(row["verdict"], d_low)}


def attribution(verdict_: str, diff_low: float) -> str:
    """yes: the claim is supported and the paired difference's CI lies above 0 (the effect
    exceeds the control's in the same replicates); no: either fails; undetermined: the
    difference has no CI (the statistic is undefined on the effect or the control in most
    replicates, e.g. a control that never returns to its base level within the grid:
    ``control_defined`` says how often it exists)."""
    if not np.isfinite(diff_low):
        return "undetermined"
    return "yes" if verdict_ == "supported" and diff_low > 0 else "no"


def claims_table(prompts: pd.DataFrame, *, n_boot: int, beyond: float = 2.0, seed: int = 0,
                 metric: str = "logodds") -> pd.DataFrame:
    """Every claim row for every main (effect) condition, once per control of the same task,
    size and direction (or once with control "none" when there is no control)."""
    cubes, draws = condition_cubes(prompts, n_boot, metric=metric, seed=seed)
    stats = {}  # (main key, control name or None) -> replicate statistics, computed once each
    for key, cube in cubes.items():
        if key[-1] != "main":
            continue
        stats[key, None], base_gap = condition_stats(cube, draws, beyond=beyond)
        for c_key, c_cube in cubes.items():
            if c_key[-1] != "main" and (c_key[0], c_key[2], c_key[4], c_key[5]) == \
                    (key[0], key[2], key[4], key[5]):
                stats[key, c_key[-1]] = condition_stats(c_cube, draws, beyond=beyond,
                                                        gap_ref=base_gap)[0]
    rows = []
    for claim, direction, stat, _, null in SPECS:
        for key, cube in cubes.items():
            if key[-1] != "main" or key[5] != direction:
                continue
            effect = claim_values(stats[key, None], stat)
            label = dict(zip(CONDITION, key[:-1]), n_runs=cube.runs)
            controls = sorted(c for k, c in stats if k == key and c is not None)
            if not controls:
                rows.append(claim_row(claim, stat, null, label, effect, "none", None))
            for name in controls:
                rows.append(claim_row(claim, stat, null, label, effect, name,
                                      claim_values(stats[key, name], stat)))
    return pd.DataFrame(rows)


def write_claims(*, prompts: str, checkpoints: str, n_boot: int, beyond: float,
                 max_dp_rise: float, out: dict[str, str], metric: str = "logodds") -> None:
    """claims.csv and the elasticity, per-run and regime tables of a study."""
    from springback.tables import elasticity_table, regime_table, runs_table

    per_prompt, table = pd.read_parquet(prompts), pd.read_csv(checkpoints)
    claims_table(per_prompt, n_boot=n_boot, beyond=beyond, metric=metric).to_csv(
        out["claims"], index=False)
    elasticity_table(per_prompt, table, n_boot=n_boot, beyond=beyond, metric=metric).to_csv(
        out["elasticity"], index=False)
    runs = runs_table(per_prompt, table, beyond=beyond, metric=metric)
    runs.to_csv(out["runs"], index=False)
    regime_table(table, runs, max_dp_rise=max_dp_rise).to_csv(out["regime"], index=False)


def main(argv: list[str]) -> None:
    """``python -m springback.claims PROMPTS.parquet OUT.csv [N_BOOT]``."""
    if len(argv) not in (2, 3):
        raise SystemExit("usage: python -m springback.claims PROMPTS.parquet OUT.csv [N_BOOT]")
    n_boot = int(argv[2]) if len(argv) == 3 else 1000
    claims_table(pd.read_parquet(argv[0]), n_boot=n_boot).to_csv(argv[1], index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
