"""plotnine figures of a study (each saved as PNG and PDF). Every curve and fitted segment is read
from the tables the statistics core wrote (curves.csv, elasticity.csv): the figure draws exactly
what the claims use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotnine as p9

DATASETS = {"bpb_pretrain": "D_p (pretraining)", "bpb_align": "D_a (alignment)",
            "bpb_perturb": "D_t (perturbation)"}


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["base"] = (frame["role"] + "\n" + frame["size"] + " @ "
                     + frame["pretrain_tokens"].map("{:,}".format))
    frame["n_pos"] = pd.Categorical(frame["n_pos"], sorted(frame["n_pos"].unique()))
    return frame


def _width(frame: pd.DataFrame) -> float:
    """Figure width growing with the number of base facets (the size and volume bases add some)."""
    return max(11.0, 2.0 * frame["base"].nunique())


def return_points(elasticity: pd.DataFrame) -> pd.DataFrame:
    """Where each aligned curve passes back through the base level (its return count), as the
    statistics read it; curves that never return within the grid have no point."""
    keys = ["task", "role", "size", "pretrain_tokens", "direction", "n_pos"]
    frame = elasticity[keys + ["return_count", "base_level"]].rename(
        columns={"return_count": "n_neg", "base_level": "level"})
    return frame.dropna(subset=["n_neg"])


LEVEL = {"logodds": "mean log-odds of the target behaviour (nats)",
         "score": "judged score (share of target behaviour)"}


def rebound_plot(curves: pd.DataFrame, elasticity: pd.DataFrame, task: str,
                 metric: str = "logodds") -> p9.ggplot:
    """The behaviour level (mean log-odds; the judged score in hub mode) vs n_neg, a line per
    n_pos with its CI band, the dashed base level and a point where each aligned curve returns
    to it; facets: direction x base."""
    frame = _labelled(curves[curves["task"] == task])
    base = frame[(frame["n_pos"] == 0) & (frame["n_neg"] == 0)]
    back = _labelled(return_points(elasticity[elasticity["task"] == task]))
    return (p9.ggplot(frame, p9.aes("n_neg", "level", colour="n_pos", fill="n_pos"))
            + p9.geom_ribbon(p9.aes(ymin="level_low", ymax="level_high"), alpha=0.15,
                             colour="none")
            + p9.geom_line(size=0.4)
            + p9.geom_point(data=back, size=2, shape="o", fill="white")
            + p9.geom_hline(p9.aes(yintercept="level"), data=base, linetype="dashed")
            + p9.facet_grid("direction ~ base")
            + p9.labs(x="perturbation examples (n_neg)", y=LEVEL[metric], colour="n_pos",
                      fill="n_pos", title=f"Rebound: {task} (dashed: the base level; open "
                      "points: the return to it)")
            + p9.theme_bw() + p9.theme(figure_size=(_width(frame), 5.5)))


def prior_plot(curves: pd.DataFrame) -> p9.ggplot:
    """E3: the deepest aligned arm and the departure control of the main world's main base and
    each prior-shifted world's at the same size and budget (forward), each world's base level
    dashed in its colour: a spring slows down at its own world's base level, saturation at the
    same log-odds in every world."""
    main = curves[(curves["role"] == "main") & (curves["world"] != "mirror")
                  & (curves["direction"] == "forward") & (curves["algo"] == "sft")]
    shifted = main[main["world"] != "main"]
    frame = main[main.set_index(["size", "pretrain_tokens"]).index.isin(
        shifted.set_index(["size", "pretrain_tokens"]).index)]
    frame = frame[(frame["n_pos"] == 0) | (frame["n_pos"] == frame["n_pos"].max())].copy()
    frame["arm"] = np.where(frame["n_pos"] == 0, "departure", "deepest alignment")
    frame["curve"] = frame["world"] + " " + frame["arm"]
    base = frame[(frame["n_pos"] == 0) & (frame["n_neg"] == 0)]
    plot = p9.ggplot(frame, p9.aes("n_neg", "level", colour="world", fill="world"))
    if frame.empty:
        return plot + p9.annotate("text", x=0, y=0, label="no prior-shifted world in this study")
    return (plot + p9.geom_ribbon(p9.aes(ymin="level_low", ymax="level_high", group="curve"),
                                  alpha=0.12, colour="none")
            + p9.geom_line(p9.aes(linetype="arm", group="curve"))
            + p9.geom_hline(p9.aes(yintercept="level", colour="world"), data=base,
                            linetype="dashed")
            + p9.facet_wrap("~task")
            + p9.labs(x="perturbation examples (n_neg)", y=LEVEL["logodds"],
                      title="E3: rebound in worlds whose pretraining shifts the base level "
                            "(dashed: each world's base level)")
            + p9.theme_bw() + p9.theme(figure_size=(11, 4.5)))


def cue_gap_plot(curves: pd.DataFrame) -> p9.ggplot:
    """Cue gap (clean-cue prompts) vs n_neg in the forward direction: the context mapping
    erased by alignment and whether it comes back."""
    frame = _labelled(curves[curves["direction"] == "forward"])
    return (p9.ggplot(frame, p9.aes("n_neg", "cue_gap", colour="n_pos", fill="n_pos"))
            + p9.geom_ribbon(p9.aes(ymin="cue_gap_low", ymax="cue_gap_high"), alpha=0.15,
                             colour="none")
            + p9.geom_line(size=0.4) + p9.geom_hline(yintercept=0, linetype="dashed")
            + p9.facet_grid("task ~ base")
            + p9.labs(x="perturbation examples (n_neg)", y="cue gap (nats, clean-cue prompts)",
                      title="Context following during the perturbation (forward)")
            + p9.theme_bw() + p9.theme(figure_size=(_width(frame), 5)))


def compression_plot(curves: pd.DataFrame, task: str) -> p9.ggplot:
    """Bits/byte of each dataset vs n_neg during the forward perturbation (measured points)."""
    frame = _labelled(curves[(curves["task"] == task) & (curves["direction"] == "forward")])
    long = frame.melt(id_vars=["base", "n_pos", "n_neg"], value_vars=list(DATASETS),
                      var_name="dataset", value_name="bpb").dropna()
    long["dataset"] = long["dataset"].map(DATASETS)
    return (p9.ggplot(long, p9.aes("n_neg", "bpb", colour="n_pos"))
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.facet_grid("dataset ~ base", scales="free_y")
            + p9.labs(x="perturbation examples (n_neg)", y="bits per byte",
                      title=f"Compression during perturbation: {task}")
            + p9.theme_bw() + p9.theme(figure_size=(_width(frame), 6)))


def ladder_plot(checkpoints: pd.DataFrame) -> p9.ggplot:
    """Cue gap and pretraining bits/byte against tokens seen, per world, pretraining seed and task."""
    ladder = checkpoints[checkpoints["algo"] == "none"].copy()
    ladder["run"] = ladder["world"] + " seed " + ladder["pretrain_seed"].astype(str)
    long = ladder.melt(id_vars=["task", "size", "run", "pretrain_tokens"],
                       value_vars=["cue_gap", "bpb_pretrain"], var_name="metric").dropna()
    return (p9.ggplot(long, p9.aes("pretrain_tokens", "value", colour="run", linetype="size"))
            + p9.geom_line() + p9.geom_point()
            + p9.facet_grid("metric ~ task", scales="free_y")
            + p9.labs(x="pretraining tokens", y="", title="Pretraining ladder")
            + p9.theme_bw() + p9.theme(figure_size=(9, 5)))


def kl_plot(curves: pd.DataFrame) -> p9.ggplot:
    """KL to base vs n_neg in the forward direction (the paper's Table 3 as curves)."""
    frame = _labelled(curves[curves["direction"] == "forward"]).dropna(subset=["kl_to_base"])
    return (p9.ggplot(frame, p9.aes("n_neg", "kl_to_base", colour="n_pos"))
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.facet_grid("task ~ base", scales="free_y")
            + p9.labs(x="perturbation examples (n_neg)", y="KL to base (nats/token)",
                      title="KL rebound")
            + p9.theme_bw() + p9.theme(figure_size=(_width(frame), 5)))


PAIR_ARMS = {"none": "base, perturbed", "released": "released aligned, perturbed"}
PAIR_LEVEL = {"logodds": "log-odds (nats)", "score": "judged score"}


def pair_plot(curves: pd.DataFrame, metric: str = "logodds") -> p9.ggplot:
    """A released pair's card: the behaviour level (top) and KL to the base (bottom) vs n_neg
    for the base and the released model, each perturbed on D_t, with CI bands and the base level
    dashed; columns: task (springback.pairs.card_curves)."""
    panels = {"level": PAIR_LEVEL[metric], "kl_to_base": "KL to base (nats/token)"}
    long = pd.concat([curves.assign(panel=label, value=curves[m], low=curves[f"{m}_low"],
                                    high=curves[f"{m}_high"]) for m, label in panels.items()])
    long = long.dropna(subset=["value"]).assign(arm=lambda f: f["aligned"].map(PAIR_ARMS))
    long["panel"] = pd.Categorical(long["panel"], list(panels.values()))
    base = long[(long["aligned"] == "none") & (long["n_neg"] == 0)
                & (long["panel"] == panels["level"])]
    return (p9.ggplot(long, p9.aes("n_neg", "value", colour="arm", fill="arm"))
            + p9.geom_ribbon(p9.aes(ymin="low", ymax="high"), alpha=0.15, colour="none")
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.geom_hline(p9.aes(yintercept="value"), data=base, linetype="dashed")
            + p9.facet_grid("panel ~ task", scales="free_y")
            + p9.labs(x="perturbation examples (n_neg)", y="", colour="", fill="",
                      title=f"Elasticity of the released pair {curves['pair'].iloc[0]} "
                            "(dashed: the base level)")
            + p9.theme_bw() + p9.theme(figure_size=(4.0 + 3.5 * curves["task"].nunique(), 6),
                                       legend_position="bottom"))


TREND_LABELS = {"kink_excess": "C2 kink excess at the base", "recovery": "E2 context recovery",
                "return_speedup": "return speed / departure speed"}
TREND_AXES = {"parameters": ("C4", "non-embedding parameters"), "tokens": ("C5", "pretraining tokens")}


def trend_plot(trends: pd.DataFrame, axis: str) -> p9.ggplot:
    """The trend statistics of the deepest alignment (forward) against model size or pretraining
    tokens, with their CIs, beside the random-init twins (C4); the points claims.csv fits."""
    claim, xlab = TREND_AXES[axis]
    frame = trends[trends["axis"] == axis].copy()
    frame["statistic"] = frame["statistic"].map(TREND_LABELS)
    plot = p9.ggplot(frame, p9.aes("x", "value", colour="task", shape="arm", linetype="arm"))
    if frame.empty:
        plot += p9.annotate("text", x=1, y=0, label="no series of >= 3 points in this study")
    else:
        for layer in (p9.geom_pointrange(p9.aes(ymin="ci_low", ymax="ci_high"),
                                         position=p9.position_dodge(width=0.05)),
                      p9.geom_line(), p9.scale_x_log10(),
                      p9.facet_wrap("~statistic", scales="free_y")):
            plot += layer
    return (plot + p9.labs(x=f"{xlab} (log scale)", y="", title=f"{claim}: elasticity vs {xlab} "
                           "(deepest alignment, forward; 95 % CIs)")
            + p9.theme_bw() + p9.theme(figure_size=(11, 4)))


def save(plot: p9.ggplot, png: str, pdf: str) -> None:
    plot.save(png, dpi=110, verbose=False)
    plot.save(pdf, verbose=False)


def resistance_plot(summary: pd.DataFrame) -> p9.ggplot:
    """Final training loss of forward and inverse fine-tunes per cell (k-l), with CIs, for each
    pretrained size and its random-init twin (claim C1)."""
    frame = summary[summary["metric"] == "loss"].copy()
    frame["base"] = frame["role"] + "\n" + frame["size"] + " @ " + frame["pretrain_tokens"].map(
        "{:,}".format)
    plot = p9.ggplot(frame, p9.aes("cell", "value", colour="direction"))
    if frame.empty:
        plot += p9.annotate("text", x=1, y=0, label="no resistance runs in this study")
    else:
        plot += p9.geom_pointrange(p9.aes(ymin="ci_low", ymax="ci_high"),
                                   position=p9.position_dodge(width=0.4))
        plot += p9.facet_wrap("~base", nrow=1, scales="free_y")
    return (plot + p9.labs(x="saved models k-l (forward: theta_k on D_l; inverse: theta_l on D_k)",
                           y="final training loss (nats/token)",
                           title="C1 resistance: inverse alignment should end lower than forward")
            + p9.theme_bw() + p9.theme(figure_size=(11, 4)))


def theorem_plot(points: pd.DataFrame) -> p9.ggplot:
    """log10(Delta gamma_a / -Delta gamma_p) against log10 k (C7) with the least-squares line per
    task and size (the point estimate of claims.csv's k-exponent); slope 1 is Theta(k)."""
    frame = points.dropna(subset=["log10_ratio"]).copy()
    frame["log10_k"] = np.log10(frame["k"])
    frame["base"] = frame["size"] + " @ " + frame["pretrain_tokens"].map("{:,}".format)
    plot = p9.ggplot(frame, p9.aes("log10_k", "log10_ratio", colour="task"))
    if frame.empty:
        plot += p9.annotate("text", x=0, y=0, label="no point where D_p improved and D_a worsened")
    else:
        plot += p9.geom_point(p9.aes(shape="base"))
        plot += p9.geom_smooth(method="lm", se=False)
        plot += p9.facet_wrap("~size")
    return (plot + p9.labs(x="log10 k = |D_p| / |D_a|",
                           y="log10(Delta bpb D_a / -Delta bpb D_p)",
                           title="C7 Theorem 4.2: the ratio of the changes against k (Theta(k): slope 1)")
            + p9.theme_bw() + p9.theme(figure_size=(9, 4)))


def compressors_plot(table: pd.DataFrame) -> p9.ggplot:
    """Bits per byte of each held-out set under the model (NLL and the real range coder) and
    the general-purpose compressors, at the base, after alignment and after perturbation."""
    frame = table.copy()
    frame["stage"] = pd.Categorical(frame["stage"], ["base", "aligned", "perturbed"])
    frame["method"] = pd.Categorical(frame["method"], list(dict.fromkeys(frame["method"])))
    return (p9.ggplot(frame, p9.aes("method", "bits_per_byte", fill="stage"))
            + p9.geom_col(position="dodge") + p9.facet_wrap("~dataset")
            + p9.labs(x="", y="bits per byte", title="True compressed size: the model's range "
                      "coder vs general-purpose compressors (held-out sets)")
            + p9.theme_bw() + p9.theme(figure_size=(11, 4),
                                       axis_text_x=p9.element_text(rotation=30, ha="right")))


def rank_frequency_plot(ranks: pd.DataFrame) -> p9.ggplot:
    """Rank-frequency of whole responses (log-log): a Pareto/Zipf law is a straight line."""
    return (p9.ggplot(ranks, p9.aes("rank", "frequency", colour="source"))
            + p9.geom_point(size=0.8) + p9.geom_line()
            + p9.scale_x_log10() + p9.scale_y_log10() + p9.facet_wrap("~task")
            + p9.labs(title="Rank-frequency of responses (Assumption A.7; fits in tables/pareto.csv)")
            + p9.theme_bw() + p9.theme(figure_size=(9, 4)))


def algorithms_plot(curves: pd.DataFrame) -> p9.ggplot:
    """Heatmaps n_pos x n_neg -> mean log-odds per algorithm (the paper's Fig. 7), pretrained
    main bases, forward."""
    frame = curves[(curves["role"] == "main") & (curves["world"] == "main")
                   & (curves["direction"] == "forward")]
    frame = frame[frame.set_index(["task", "size", "pretrain_tokens"]).index.isin(
        frame[frame["algo"] != "sft"].set_index(["task", "size", "pretrain_tokens"]).index)].copy()
    frame["n_neg"] = pd.Categorical(frame["n_neg"], sorted(frame["n_neg"].unique()))
    frame["n_pos"] = pd.Categorical(frame["n_pos"], sorted(frame["n_pos"].unique()))
    return (p9.ggplot(frame, p9.aes("n_neg", "n_pos", fill="level"))
            + p9.geom_tile() + p9.facet_grid("task ~ algo")
            + p9.scale_fill_gradient2(low="#b2182b", mid="white", high="#2166ac", midpoint=0)
            + p9.labs(x="perturbation examples (n_neg)", y="alignment examples (n_pos)",
                      fill="log-odds", title="Rebound by algorithm (C6): mean log-odds of the "
                      "target behaviour")
            + p9.theme_bw() + p9.theme(figure_size=(14, 4),
                                       axis_text_x=p9.element_text(rotation=90, size=6)))


def figures(*, checkpoints: str, curves: str, elasticity: str, trends: str, resistance: str,
            theorem: str, tasks: list[str], out: dict[str, list[str]], n_boot: int = 1000,
            compression: list[str] = ()) -> None:
    """Write every figure; per-task outputs list png, pdf for each task in order; each of the
    ``trends`` outputs (png, pdf pairs) is the figure its file stem names (size_trend,
    volume_trend, resistance, compressors, rank_frequency, theorem)."""
    from springback.claims import resistance_summary

    table, frame, stats = pd.read_csv(checkpoints), pd.read_csv(curves), pd.read_csv(elasticity)
    trend, runs, points = pd.read_csv(trends), pd.read_csv(resistance), pd.read_csv(theorem)
    plots = {"size_trend": lambda: trend_plot(trend, "parameters"),
             "volume_trend": lambda: trend_plot(trend, "tokens"),
             "resistance": lambda: resistance_plot(resistance_summary(runs, n_boot)),
             "theorem": lambda: theorem_plot(points), "algorithms": lambda: algorithms_plot(frame),
             "prior_shift": lambda: prior_plot(frame)}
    if compression:
        plots["compressors"] = lambda: compressors_plot(pd.read_csv(compression[0]))
        plots["rank_frequency"] = lambda: rank_frequency_plot(pd.read_csv(compression[1]))
    files = out.get("trends", [])
    for png, pdf in zip(files[::2], files[1::2]):  # each figure's png, pdf, named by its stem
        save(plots[Path(png).stem](), png, pdf)
    metric = stats["metric"].iloc[0] if len(stats) else "logodds"
    # the curve figures are SFT's (a facet is one base); other algorithms have their heatmaps
    sft, sft_stats = frame[frame["algo"] == "sft"], stats[stats["algo"] == "sft"]
    for i, task in enumerate(tasks):
        save(rebound_plot(sft, sft_stats, task, metric), *out["rebound"][2 * i: 2 * i + 2])
        save(compression_plot(sft, task), *out["compression"][2 * i: 2 * i + 2])
    save(cue_gap_plot(sft), *out["cue_gap"])
    save(ladder_plot(table), *out["ladder"])
    save(kl_plot(sft), *out["kl"])
