"""The claims table: per claim of the paper (and springback's elasticity statistics), what was
measured, a 95 % CI, a verdict, and the paired comparison with every control.

Everything is computed from the per-prompt table (``tables/prompts.parquet``), for C7 the
checkpoint table (``tables/checkpoints.csv``), and for C1 the per-run resistance table
(``tables/resistance.csv``) by the statistics core
(``springback.elasticity``), so a user can recompute claims.csv from those files alone:

    python -m springback.claims results/toy/tables claims.csv

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

from springback.elasticity import (CONDITION, condition_cubes, curve_stats, make_draws,
                                   replicate_curves, run_weights, summarise, verdict)

STATEMENTS = {
    "C2": "Two-phase rebound: log-odds move fast until the base level, then slowly.",
    "C3": "More alignment data springs back faster: fewer negatives to return to base, and a "
          "stiffer pretrained state once there.",
    "C8": "Bidirectional: aligning on the contrary data first, then perturbing with the target "
          "data, shows the same two-phase rebound.",
    "E1": "Retained stiffness: after springing back to the base level, moving claims.beyond "
          "nats past it takes more examples than leaving the base the first time (S > 1).",
    "E2": "Context recovery: during the perturbation the pretrained cue -> behaviour mapping comes "
          "back (peak cue gap minus the gap right after alignment, as a share of the base's).",
    "C1": "Resistance: fine-tuning a later saved model back on an earlier one's answers (inverse) "
          "ends at a lower training loss than the forward move (forward - inverse > 0).",
    "C6": "Algorithm independence: the rebound statistics (statistic = claim:statistic) hold when "
          "both phases are trained by DPO, KTO, SimPO or GRPO instead of SFT.",
    "C7": "Theorem 4.2: under perturbation the alignment set's bits/byte rises about k = "
          "|D_p|/|D_a| times faster than the pretraining set's falls (k-exponent > 0, about 1), "
          "and |D_i| x Delta(rate of D_i) is about equal across datasets (log ratio ~ 0).",
    "C4": "Model size: elasticity grows with parameters (slope per decade of non-embedding "
          "parameters, deepest alignment, forward).",
    "C5": "Pretraining volume: elasticity grows with pretraining tokens and is absent at small "
          "volume (slope per decade of tokens, deepest alignment, forward).",
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


# Trend claims: statistics whose slope is read (the paper's side is always a positive slope:
# faster_return = -return_count, fewer negatives to get back to the base level).
TREND_STATS = ("stiffness", "recovery", "faster_return")
TREND_COLUMNS = ["claim", "task", "axis", "x", "label", "arm", "statistic", "value", "ci_low",
                 "ci_high", "base_cue_gap"]


def trend_value(stats: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Replicate values [B] of a trend statistic on the deepest aligned arm."""
    if name == "faster_return":
        return -stats["return_count"][:, -1]
    return stats[name][:, -1]


def slope(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slope of values[b, point] on x[point] per replicate (NaN where a point is)."""
    xc = x - x.mean()
    with np.errstate(invalid="ignore"):
        out = (values - values.mean(1, keepdims=True)) @ xc / (xc @ xc)
    return np.where(np.isfinite(values).all(1), out, np.nan)


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


def trend_groups(cubes: dict, prompts: pd.DataFrame) -> list[dict]:
    """The series the trend claims read, found in the data: C4, >= 3 sizes of main bases of the
    main world at one budget (control: each size's random-init twin); C5, >= 3 budgets (> 0) of
    one size of the main world, any role but a random-init or mirror control (the volume series
    may include the pre-emergence control). Forward direction only."""
    column = next((c for c in ("params_nonembedding", "params") if c in prompts), None)
    nonemb = prompts.groupby("size")[column].first() if column else None
    fwd = [k for k in cubes if k[1] == "main" and k[5] == "forward"]
    groups = []
    for keys in _by(fwd, lambda k: (k[0], k[3], k[4]), role="main").values():
        if nonemb is not None and len({k[2] for k in keys}) >= 3:
            keys = sorted(keys, key=lambda k: nonemb[k[2]])
            controls = [(*k[:3], 0, *k[4:6], "random_init") for k in keys]
            groups.append({"claim": "C4", "keys": keys, "raw": [nonemb[k[2]] for k in keys],
                           "labels": [k[2] for k in keys],
                           "controls": controls if all(c in cubes for c in controls) else None})
    series = [k for k in fwd if k[3] > 0 and k[-1] not in ("random_init", "mirror")]
    for _, keys in _by(series, lambda k: (k[0], k[2], k[4])).items():
        if len({k[3] for k in keys}) >= 3:
            keys = sorted(keys, key=lambda k: k[3])
            groups.append({"claim": "C5", "keys": keys, "raw": [k[3] for k in keys],
                           "labels": [f"{k[3]:,}" for k in keys], "controls": None})
    return groups


def _by(keys, group, role=None) -> dict:
    out = {}
    for k in keys:
        if role is None or k[-1] == role:
            out.setdefault(group(k), []).append(k)
    return out


def trend_rows(cubes: dict, draws, prompts: pd.DataFrame, *,
               beyond: float) -> tuple[list[dict], list[dict]]:
    """C4 and C5 rows: the slope of each trend statistic over log10 parameters (C4) or log10
    tokens (C5) per bootstrap replicate (every point resampled with the same draws), paired
    with the same slope over the random-init twins (C4). C5 reads recovery as a share of the
    largest budget's base cue gap (a pre-emergence base has none of its own), and adds the slope
    over the budgets past emergence (base cue gap >= half the largest budget's): a trend there
    means elasticity tracks tokens seen, none means it tracks the presence of the mapping.
    Also returns the points of every series with their CIs (tables/trends.csv, the figures)."""
    rows, points = [], []
    for g in trend_groups(cubes, prompts):
        keys, g["x"] = g["keys"], np.log10(np.asarray(g["raw"], float))
        ref = condition_stats(cubes[keys[-1]], draws, beyond=beyond)[1] if g["claim"] == "C5" \
            else None
        effect, base_gaps = zip(*(condition_stats(cubes[k], draws, beyond=beyond, gap_ref=ref)
                                  for k in keys))
        gaps = [gap[0] for gap in base_gaps]
        control = None
        if g["controls"]:  # each twin's recovery is a share of its pretrained size's base gap
            control = [condition_stats(cubes[c], draws, beyond=beyond, gap_ref=gap)[0]
                       for c, gap in zip(g["controls"], base_gaps)]
        series = [("", np.arange(len(keys)))]
        if g["claim"] == "C5":
            past = np.flatnonzero(np.array(gaps) >= 0.5 * gaps[-1])
            if len(past) >= 2:
                series.append(("_past_emergence", past))
        label = {"task": keys[0][0], "world": "main",
                 "size": "|".join(dict.fromkeys(k[2] for k in keys)),
                 "pretrain_tokens": "|".join(dict.fromkeys(str(k[3]) for k in keys)),
                 "algo": keys[0][4], "direction": "forward",
                 "n_runs": sum(cubes[k].runs for k in keys)}
        for name in TREND_STATS:
            values = np.stack([trend_value(s, name) for s in effect], 1)
            c_values = (np.stack([trend_value(s, name) for s in control], 1)
                        if control is not None else None)
            for arm, vals in (("effect", values), ("random_init", c_values)):
                for i in range(len(keys)) if vals is not None else ():
                    value, low, high = summarise(vals[:, i])
                    points.append({"claim": g["claim"], "task": label["task"],
                                   "axis": "parameters" if g["claim"] == "C4" else "tokens",
                                   "x": g["raw"][i], "label": g["labels"][i], "arm": arm,
                                   "statistic": name, "value": value, "ci_low": low,
                                   "ci_high": high,
                                   "base_cue_gap": gaps[i] if arm == "effect" else np.nan})
            for suffix, idx in series:
                eff = slope(g["x"][idx], values[:, idx])
                ctl = slope(g["x"][idx], c_values[:, idx]) if c_values is not None else None
                row = claim_row(g["claim"], f"slope_{name}{suffix}", 0.0, label, eff,
                                "random_init" if ctl is not None else "none", ctl)
                row["detail"] = "; ".join(
                    f"{g['labels'][i]}: {values[0, i]:.3g}" for i in idx) + (
                    f"; base cue gap {', '.join(f'{gaps[i]:.2f}' for i in idx)}"
                    if g["claim"] == "C5" else "")
                rows.append(row)
    return rows, points


def resistance_replicates(runs: pd.DataFrame, n_boot: int, seed: int = 0) -> dict:
    """Per base (size, tokens, role): replicate means [B, cell x direction] of the final loss
    and KL over runs (pretraining seed x fine-tuning seed), resampled hierarchically from draws
    shared by every base, so an effect and its random-init twin are paired."""
    out = {}
    shape = (runs["pretrain_seed"].nunique(), runs["seed"].nunique(), 1)
    draws = make_draws(n_boot, shape, seed)
    for key, frame in runs.groupby(["size", "pretrain_tokens", "role"]):
        wide = frame.pivot_table(index=["pretrain_seed", "seed"], columns=["cell", "direction"],
                                 values=["loss", "kl"])
        n_p, n_f = frame["pretrain_seed"].nunique(), frame["seed"].nunique()
        w = run_weights(draws, n_p, n_f).reshape(len(draws.pseed) + 1, -1)
        out[key] = {m: pd.DataFrame(w @ wide[m].to_numpy() / w.sum(1, keepdims=True),
                                    columns=wide[m].columns) for m in ("loss", "kl")}
        out[key]["n_runs"] = len(wide)
    return out


def resistance_rows(runs: pd.DataFrame, n_boot: int, seed: int = 0) -> list[dict]:
    """C1 rows per pretrained size: forward - inverse final loss per cell and pooled over
    cells, and the pooled KL gap, each paired with the random-init twin of that size."""
    reps, rows = resistance_replicates(runs, n_boot, seed), []
    for (size, tokens, role), base in reps.items():
        if role != "main":
            continue
        twin = next((v for (s, _, r), v in reps.items() if s == size and r == "random_init"), None)
        label = {"task": "resistance", "world": "main", "size": size, "pretrain_tokens": tokens,
                 "algo": "sft", "direction": "forward-inverse", "n_runs": base["n_runs"]}
        cells = sorted(base["loss"].columns.get_level_values("cell").unique())
        stats = [(f"loss_gap_{c}", "loss", [c]) for c in cells] + [
            ("loss_gap_pooled", "loss", cells), ("kl_gap_pooled", "kl", cells)]
        for name, metric, which in stats:
            def gap(v):
                return np.mean([v[metric][c, "forward"] - v[metric][c, "inverse"] for c in which], 0)
            rows.append(claim_row("C1", name, 0.0, label, gap(base),
                                  "random_init" if twin else "none", gap(twin) if twin else None))
    return rows


def resistance_summary(runs: pd.DataFrame, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """Mean final loss and KL per base, cell and direction with their CIs (the figure)."""
    rows = []
    for (size, tokens, role), base in resistance_replicates(runs, n_boot, seed).items():
        for metric in ("loss", "kl"):
            for (cell, direction), reps in base[metric].items():
                value, low, high = summarise(reps.to_numpy())
                rows.append({"size": size, "pretrain_tokens": tokens, "role": role, "cell": cell,
                             "direction": direction, "metric": metric, "value": value,
                             "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["size", "pretrain_tokens", "role", "cell", "direction",
                                       "metric", "value", "ci_low", "ci_high"])


def claims_table(prompts: pd.DataFrame, *, n_boot: int, beyond: float = 2.0, seed: int = 0,
                 metric: str = "logodds", resistance: pd.DataFrame | None = None,
                 checkpoints: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every claim row (see ``claims_and_trends``)."""
    return claims_and_trends(prompts, n_boot=n_boot, beyond=beyond, seed=seed, metric=metric,
                             resistance=resistance, checkpoints=checkpoints)[0]


def claims_and_trends(prompts: pd.DataFrame, *, n_boot: int, beyond: float = 2.0, seed: int = 0,
                      metric: str = "logodds", resistance: pd.DataFrame | None = None,
                      checkpoints: pd.DataFrame | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every claim row for every main (effect) condition, once per control of the same task,
    size and direction (or once with control "none" when there is no control), then the trend
    rows (C4, C5), the resistance rows (C1, from its per-run table) and the compression-theorem
    rows (C7, from the checkpoint table's bits/byte); and the points of the trend series and of
    the theorem's k fit."""
    from springback.theorem import c7_rows, points_frame
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
    for spec_claim, direction, spec_stat, _, null in SPECS:
        for key, cube in cubes.items():
            if key[-1] != "main" or key[5] != direction:
                continue
            # another algorithm's rows are C6's: "does it show C2, C3, C8, E1, E2 too?"
            claim, shown = ((spec_claim, spec_stat) if key[4] == "sft"
                            else ("C6", f"{spec_claim}:{spec_stat}"))
            effect = claim_values(stats[key, None], spec_stat)
            label = dict(zip(CONDITION, key[:-1]), n_runs=cube.runs)
            controls = sorted(c for k, c in stats if k == key and c is not None)
            if not controls:
                rows.append(claim_row(claim, shown, null, label, effect, "none", None))
            for name in controls:
                rows.append(claim_row(claim, shown, null, label, effect, name,
                                      claim_values(stats[key, name], spec_stat)))
    trend, points = trend_rows(cubes, draws, prompts, beyond=beyond)
    rows += trend
    if resistance is not None and len(resistance):
        rows += resistance_rows(resistance, n_boot, seed)
    theorem = []
    if checkpoints is not None and metric == "logodds":
        from springback.tables import conditions

        per_example = (checkpoints[checkpoints["direction"] == "forward"].groupby("task")[
            "phase1_tokens"].mean().to_dict() if "phase1_tokens" in checkpoints else None)
        c7, theorem = c7_rows(conditions(prompts, checkpoints, n_boot, seed=seed, metric=metric),
                              phase1_tokens=per_example)
        rows += c7
    return pd.DataFrame(rows), pd.DataFrame(points, columns=TREND_COLUMNS), points_frame(theorem)


def resistance_table(files: list[str]) -> pd.DataFrame:
    """The per-run forward/inverse rows of every resistance base, with its role."""
    frames = [pd.read_csv(f) for f in files]
    if not frames:
        return pd.DataFrame(columns=["role", "size", "pretrain_tokens", "pretrain_seed", "seed",
                                     "cell", "direction", "loss", "kl"])
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "role", np.where(table["pretrain_tokens"] == 0, "random_init", "main"))
    return table


def write_claims(*, prompts: str, checkpoints: str, n_boot: int, beyond: float,
                 max_dp_rise: float, out: dict[str, str], metric: str = "logodds",
                 resistance: list[str] = ()) -> None:
    """claims.csv and the elasticity, per-run, regime, trend and resistance tables."""
    from springback.tables import elasticity_table, regime_table, runs_table

    per_prompt, table = pd.read_parquet(prompts), pd.read_csv(checkpoints)
    runs_res = resistance_table(list(resistance))
    runs_res.to_csv(out["resistance"], index=False)
    claims, trends, theorem = claims_and_trends(per_prompt, n_boot=n_boot, beyond=beyond,
                                                metric=metric, resistance=runs_res,
                                                checkpoints=table)
    theorem.to_csv(out["theorem"], index=False)
    claims.to_csv(out["claims"], index=False)
    trends.to_csv(out["trends"], index=False)
    elasticity_table(per_prompt, table, n_boot=n_boot, beyond=beyond, metric=metric).to_csv(
        out["elasticity"], index=False)
    runs = runs_table(per_prompt, table, beyond=beyond, metric=metric)
    runs.to_csv(out["runs"], index=False)
    regime_table(table, runs, max_dp_rise=max_dp_rise).to_csv(out["regime"], index=False)


USAGE = "usage: python -m springback.claims TABLES_DIR OUT.csv [N_BOOT [METRIC]]"


def main(argv: list[str]) -> None:
    """``python -m springback.claims TABLES_DIR OUT.csv [N_BOOT [METRIC]]``: claims.csv from a
    study's tables/ (prompts.parquet, checkpoints.csv and, if present, resistance.csv)."""
    from pathlib import Path

    if len(argv) not in (2, 3, 4):
        raise SystemExit(USAGE)
    tables = Path(argv[0])
    n_boot = int(argv[2]) if len(argv) >= 3 else 1000
    res = tables / "resistance.csv"
    claims_table(pd.read_parquet(tables / "prompts.parquet"), n_boot=n_boot,
                 metric=argv[3] if len(argv) == 4 else "logodds",
                 resistance=pd.read_csv(res) if res.is_file() else None,
                 checkpoints=pd.read_csv(tables / "checkpoints.csv")).to_csv(argv[1], index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
