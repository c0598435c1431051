"""The claims table: per claim of the paper (and springback's elasticity statistics), what was
measured, a 95 % CI, a verdict, and the paired comparison with every control.

Everything is computed from the per-prompt table (``tables/prompts.parquet``), for C7 and the
regime the checkpoint table (``tables/checkpoints.csv``), and for C1 the per-run resistance
table (``tables/resistance.csv``) by the statistics core (``springback.elasticity``), so a user
can recompute claims.csv from those files alone:

    python -m springback.claims results/toy/tables claims.csv

Roles: a pretrained base with role ``main`` is an *effect* (the main world's, and each
prior-shifted world's); the controls are the bases whose ``role`` names one (``random_init``,
``pre_emergence``, ``mirror``), paired with every effect of the same task, size, algorithm and
direction. In every replicate of the paired bootstrap the statistic is computed on the effect
and on the control; ``comparison`` says how they are compared (springback.verdicts): random init
and pre-emergence must fall short of the effect (``exceeds``), the mirror world must show the
same rebound shape within ``claims.margin`` (``equivalent``) and, for context recovery, the
opposite sign (``exceeds`` against the main world's cues). Rows of an effect whose fine-tuning
regime is not competent (tables/regime.csv) keep their point value but no CI and no verdict;
comparisons with a control whose regime is not competent have ``attributable`` undetermined.
Each statistic's null and why geometry alone does not produce it: springback.elasticity and
docs/statistics.md.

Per-prompt tables made elsewhere: one row per checkpoint x prompt with the columns role, task,
world, size, pretrain_tokens, algo, direction, pretrain_seed, seed, n_pos, n_neg, prompt,
context (bool: the context favouring the target), clean, logodds; the grid must be complete
per condition. A world other than ``main`` and ``mirror`` whose bases have role ``main`` is a
prior-shifted world (E3).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from springback.elasticity import (BAND, CONDITION, EARLY, LEVEL_STEP, MIN_EXCESS,
                                   condition_cubes, curve_stats, level_profile, make_draws,
                                   registration_shift, replicate_curves, run_weights, slope,
                                   summarise)
from springback.findings import write_findings
from springback.mitigation import is_arm, mitigation_rows
from springback.tables import (competence, conditions, elasticity_table, regime_table,
                               runs_table)
from springback.theorem import c7_rows, points_frame
from springback.verdicts import EQUIVALENT, EXCEEDS, ROW_COLUMNS, claim_row, excluded

STATEMENTS = {
    "C2": "Two-phase rebound at the base: the log-odds slow down where they pass the base level "
          "more than at nearby levels (kink excess above claims.min_excess; a straight, "
          "log-shaped or symmetric S-shaped decline gives 0).",
    "C3": "More alignment data springs back faster: from the same log-odds, the deepest "
          "alignment moves back to the base level in fewer examples than the shallowest (ln "
          "time ratio > 0; starting higher alone does not count).",
    "C8": "Bidirectional: aligning on the contrary data first, then perturbing with the target "
          "data, slows down at the base level too (kink excess above claims.min_excess).",
    "E1": "Retained stiffness: leaving the base level again costs the aligned model more "
          "examples than it costs the fresh base, beyond the same ratio one band further on "
          "(stiffness excess above claims.min_excess).",
    "E2": "Context recovery: when the behaviour passes back through the base level, the "
          "pretrained cue -> behaviour mapping has come back (cue gap there minus right after "
          "alignment, as a share of the base's).",
    "E3": "The breakpoint follows the pretrained prior: in worlds whose pretraining shifts the "
          "base level, the rebound's level profile shifts with it (slope of the fitted shift on "
          "the base-level shift: 1 a spring anchored at the base, 0 saturation at fixed log-odds).",
    "C1": "Resistance: fine-tuning a later saved model back on an earlier one's answers (inverse) "
          "ends closer to its target than the forward move (forward - inverse excess loss > 0; "
          "each loss minus its target model's own loss on its answers).",
    "C6": "Algorithm independence: the rebound statistics (statistic = claim:statistic) hold when "
          "both phases are trained by DPO, KTO, SimPO or GRPO instead of SFT.",
    "C7": "Theorem 4.2: under perturbation the alignment set's bits/byte rises about k = "
          "|D_p|/|D_a| times faster than the pretraining set's falls (k-exponent > 0, about 1), "
          "and |D_i| x Delta(rate of D_i) is about equal across datasets (log ratio 0 within the "
          "margin).",
    "C4": "Model size: elasticity grows with parameters (slope per decade of non-embedding "
          "parameters, deepest alignment, forward).",
    "C5": "Pretraining volume: elasticity grows with pretraining tokens and is absent at small "
          "volume (slope per decade of tokens, deepest alignment, forward).",
}

# (claim, direction, statistic, null); the paper's side is always "greater than the null".
# The excess statistics' null is the smallest excess that counts (claims.min_excess): on smooth
# curves without a spring, the grid's linear interpolation alone reads up to about +-0.05
# (benchmarks/null_curves.py), so a kink must exceed that to be told from it.
SPECS = [
    ("C2", "forward", "kink_excess", "min_excess"),
    ("C3", "forward", "return_speed_gain", 0.0),
    ("C8", "reversed", "kink_excess", "min_excess"),
    ("E1", "forward", "stiffness_excess", "min_excess"),
    ("E2", "forward", "recovery", 0.0),
]
# statistics of the rebound's shape, which the mirror world must reproduce (equivalence)
SHAPE = {"kink_excess", "stiffness_excess", "return_speed_gain"}
# Trend claims: statistics whose slope is read on the deepest arm (the paper's side: positive).
TREND_STATS = ("kink_excess", "recovery", "return_speedup")
TREND_COLUMNS = ["claim", "task", "axis", "x", "label", "arm", "statistic", "value", "ci_low",
                 "ci_high", "base_cue_gap"]
DEFAULTS = {"band": BAND, "early": EARLY, "min_excess": MIN_EXCESS, "margin": 0.25,
            "spring_margin": 0.5}


def claim_values(stats: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Replicate values of a claim statistic from curve statistics [B, arm]: the deepest arm's
    (C3's ``return_speed_gain`` compares it with the shallowest aligned arm)."""
    return stats[name][:, -1]


def condition_stats(cube, draws, *, opts: dict, gap_ref=None):
    """(curve statistics [B, arm], the base cue gap [B], the replicate curves)."""
    level, gap = replicate_curves(cube, draws)
    stats = curve_stats(cube.n_neg.astype(float), level, gap, cube.sign, band=opts["band"],
                        early=opts["early"], gap_ref=gap_ref)
    return stats, gap[:, 0, 0], level


def label_of(key: tuple, cube) -> dict:
    return dict(zip(CONDITION, key[:-1]), n_runs=cube.runs)


def paired(key: tuple, other: tuple) -> bool:
    """A control pairs with an effect of the same task, size, algorithm and direction; the
    mirror world (as pretrained as main) with an effect at its own budget only."""
    return (other[-1] != "main" and
            (other[0], other[2], other[4], other[5]) == (key[0], key[2], key[4], key[5]) and
            (other[-1] != "mirror" or other[3] == key[3]))


class Study:
    """The cubes of a study with their shared draws and the statistics computed once each."""

    def __init__(self, prompts: pd.DataFrame, *, n_boot: int, metric: str, seed: int,
                 opts: dict, regime: dict | None = None):
        self.cubes, self.draws = condition_cubes(prompts, n_boot, metric=metric, seed=seed)
        self.opts, self.regime, self.prompts = opts, regime or {}, prompts
        self._stats: dict = {}

    def stats(self, key: tuple, gap_ref_key: tuple | None = None):
        """Curve statistics of a condition; a control's recovery is a share of ``gap_ref_key``'s
        base cue gap (its effect's)."""
        if (key, gap_ref_key) not in self._stats:
            ref = self.stats(gap_ref_key)[1] if gap_ref_key else None
            self._stats[key, gap_ref_key] = condition_stats(self.cubes[key], self.draws,
                                                            opts=self.opts, gap_ref=ref)
        return self._stats[key, gap_ref_key]

    def competent(self, key: tuple) -> tuple[bool, str]:
        """Whether a base's regime is competent (unknown regimes count as competent)."""
        return self.regime.get((key[0], key[1], key[2], int(key[3])), (True, ""))


def rebound_rows(study: Study) -> list[dict]:
    """C2, C3, C8, E1, E2 (C6 for other algorithms) per effect condition, once per paired
    control (or once with control "none")."""
    rows = []
    for claim_id, direction, stat, null in SPECS:
        null = study.opts[null] if isinstance(null, str) else null
        for key, cube in study.cubes.items():
            if key[-1] != "main" or key[5] != direction or is_arm(key[4]):
                continue  # a mitigation arm's rows are M1 and M2 (springback.mitigation)
            claim, shown = ((claim_id, stat) if key[4] == "sft"
                            else ("C6", f"{claim_id}:{stat}"))
            effect = claim_values(study.stats(key)[0], stat)
            controls = sorted((k for k in study.cubes if paired(key, k)), key=lambda k: k[-1])
            made = [control_row(study, claim, shown, stat, null, key, effect, c) for c in controls]
            rows += made or [claim_row(claim, STATEMENTS[claim], shown, null,
                                       label_of(key, cube), effect)]
    return [gate(study, r) for r in rows]


def control_row(study: Study, claim: str, shown: str, stat: str, null: float, key: tuple,
                effect: np.ndarray, c_key: tuple) -> dict:
    role = c_key[-1]
    equal = role == "mirror" and stat in SHAPE
    control = claim_values(study.stats(c_key, key)[0], stat)
    row = claim_row(claim, STATEMENTS[claim], shown, null, label_of(key, study.cubes[key]),
                    effect, role, control, comparison=EQUIVALENT if equal else EXCEEDS,
                    margin=study.opts["margin"])
    ok, why = study.competent(c_key)
    if not ok:
        row |= {"attributable": "undetermined",
                "detail": f"control regime not competent: {why}"}
    return row


def gate(study: Study, row: dict) -> dict:
    """The row as it is, or excluded when its effect's regime is not competent (rows of a
    single base only: series and cross-world rows check their bases themselves)."""
    tokens = row["pretrain_tokens"]
    if not isinstance(tokens, (int, np.integer)):
        return row
    ok, why = study.competent((row["task"], row["world"], row["size"], tokens))
    return row if ok else excluded(row, f"regime not competent ({why})")


# --- E3: the prior-shifted worlds ---------------------------------------------------------------

def prior_rows(study: Study) -> list[dict]:
    """E3 per task, size, algorithm and direction with effects in the main world and at least
    one prior-shifted world (role main, any world but mirror), at the same budget: the slope
    through the origin of each world's registration shift (``elasticity.registration_shift``,
    against the main world) on its base-level shift, per replicate. The paired control is the
    random-init base (no pretraining, so no prior to follow: the same runs in every world)."""
    rows = []
    groups: dict = {}
    for key in study.cubes:
        if key[-1] == "main" and key[1] != "mirror":
            groups.setdefault((key[0], key[2], key[3], key[4], key[5]), []).append(key)
    for (task, size, tokens, algo, direction), keys in sorted(groups.items()):
        ref = next((k for k in keys if k[1] == "main"), None)
        others = sorted(k for k in keys if k[1] != "main")
        if ref is None or not others:
            continue
        effect, shifts, moves = prior_follow(study, ref, others)
        twin = (task, "main", size, 0, algo, direction, "random_init")
        control = None
        if twin in study.cubes:  # random init is the same model in every world
            twins = [(task, k[1], *twin[2:]) if (task, k[1], *twin[2:]) in study.cubes else twin
                     for k in others]
            control = prior_follow(study, twin, twins, base_shift=moves)[0]
        label = {"task": task, "world": "|".join(["main"] + [k[1] for k in others]),
                 "size": size, "pretrain_tokens": tokens, "algo": algo, "direction": direction,
                 "n_runs": sum(study.cubes[k].runs for k in [ref] + others)}
        lifts = {k: study.stats(k)[0]["lift"][0, -1] for k in [ref] + others}
        detail = "; ".join(
            f"{k[1]}: base shift {m[0]:+.2f}, profile shift {s[0]:+.2f}, deepest lift "
            f"{lifts[k]:.2f} (main {lifts[ref]:.2f})" for k, m, s in zip(others, moves, shifts))
        row = claim_row("E3", STATEMENTS["E3"], "prior_follow", 0.0, label, effect,
                        "random_init" if control is not None else "none", control,
                        detail=detail)
        bad = [f"{k[1]}: {study.competent(k)[1]}" for k in [ref] + others
               if not study.competent(k)[0]]
        rows.append(excluded(row, "regime not competent: " + ", ".join(bad)) if bad else row)
    return rows


def prior_follow(study: Study, ref: tuple, others: list[tuple], *, base_shift=None):
    """(slope [B], per-world profile shifts, per-world base-level shifts) of E3."""
    grid = np.arange(-12.0, 12.0 + LEVEL_STEP / 2, LEVEL_STEP)
    ref_level = study.stats(ref)[2]
    ref_cube = study.cubes[ref]
    x = ref_cube.n_neg.astype(float)
    ref_prof = level_profile(x, ref_level, ref_cube.sign, grid)
    shifts, moves = [], []
    for i, key in enumerate(others):
        level = study.stats(key)[2]
        prof = level_profile(study.cubes[key].n_neg.astype(float), level, ref_cube.sign, grid)
        shifts.append(registration_shift(ref_prof, prof))
        moves.append(level[:, 0, 0] - ref_level[:, 0, 0] if base_shift is None
                     else base_shift[i])
    d, m = np.stack(shifts, 1), np.stack(moves, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        follow = (d * m).sum(1) / (m * m).sum(1)
    return follow, shifts, moves


# --- trend claims (C4 size, C5 volume) ----------------------------------------------------------

def trend_groups(cubes: dict, prompts: pd.DataFrame) -> list[dict]:
    """The series the trend claims read, found in the data: C4, >= 3 sizes of main bases of the
    main world at one budget (control: each size's random-init twin); C5, >= 3 budgets (> 0) of
    one size of the main world, any role but a random-init or mirror control (the volume series
    may include the pre-emergence control; control: the size's random-init base at every
    budget, which has no pretraining to grow). Forward direction only."""
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
            twin = (*keys[0][:3], 0, *keys[0][4:6], "random_init")
            groups.append({"claim": "C5", "keys": keys, "raw": [k[3] for k in keys],
                           "labels": [f"{k[3]:,}" for k in keys],
                           "controls": [twin] * len(keys) if twin in cubes else None})
    return groups


def _by(keys, group, role=None) -> dict:
    out = {}
    for k in keys:
        if role is None or k[-1] == role:
            out.setdefault(group(k), []).append(k)
    return out


def trend_rows(study: Study) -> tuple[list[dict], list[dict]]:
    """C4 and C5 rows: the slope of each trend statistic over log10 parameters (C4) or log10
    tokens (C5) per bootstrap replicate (every point resampled with the same draws), paired
    with the same slope over the random-init controls. C5 reads recovery as a share of the
    largest budget's base cue gap (a pre-emergence base has none of its own), and adds the slope
    over the budgets past emergence (base cue gap >= half the largest budget's): a trend there
    means elasticity tracks tokens seen, none means it tracks the presence of the mapping.
    A series with a base whose regime is not competent has no verdict. Also returns the points
    of every series with their CIs (tables/trends.csv, the figures)."""
    rows, points = [], []
    for g in trend_groups(study.cubes, study.prompts):
        keys, x = g["keys"], np.log10(np.asarray(g["raw"], float))
        ref = keys[-1] if g["claim"] == "C5" else None
        effect = [study.stats(k, ref if k != ref else None) for k in keys]
        gaps = [e[1][0] for e in effect]
        control = ([study.stats(c, k)[0] for c, k in zip(g["controls"], keys)]
                   if g["controls"] else None)
        series = [("", np.arange(len(keys)))]
        if g["claim"] == "C5":
            past = np.flatnonzero(np.array(gaps) >= 0.5 * gaps[-1])
            if len(past) >= 2:
                series.append(("_past_emergence", past))
        label = {"task": keys[0][0], "world": "main",
                 "size": "|".join(dict.fromkeys(k[2] for k in keys)),
                 "pretrain_tokens": "|".join(dict.fromkeys(str(k[3]) for k in keys)),
                 "algo": keys[0][4], "direction": "forward",
                 "n_runs": sum(study.cubes[k].runs for k in keys)}
        bad = [f"{k[2]}@{k[3]}: {study.competent(k)[1]}" for k in keys
               if not study.competent(k)[0]]
        for name in TREND_STATS:
            values = np.stack([e[0][name][:, -1] for e in effect], 1)
            c_values = (np.stack([c[name][:, -1] for c in control], 1)
                        if control is not None else None)
            points += trend_points(g, label, name, values, c_values, gaps)
            for suffix, idx in series:
                eff = slope(x[idx], values[:, idx])
                ctl = slope(x[idx], c_values[:, idx]) if c_values is not None else None
                detail = "; ".join(f"{g['labels'][i]}: {values[0, i]:.3g}" for i in idx)
                if g["claim"] == "C5":
                    detail += f"; base cue gap {', '.join(f'{gaps[i]:.2f}' for i in idx)}"
                row = claim_row(g["claim"], STATEMENTS[g["claim"]], f"slope_{name}{suffix}",
                                0.0, label, eff, "random_init" if ctl is not None else "none",
                                ctl, detail=detail)
                rows.append(excluded(row, "regime not competent: " + ", ".join(bad))
                            if bad else row)
    return rows, points


def trend_points(g: dict, label: dict, name: str, values, c_values, gaps) -> list[dict]:
    """The points of one trend series (effect and control) with their CIs."""
    out = []
    for arm, vals in (("effect", values), ("random_init", c_values)):
        for i in range(len(g["keys"])) if vals is not None else ():
            value, low, high = summarise(vals[:, i])
            out.append({"claim": g["claim"], "task": label["task"],
                        "axis": "parameters" if g["claim"] == "C4" else "tokens",
                        "x": g["raw"][i], "label": g["labels"][i], "arm": arm,
                        "statistic": name, "value": value, "ci_low": low, "ci_high": high,
                        "base_cue_gap": gaps[i] if arm == "effect" else np.nan})
    return out


# --- resistance (C1) ----------------------------------------------------------------------------

def resistance_replicates(runs: pd.DataFrame, n_boot: int, seed: int = 0) -> dict:
    """Per base (size, tokens, role): replicate means [B, cell x direction] of the final excess
    loss (the loss minus the target model's own loss on its answers, when the table has it)
    and KL over runs (pretraining seed x fine-tuning seed), resampled hierarchically from draws
    shared by every base, so an effect and its random-init twin are paired."""
    runs = runs.assign(excess=runs["loss"] - runs["target_loss"]
                       if "target_loss" in runs else runs["loss"])
    out = {}
    shape = (runs["pretrain_seed"].nunique(), runs["seed"].nunique(), 1)
    draws = make_draws(n_boot, shape, seed)
    for key, frame in runs.groupby(["size", "pretrain_tokens", "role"]):
        wide = frame.pivot_table(index=["pretrain_seed", "seed"], columns=["cell", "direction"],
                                 values=["excess", "loss", "kl"])
        n_p, n_f = frame["pretrain_seed"].nunique(), frame["seed"].nunique()
        w = run_weights(draws, n_p, n_f).reshape(len(draws.pseed) + 1, -1)
        out[key] = {m: pd.DataFrame(w @ wide[m].to_numpy() / w.sum(1, keepdims=True),
                                    columns=wide[m].columns) for m in ("excess", "loss", "kl")}
        out[key]["n_runs"] = len(wide)
    return out


def resistance_rows(runs: pd.DataFrame, n_boot: int, seed: int = 0) -> list[dict]:
    """C1 rows per pretrained size: forward - inverse final excess loss per cell and pooled
    over cells, and the pooled KL gap, each paired with the random-init twin of that size."""
    reps, rows = resistance_replicates(runs, n_boot, seed), []
    normalised = "target_loss" in runs
    for (size, tokens, role), base in reps.items():
        if role != "main":
            continue
        twin = next((v for (s, _, r), v in reps.items() if s == size and r == "random_init"), None)
        label = {"task": "resistance", "world": "main", "size": size, "pretrain_tokens": tokens,
                 "algo": "sft", "direction": "forward-inverse", "n_runs": base["n_runs"]}
        cells = sorted(base["loss"].columns.get_level_values("cell").unique())
        stats = [(f"loss_gap_{c}", "excess", [c]) for c in cells] + [
            ("loss_gap_pooled", "excess", cells), ("kl_gap_pooled", "kl", cells)]
        for name, metric, which in stats:
            def gap(v):
                return np.mean([v[metric][c, "forward"] - v[metric][c, "inverse"] for c in which], 0)
            rows.append(claim_row(
                "C1", STATEMENTS["C1"], name, 0.0, label, gap(base),
                "random_init" if twin else "none", gap(twin) if twin else None,
                detail="" if normalised or metric == "kl" else
                "raw losses: the table has no target_loss column"))
    return rows


def resistance_summary(runs: pd.DataFrame, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """Mean final loss, excess loss and KL per base, cell and direction with their CIs, from
    the replicates the C1 rows read (tables/resistance_summary.csv, the C1 figure)."""
    rows = []
    for (size, tokens, role), base in resistance_replicates(runs, n_boot, seed).items():
        for metric in ("loss", "excess", "kl"):
            for (cell, direction), reps in base[metric].items():
                value, low, high = summarise(reps.to_numpy())
                rows.append({"size": size, "pretrain_tokens": tokens, "role": role, "cell": cell,
                             "direction": direction, "metric": metric, "value": value,
                             "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["size", "pretrain_tokens", "role", "cell", "direction",
                                       "metric", "value", "ci_low", "ci_high"])


# --- the whole table ----------------------------------------------------------------------------

def claims_table(prompts: pd.DataFrame, *, n_boot: int, seed: int = 0, metric: str = "logodds",
                 resistance: pd.DataFrame | None = None,
                 checkpoints: pd.DataFrame | None = None, **opts) -> pd.DataFrame:
    """Every claim row (see ``claims_and_trends``)."""
    return claims_and_trends(prompts, n_boot=n_boot, seed=seed, metric=metric,
                             resistance=resistance, checkpoints=checkpoints, **opts)[0]


def claims_and_trends(prompts: pd.DataFrame, *, n_boot: int, seed: int = 0,
                      metric: str = "logodds", resistance: pd.DataFrame | None = None,
                      checkpoints: pd.DataFrame | None = None, max_dp_rise: float = 10.0,
                      **opts) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every claim row: the rebound claims (C2, C3, C8, E1, E2; C6 for other algorithms) per
    effect condition and paired control, E3 across worlds, the trend rows (C4, C5), the
    resistance rows (C1, from its per-run table) and the compression-theorem rows (C7, from the
    checkpoint table's bits/byte); and the points of the trend series and of the theorem's k
    fit. ``opts``: band, early, margin, spring_margin (``DEFAULTS``)."""
    opts = {**DEFAULTS, **{k: v for k, v in opts.items() if v is not None}}
    regime = None
    if checkpoints is not None and "bpb_perturb" in checkpoints:
        regime = competence(regime_table(checkpoints, prompts, max_dp_rise=max_dp_rise,
                                         early=opts["early"], metric=metric))
    study = Study(prompts, n_boot=n_boot, metric=metric, seed=seed, opts=opts, regime=regime)
    rows = (rebound_rows(study) + prior_rows(study)
            + [gate(study, r) for r in mitigation_rows(study, checkpoints)])
    trend, points = trend_rows(study)
    rows += trend
    if resistance is not None and len(resistance):
        rows += resistance_rows(resistance, n_boot, seed)
    theorem = []
    if checkpoints is not None and metric == "logodds" and "bpb_perturb" in checkpoints:
        per_example = (checkpoints[checkpoints["direction"] == "forward"].groupby("task")[
            "phase1_tokens"].mean().to_dict() if "phase1_tokens" in checkpoints else None)
        c7, theorem = c7_rows(conditions(prompts, checkpoints, n_boot, seed=seed, metric=metric),
                              phase1_tokens=per_example, margin=opts["spring_margin"])
        rows += [gate(study, r) for r in c7]
    table = pd.DataFrame(rows)
    table = table[[c for c in ROW_COLUMNS if c in table] + [c for c in table if c not in ROW_COLUMNS]]
    return table, pd.DataFrame(points, columns=TREND_COLUMNS), points_frame(theorem)


def resistance_table(files: list[str]) -> pd.DataFrame:
    """The per-run forward/inverse rows of every resistance base, with its role."""
    frames = [pd.read_csv(f) for f in files]
    if not frames:
        return pd.DataFrame(columns=["role", "size", "pretrain_tokens", "pretrain_seed", "seed",
                                     "cell", "direction", "loss", "kl"])
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "role", np.where(table["pretrain_tokens"] == 0, "random_init", "main"))
    return table


def write_claims(*, prompts: str, checkpoints: str, n_boot: int, claims: dict,
                 out: dict[str, str], resistance: list[str] = ()) -> None:
    """claims.csv and the elasticity, per-run, regime, trend, resistance (per run and its
    summary with CIs, which the C1 figure draws) and theorem tables, and the study's findings
    page. ``claims``: the config's claims section."""
    per_prompt, table = pd.read_parquet(prompts), pd.read_csv(checkpoints)
    opts = {k: claims.get(k) for k in DEFAULTS}
    metric = claims.get("metric", "logodds")
    runs_res = resistance_table(list(resistance))
    runs_res.to_csv(out["resistance"], index=False)
    resistance_summary(runs_res, n_boot).to_csv(out["resistance_summary"], index=False)
    result, trends, theorem = claims_and_trends(
        per_prompt, n_boot=n_boot, metric=metric, resistance=runs_res, checkpoints=table,
        max_dp_rise=claims.get("max_dp_rise", 10.0), **opts)
    theorem.to_csv(out["theorem"], index=False)
    result.to_csv(out["claims"], index=False)
    trends.to_csv(out["trends"], index=False)
    opts = {**DEFAULTS, **{k: v for k, v in opts.items() if v is not None}}
    elasticity_table(per_prompt, table, n_boot=n_boot, metric=metric, band=opts["band"],
                     early=opts["early"]).to_csv(out["elasticity"], index=False)
    runs_table(per_prompt, table, metric=metric, band=opts["band"],
               early=opts["early"]).to_csv(out["runs"], index=False)
    regime = regime_table(table, per_prompt, max_dp_rise=claims.get("max_dp_rise", 10.0),
                          early=opts["early"], metric=metric)
    regime.to_csv(out["regime"], index=False)
    if "findings" in out:
        write_findings(out["findings"], claims=result, regime=regime, checkpoints=table)


USAGE = "usage: python -m springback.claims TABLES_DIR OUT.csv [N_BOOT [METRIC]]"


def main(argv: list[str]) -> None:
    """``python -m springback.claims TABLES_DIR OUT.csv [N_BOOT [METRIC]]``: claims.csv from a
    study's tables/ (prompts.parquet and, if present, checkpoints.csv and resistance.csv)."""
    from pathlib import Path

    if len(argv) not in (2, 3, 4):
        raise SystemExit(USAGE)
    tables = Path(argv[0])
    if not (tables / "prompts.parquet").is_file():
        raise SystemExit(f"springback.claims: {tables / 'prompts.parquet'} does not exist")
    n_boot = int(argv[2]) if len(argv) >= 3 else 1000
    res, ck = tables / "resistance.csv", tables / "checkpoints.csv"
    claims_table(pd.read_parquet(tables / "prompts.parquet"), n_boot=n_boot,
                 metric=argv[3] if len(argv) == 4 else "logodds",
                 resistance=pd.read_csv(res) if res.is_file() else None,
                 checkpoints=pd.read_csv(ck) if ck.is_file() else None).to_csv(argv[1],
                                                                                 index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
