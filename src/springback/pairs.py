"""The elasticity report card of a released (base, aligned) model pair: the rebound statistics of
the aligned model a team released, read against its own base.

A pair skips alignment: its base and its released aligned model are each perturbed on D_t along
the study's n_neg grid (springback.pipeline.pairs). Each (pair, task, direction) is then one
condition of the statistics core (``springback.elasticity``), unchanged:

- arm 0 (n_pos 0, ``aligned`` none) is the base perturbed directly: the departure control and the
  base level L0 = its mean behaviour at n_neg 0;
- arm 1 (n_pos ``RELEASED``, ``aligned`` released) is the released model perturbed the same way;
  its alignment data are unknown, so n_pos 1 is a label that sorts it after arm 0, not a count;
- KL is to the pair's base (the reference of every job) and context recovery is a share of the
  base's own cue gap;
- one pretraining seed (0): the bootstrap resamples fine-tuning seeds, then prompts.

The card lists every statistic of ``tables.elasticity_table`` for the released arm with its 95 %
CI and a plain-words reading; the figure draws ``tables.curves`` of the same rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from springback.elasticity import BAND, CONDITION, EARLY, MIN_EXCESS, MIN_GAP, verdict
from springback.tables import curves, elasticity_table

RELEASED = 1  # the n_pos label of the released model's arm (its alignment data are unknown)
ARMS = {0: "none", RELEASED: "released"}  # n_pos -> the ``aligned`` column of a pair's rows

CARD_COLUMNS = ["pair", "task", "direction", "metric", "statistic", "point", "low", "high",
                "null", "verdict", "reading"]

NEVER = "within {n_max} examples of D_t"
NO_GAP = "undefined: the base's cue gap is under {min_gap} nats, no context mapping to keep"

# statistic -> (null, side, reading, reading when undefined). The verdict reads the CI against
# the null (None: no verdict) as claims.csv does, on the side (+1 above, -1 below) that the
# reading names; readings are formatted with value (point and CI), unit, level, n_max.
STATISTICS = {
    "base_level": (None, 1, "the base level: the base model's mean {level} is {value}",
                   "undefined: the base was not evaluated"),
    "lift": (0.0, 1, "the released model starts {value} {unit} above the base level (below if "
                     "negative): how far its alignment moved the behaviour",
             "undefined: the released model was not evaluated"),
    "return_count": (None, 1, "{value} examples of D_t bring the released model back to the "
                              "base level",
                     "the released model does not return to the base level " + NEVER),
    "return_rate": (None, 1, "it moves back toward the base level at {value} {unit} per example "
                             "(censored at the grid end if it never gets there)",
                    "undefined: the released model starts at or below the base level"),
    "departure_rate": (None, 1, "the base itself moves {value} {unit} per example over its "
                                "first examples of D_t",
                       "undefined: the base was not perturbed far enough"),
    "return_speedup": (None, 1, "return speed / departure speed {value}: how much faster the "
                                "released model moves back than the fresh base moves away",
                       "undefined, as the return or the departure rate is (see those rows)"),
    "kink_excess": (MIN_EXCESS, 1, "kink excess {value}: above 0.1, the released model slows down where "
                            "it passes the base level more than at nearby levels (a spring "
                            "at the base; a smooth decline gives 0)",
                    "undefined: the released model does not get far enough past the base level "
                    + NEVER),
    "stiffness_excess": (MIN_EXCESS, 1, "stiffness excess {value}: above 0.1, leaving the base level "
                                 "again costs the released model more examples than it costs "
                                 "the fresh base, beyond the same ratio one band further on",
                         "undefined: the released model or the base does not get far enough "
                         "past the base level " + NEVER),
    "aligned_gap_share": (None, 1, "the released model keeps {value} of the base's cue gap "
                                   "(how much its behaviour still follows the prompts' context)",
                          NO_GAP),
    "gap_at_return_share": (None, 1, "when it passes back through the base level (or at the "
                                     "grid end) the cue gap is {value} of the base's", NO_GAP),
    "recovery": (0.0, 1, "context recovery {value}: the share of the base's cue gap the "
                         "perturbation brings back by the time the behaviour returns to the base "
                         "level", NO_GAP),
    "kl_aligned": (None, 1, "KL from the released model to the base is {value} nats/token "
                            "before any perturbation",
                   "undefined: KL was not measured at n_neg 0"),
    "kl_min": (None, 1, "the lowest KL to the base along the perturbation is {value} "
                        "nats/token", "undefined: KL was not measured after n_neg 0"),
    "kl_min_share": (1.0, -1, "KL min share {value}: below 1, the perturbation brings the "
                              "released model back toward the base's distribution (the KL "
                              "rebound)", "undefined: KL was not measured"),
    "kl_min_at": (None, 1, "the KL to the base is lowest after {value} examples of D_t",
                  "undefined: KL was not measured after n_neg 0"),
}
UNITS = {"logodds": "nats", "score": "points of judged score"}
LEVELS = {"logodds": "log-odds of the target behaviour", "score": "judged score"}


def as_conditions(frame: pd.DataFrame) -> pd.DataFrame:
    """A pair's rows keyed as conditions of the statistics core: world "pair", size = the pair's
    name, pretraining seed and tokens 0, algo sft, role main."""
    return frame.assign(world="pair", size=frame["pair"], pretrain_seed=0, pretrain_tokens=0,
                        algo="sft", role="main")


def _value(point: float, low: float, high: float) -> str:
    """``point (95 % CI low to high)``, or a note where there is no point or no CI."""
    if not math.isfinite(point):
        return "undefined"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{point:.3g} (no CI: undefined in most bootstrap replicates)"
    return f"{point:.3g} (95 % CI {low:.3g} to {high:.3g})"


def card_verdict(low: float, high: float, null: float | None, side: int) -> str:
    """``elasticity.verdict`` on the side the reading names (side -1: below the null is
    supported); "" where the statistic has no null."""
    if null is None:
        return ""
    return verdict(low, high, null) if side > 0 else verdict(-high, -low, -null)


def reading(statistic: str, point: float, low: float, high: float, *, metric: str,
            n_max: int) -> str:
    """The plain-words reading of one statistic of the card."""
    _, _, defined, undefined = STATISTICS[statistic]
    text = defined if math.isfinite(point) else undefined
    return text.format(value=_value(point, low, high), unit=UNITS[metric], level=LEVELS[metric],
                       n_max=n_max, min_gap=MIN_GAP)


def card_rows(stats: pd.Series, *, pair: str, metric: str, n_max: int) -> list:
    """The card's rows of one condition (a row of ``elasticity_table`` for the released arm)."""
    rows = []
    for name, (null, side, _, _) in STATISTICS.items():
        point, low, high = (float(stats[f"{name}{s}"]) for s in ("", "_low", "_high"))
        rows.append({"pair": pair, "task": stats["task"], "direction": stats["direction"],
                     "metric": metric, "statistic": name, "point": point, "low": low,
                     "high": high, "null": np.nan if null is None else null,
                     "verdict": card_verdict(low, high, null, side),
                     "reading": reading(name, point, low, high, metric=metric,
                                        n_max=n_max)})
    return rows


def card_table(prompts: pd.DataFrame, checkpoints: pd.DataFrame, *, n_boot: int,
               metric: str = "logodds", band: float = BAND,
               early: float = EARLY) -> pd.DataFrame:
    """Every statistic of the released arm of each (pair, task, direction), with its 95 % CI
    (paired hierarchical bootstrap: fine-tuning seeds, then prompts), verdict and reading."""
    table = elasticity_table(as_conditions(prompts), as_conditions(checkpoints), n_boot=n_boot,
                             metric=metric, band=band, early=early)
    n_max = int(checkpoints["n_neg"].max())
    rows = [r for _, stats in table.iterrows() if stats["n_pos"] == RELEASED
            for r in card_rows(stats, pair=stats["size"], metric=metric, n_max=n_max)]
    return pd.DataFrame(rows, columns=CARD_COLUMNS)


def card_curves(prompts: pd.DataFrame, checkpoints: pd.DataFrame, *, n_boot: int,
                metric: str = "logodds") -> pd.DataFrame:
    """Both arms' behaviour level, cue gap and checkpoint metrics per n_neg with CIs (the
    figure's table), keyed by pair and ``aligned`` instead of the core's condition columns."""
    table = curves(as_conditions(prompts), as_conditions(checkpoints), n_boot=n_boot,
                   metric=metric)
    table = table.assign(pair=table["size"], aligned=table["n_pos"].map(ARMS))
    keys = ["pair", "task", "direction", "aligned", "n_pos", "n_neg"]
    return table[keys + [c for c in table.columns if c not in keys + CONDITION + ["role"]]]


def write_card(*, metrics: list[str], prompts: list[str], n_boot: int, claims: dict,
               out_card: str, out_curves: str, out_figure: list[str]) -> None:
    """card.csv, the curves it is read from (curves.csv) and the figure (png, pdf) of one pair,
    from the checkpoint and per-prompt rows of all its jobs."""
    from springback.plots import pair_plot, save

    checkpoints = pd.concat([pd.read_csv(m) for m in metrics], ignore_index=True)
    per_prompt = pd.concat([pd.read_parquet(p) for p in prompts], ignore_index=True)
    metric = claims["metric"]
    card_table(per_prompt, checkpoints, n_boot=n_boot, metric=metric, band=claims["band"],
               early=claims["early"]).to_csv(out_card, index=False)
    frame = card_curves(per_prompt, checkpoints, n_boot=n_boot, metric=metric)
    frame.to_csv(out_curves, index=False)
    save(pair_plot(frame, metric), *out_figure)
