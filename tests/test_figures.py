"""The figures draw the tables they are made from (springback.plots): every line is a curve of
curves.csv under the panel and legend a reader sees, one colour per n_pos in every figure, and
the fitted lines are claims.csv's. Synthetic tables, no study needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from figure_data import built, check_curve_figures, layer_data, legend
from springback import plots

N_NEG = [0, 8, 16, 24]
TASKS = ["sentiment", "safety"]
# (role, world, size, tokens, directions): two bases share role, size and tokens in different
# worlds (a prior-shifted world), as the smoke study's main and prior1 bases do
BASES = [("main", "main", "s", 60000, ("forward", "reversed")),
         ("random_init", "main", "s", 0, ("forward", "reversed")),
         ("mirror", "mirror", "s", 60000, ("forward", "reversed")),
         ("main", "prior1", "s", 60000, ("forward",)),
         ("main", "main", "xs", 60000, ("forward",))]


def synthetic_curves(seed: int = 0) -> pd.DataFrame:
    """A curves.csv of two tasks, five bases and n_pos 0, 16, 40 (random values; text metrics
    at n_neg 0 and 16 only)."""
    rng, rows = np.random.default_rng(seed), []
    for task in TASKS:
        for role, world, size, tokens, directions in BASES:
            for direction in directions:
                for n_pos in (0, 16, 40):
                    for n_neg in N_NEG:
                        level, gap = rng.normal(size=2)
                        text = {c: (rng.random() if n_neg in (0, 16) else np.nan)
                                for c in ("kl_to_base", *plots.DATASETS)}
                        rows.append({"task": task, "world": world, "size": size,
                                     "pretrain_tokens": tokens, "algo": "sft",
                                     "direction": direction, "role": role, "n_pos": n_pos,
                                     "n_neg": n_neg, "level": level, "level_low": level - 0.1,
                                     "level_high": level + 0.1, "cue_gap": gap,
                                     "cue_gap_low": gap - 0.1, "cue_gap_high": gap + 0.1,
                                     **text})
    return pd.DataFrame(rows)


def return_table(curves: pd.DataFrame) -> pd.DataFrame:
    """An elasticity.csv with a return count of 12 for every aligned arm."""
    keys = ["task", "world", "size", "pretrain_tokens", "algo", "direction", "role", "n_pos"]
    arms = curves[curves["n_pos"] > 0].drop_duplicates(keys)[keys]
    return arms.assign(return_count=12.0, base_level=0.0, metric="logodds")


@pytest.fixture(scope="module")
def tables():
    curves = synthetic_curves()
    return curves, return_table(curves), plots.study_style(curves)


def study_plots(curves, elasticity, style) -> dict:
    """The n_pos-coloured figures of the synthetic study, by file stem."""
    out = {"cue_gap": plots.cue_gap_plot(curves, style), "kl_rebound": plots.kl_plot(curves, style)}
    for task in TASKS:
        out[f"rebound_{task}"] = plots.rebound_plot(curves, elasticity, task, style)
        out[f"compression_{task}"] = plots.compression_plot(curves, task, style)
    return out


def test_every_line_is_one_curve_of_curves_csv_in_one_colour_per_n_pos(tables):
    curves, elasticity, style = tables
    colours = check_curve_figures(study_plots(curves, elasticity, style), curves, TASKS)
    assert colours == style.palette and colours["0"] == "#000000"  # the departure control


def test_a_figure_that_merges_two_bases_is_caught(tables):
    """The check fails on a figure whose panel shows two bases' curves (the prior world's
    under the main world's label, as the first build drew them)."""
    curves, elasticity, style = tables
    merged = curves.assign(world="main")
    plot = plots.kl_plot(merged[merged["role"] == "main"], plots.study_style(merged))
    with pytest.raises(AssertionError):
        check_curve_figures(study_plots(curves, elasticity, style) | {"kl_rebound": plot},
                            curves, TASKS)


def test_the_palette_is_keyed_by_value_not_by_what_a_figure_shows():
    full, part = plots.npos_palette([0, 16, 40, 100]), plots.npos_palette([0, 40])
    assert list(full) == ["0", "16", "40", "100"] and len(set(full.values())) == 4
    assert part["0"] == full["0"]


def test_rebound_panels_put_the_rebound_experiment_first_one_base_each(tables):
    curves, elasticity, style = tables
    plot = built(plots.rebound_plot(curves, elasticity, "sentiment", style))
    panels = list(plot._build_objs.layout.layout.sort_values("PANEL")["panel"])
    both = ["main · s @ 60,000", "random_init · s @ 0", "mirror · s @ 60,000"]
    assert panels[:6] == [f"{d}\n{b}" for d in ("forward", "reversed") for b in both]
    assert set(panels[6:]) == {"forward\nmain (prior1 world) · s @ 60,000",
                               "forward\nmain · xs @ 60,000"}
    points = layer_data(plot, "geom_point")  # the return points: one per aligned arm and panel
    assert (points["x"] == 12).all() and len(points) == 2 * len(panels)


def test_theorem_line_is_the_k_exponent_of_claims_csv():
    points = pd.DataFrame({"task": ["sentiment"] * 4 + ["safety"] * 4, "size": "s",
                           "pretrain_tokens": 60000, "n_pos": [16, 40] * 4,
                           "k": [10.0, 100.0, 1000.0, 1e4] * 2,
                           "log10_ratio": [0.1, 0.9, 2.2, 2.9, 1.0, 0.5, np.nan, 0.2]})
    claims = pd.DataFrame({"claim": "C7", "statistic": "k_exponent",
                           "task": ["sentiment", "safety"], "size": "s", "value": [0.7, np.nan]})
    plot = built(plots.theorem_plot(points, claims))
    seg = layer_data(plot, "geom_segment")
    assert len(seg) == 1  # no line where claims.csv has no slope
    s = seg.iloc[0]
    assert (s["yend"] - s["y"]) / (s["xend"] - s["x"]) == pytest.approx(0.7)
    x, y = np.log10([10.0, 100.0, 1000.0, 1e4]), np.array([0.1, 0.9, 2.2, 2.9])
    assert s["y"] + 0.7 * (x.mean() - s["x"]) == pytest.approx(y.mean())  # through the mean


def test_resistance_figure_draws_the_summary_rows():
    summary = pd.DataFrame({"size": "s", "pretrain_tokens": [60000] * 4 + [0] * 4,
                            "role": ["main"] * 4 + ["random_init"] * 4,
                            "cell": ["1-2", "1-2", "1-3", "1-3"] * 2,
                            "direction": ["forward", "inverse"] * 4, "metric": "loss",
                            "value": np.arange(8.0), "ci_low": np.arange(8.0) - 1,
                            "ci_high": np.arange(8.0) + 1})
    summary = pd.concat([summary, summary.assign(metric="kl", value=99.0)])
    drawn = layer_data(built(plots.resistance_plot(summary)), "geom_pointrange")
    assert sorted(drawn["y"]) == list(np.arange(8.0))
    assert (drawn["ymax"] - drawn["y"] == 1).all() and (drawn["y"] - drawn["ymin"] == 1).all()


def test_prior_figure_draws_each_worlds_deepest_arm_departure_and_base_level(tables):
    curves = tables[0]
    plot = built(plots.prior_plot(curves))
    world_of = {c: w for w, c in legend(plot).items()}
    assert set(world_of.values()) == {"main", "prior1"}
    lines = layer_data(plot, "geom_line")
    assert set(lines["linetype"]) == {"solid", "dotted"}
    for (_, colour, linetype), line in lines.groupby(["PANEL", "color", "linetype"]):
        task = line["panel"].iloc[0].split(" · ")[0]
        n_pos = 40 if linetype == "solid" else 0
        want = curves[(curves["task"] == task) & (curves["world"] == world_of[colour])
                      & (curves["role"] == "main") & (curves["size"] == "s")
                      & (curves["direction"] == "forward") & (curves["n_pos"] == n_pos)]
        assert list(line.sort_values("x")["y"]) == list(want.sort_values("n_neg")["level"])
    levels = layer_data(plot, "geom_hline")
    assert len(levels) == 2 * 2  # a base level per world and task
    for row in levels.itertuples():
        task = row.panel.split(" · ")[0]
        want = curves[(curves["task"] == task) & (curves["world"] == world_of[row.color])
                      & (curves["role"] == "main") & (curves["size"] == "s")
                      & (curves["direction"] == "forward") & (curves["n_pos"] == 0)
                      & (curves["n_neg"] == 0)]
        assert row.yintercept == want["level"].item()


def test_hub_mode_curves_draw_under_their_own_names(tables):
    """A hub-mode study (world hub, judged score): every line is still its curve."""
    curves = tables[0]
    hub = curves[(curves["world"] == "main") & (curves["role"] == "main")
                 & (curves["size"] == "s")].assign(world="hub", size="tiny_a")
    style = plots.study_style(hub)
    assert style.bases == ["main · tiny_a @ 60,000"]
    figures = study_plots(hub, return_table(hub), style)
    assert check_curve_figures(figures, hub, TASKS) == style.palette
