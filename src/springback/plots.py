"""plotnine figures of a study (each saved as PNG and PDF). Every curve, point and line is read
from the tables the claims and aggregate jobs wrote (curves.csv, elasticity.csv, trends.csv,
theorem.csv, resistance_summary.csv, claims.csv): a figure draws what the claims use and
computes no statistic of its own.

Figures speak one language (``Style``): one colour per n_pos value in every figure (the
departure control black, deeper alignment further along the plasma map) and the bases in one
reading order (the rebound experiment's pretrained base, then its controls, then the other
experiments' bases), one panel each, wrapped into rows of at most ``NCOL``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotnine as p9

DATASETS = {"bpb_pretrain": "D_p (pretraining)", "bpb_align": "D_a (alignment)",
            "bpb_perturb": "D_t (perturbation)"}
ROLES = ["main", "random_init", "pre_emergence", "mirror"]  # reading order of the base roles
BASE = ["role", "world", "size", "pretrain_tokens"]
NCOL = 4  # panels per row of the faceted curve figures (even: a base's two tasks share a row)
PANEL_IN = (3.0, 2.4)  # inches per panel (width, height)


@dataclass
class Style:
    """What every figure of a study shares: the n_pos palette and the order of the bases."""

    palette: dict[str, str]  # n_pos (as text) -> colour
    bases: list[str]         # base labels in reading order


def npos_palette(n_pos) -> dict[str, str]:
    """One colour per n_pos value: 0 (the departure control) black, the aligned amounts along
    the plasma map (dark to orange) in increasing order (keys: the values as text, in numeric
    order)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    values = sorted({int(v) for v in n_pos})
    aligned = [v for v in values if v > 0]
    spots = np.linspace(0.1, 0.75, len(aligned)) if len(aligned) > 1 else [0.5] * len(aligned)
    palette = {"0": "#000000"} if 0 in values else {}
    return palette | {str(v): to_hex(colormaps["plasma"](t)) for v, t in zip(aligned, spots)}


def base_label(role: str, world: str, size: str, tokens: int) -> str:
    """How a figure names a base: role, its world where that is not implied (main, hub mode's
    hub, or the world a role is named after), size @ tokens."""
    where = "" if world in ("main", "hub", role) else f" ({world} world)"
    return f"{role}{where} · {size} @ {int(tokens):,}"


def base_order(curves: pd.DataFrame, sizes: list[str] | None = None) -> list[str]:
    """Base labels in reading order: bases run in both directions (the rebound experiment)
    first, then by role (``ROLES``), world, size (``sizes``' order, else by name) and tokens."""
    bases = curves.groupby(BASE)["direction"].nunique().rename("directions").reset_index()
    size_rank = {s: i for i, s in enumerate(sizes or sorted(bases["size"].unique()))}
    bases = bases.assign(both=-bases["directions"],
                         role_rank=bases["role"].map(lambda r: ROLES.index(r) if r in ROLES
                                                     else len(ROLES)),
                         main_world=bases["world"] != "main",
                         size_rank=bases["size"].map(lambda s: size_rank.get(s, len(size_rank))))
    bases = bases.sort_values(["both", "role_rank", "main_world", "world", "size_rank",
                               "pretrain_tokens"])
    return [base_label(*r) for r in bases[BASE].itertuples(index=False)]


def study_style(curves: pd.DataFrame, checkpoints: pd.DataFrame | None = None) -> Style:
    """The palette of every n_pos of the study and the order of its bases (sizes by their
    non-embedding parameters where the checkpoint table has them)."""
    sizes = None
    if checkpoints is not None and "params_nonembedding" in checkpoints:
        sizes = list(checkpoints.groupby("size")["params_nonembedding"].first().sort_values().index)
    return Style(npos_palette(curves["n_pos"]), base_order(curves, sizes))


def _labelled(frame: pd.DataFrame, style: Style) -> pd.DataFrame:
    """The frame with ``base`` (a label in the study's order) and ``n_pos`` (text, in the
    palette's order) as ordered categories."""
    frame = frame.copy()
    labels = [base_label(*r) for r in frame[BASE].itertuples(index=False)]
    frame["base"] = pd.Categorical(labels, style.bases)
    frame["n_pos"] = pd.Categorical(frame["n_pos"].astype(int).astype(str), list(style.palette))
    return frame


def _panels(frame: pd.DataFrame, by: list[str], order: list[str] | None = None) -> pd.Categorical:
    """One panel label per row, the ``by`` columns joined by line breaks, ordered by the
    ``order`` columns (default ``by``; the first slowest, a category in its own order)."""
    def text(f: pd.DataFrame) -> pd.Series:
        return f[by].astype(str).agg("\n".join, axis=1)

    ordered = frame.drop_duplicates(by).sort_values(order or by)
    return pd.Categorical(text(frame), list(dict.fromkeys(text(ordered))))


def _npos_scales(style: Style, *, fill: bool = True) -> list:
    scales = [p9.scale_colour_manual(values=style.palette, name="n_pos")]
    return scales + [p9.scale_fill_manual(values=style.palette, name="n_pos")] if fill else scales


def _wrapped(n_panels: int, extra_height: float = 1.4) -> p9.theme:
    """A theme sized for ``n_panels`` panels in rows of ``NCOL``."""
    cols = min(NCOL, max(n_panels, 1))
    rows = -(-max(n_panels, 1) // NCOL)
    return p9.theme(figure_size=(PANEL_IN[0] * cols + 1.6, PANEL_IN[1] * rows + extra_height),
                    strip_text=p9.element_text(size=7), legend_position="right")


def return_points(elasticity: pd.DataFrame) -> pd.DataFrame:
    """Where each aligned curve passes back through the base level (its return count), as the
    statistics read it; curves that never return within the grid have no point."""
    keys = ["task", *BASE, "direction", "n_pos"]
    frame = elasticity[keys + ["return_count", "base_level"]].rename(
        columns={"return_count": "n_neg", "base_level": "level"})
    return frame.dropna(subset=["n_neg"])


LEVEL = {"logodds": "mean log-odds of the target behaviour (nats)",
         "score": "judged score (share of target behaviour)"}


def rebound_plot(curves: pd.DataFrame, elasticity: pd.DataFrame, task: str, style: Style,
                 metric: str = "logodds") -> p9.ggplot:
    """The behaviour level (mean log-odds; the judged score in hub mode) vs n_neg, a line per
    n_pos with its CI band, the dashed base level and a point where each aligned curve returns
    to it; one panel per base and direction: the bases run in both directions (the rebound
    experiment) forward, then reversed, then the other bases, each in the study's base order."""
    frame = _labelled(curves[curves["task"] == task], style)
    back = _labelled(return_points(elasticity[elasticity["task"] == task]), style)
    # the bases run in both directions (the rebound experiment) first: a row of each direction
    frame["one_way"] = frame.groupby("base", observed=True)["direction"].transform("nunique") < 2
    frame["panel"] = _panels(frame, ["direction", "base"], ["one_way", "direction", "base"])
    back["panel"] = pd.Categorical(_panels(back, ["direction", "base"]).astype(str),
                                   frame["panel"].cat.categories)
    base = frame[(frame["n_pos"] == "0") & (frame["n_neg"] == 0)]
    return (p9.ggplot(frame, p9.aes("n_neg", "level", colour="n_pos", fill="n_pos"))
            + p9.geom_ribbon(p9.aes(ymin="level_low", ymax="level_high"), alpha=0.15,
                             colour="none")
            + p9.geom_line(size=0.4)
            + p9.geom_point(data=back, size=2, shape="o", fill="white")
            + p9.geom_hline(p9.aes(yintercept="level"), data=base, linetype="dashed")
            + p9.facet_wrap("~panel", ncol=NCOL)
            + _npos_scales(style)
            + p9.labs(x="perturbation examples (n_neg)", y=LEVEL[metric],
                      title=f"Rebound: {task} (dashed: the base level; open points: the return "
                            "to it)")
            + p9.theme_bw() + _wrapped(frame["panel"].nunique()))


def prior_plot(curves: pd.DataFrame) -> p9.ggplot:
    """E3: the deepest aligned arm and the departure control (dotted) of the main world's main
    base and each prior-shifted world's at the same size and budget (forward), each world's
    base level dashed in its colour: a spring slows down at its own world's base level,
    saturation at the same log-odds in every world. One panel per task and base."""
    main = curves[(curves["role"] == "main") & (curves["world"] != "mirror")
                  & (curves["direction"] == "forward") & (curves["algo"] == "sft")]
    shifted = main[main["world"] != "main"]
    frame = main[main.set_index(["size", "pretrain_tokens"]).index.isin(
        shifted.set_index(["size", "pretrain_tokens"]).index)]
    frame = frame[(frame["n_pos"] == 0) | (frame["n_pos"] == frame["n_pos"].max())].copy()
    frame["arm"] = np.where(frame["n_pos"] == 0, "departure", "deepest alignment")
    frame["curve"] = frame["world"] + " " + frame["arm"]
    frame["panel"] = [f"{t} · {s} @ {int(n):,}" for t, s, n in
                      zip(frame["task"], frame["size"], frame["pretrain_tokens"])]
    base = frame[(frame["n_pos"] == 0) & (frame["n_neg"] == 0)]
    plot = p9.ggplot(frame, p9.aes("n_neg", "level", colour="world", fill="world"))
    if frame.empty:
        return plot + p9.annotate("text", x=0, y=0, label="no prior-shifted world in this study")
    return (plot + p9.geom_ribbon(p9.aes(ymin="level_low", ymax="level_high", group="curve"),
                                  alpha=0.12, colour="none")
            + p9.geom_line(p9.aes(linetype="arm", group="curve"))
            + p9.geom_hline(p9.aes(yintercept="level", colour="world"), data=base,
                            linetype="dashed")
            + p9.facet_wrap("~panel")
            + p9.scale_linetype_manual(values={"deepest alignment": "solid",
                                               "departure": "dotted"})
            + p9.labs(x="perturbation examples (n_neg)", y=LEVEL["logodds"],
                      title="E3: rebound in prior-shifted worlds (dashed: each world's base "
                            "level; dotted: departure)")
            + p9.theme_bw() + p9.theme(figure_size=(11, 4.5)))


def cue_gap_plot(curves: pd.DataFrame, style: Style) -> p9.ggplot:
    """Cue gap (clean-cue prompts) vs n_neg in the forward direction: the context mapping
    erased by alignment and whether it comes back; one panel per base and task (a base's tasks
    side by side)."""
    frame = _labelled(curves[curves["direction"] == "forward"], style)
    frame["panel"] = _panels(frame, ["base", "task"])
    return (p9.ggplot(frame, p9.aes("n_neg", "cue_gap", colour="n_pos", fill="n_pos"))
            + p9.geom_ribbon(p9.aes(ymin="cue_gap_low", ymax="cue_gap_high"), alpha=0.15,
                             colour="none")
            + p9.geom_line(size=0.4) + p9.geom_hline(yintercept=0, linetype="dashed")
            + p9.facet_wrap("~panel", ncol=NCOL)
            + _npos_scales(style)
            + p9.labs(x="perturbation examples (n_neg)", y="cue gap (nats, clean-cue prompts)",
                      title="Context following during the perturbation (forward)")
            + p9.theme_bw() + _wrapped(frame["panel"].nunique()))


def compression_plot(curves: pd.DataFrame, task: str, style: Style) -> p9.ggplot:
    """Bits/byte of each dataset vs n_neg during the forward perturbation (measured points);
    one row per base, one column per dataset."""
    frame = _labelled(curves[(curves["task"] == task) & (curves["direction"] == "forward")],
                      style)
    long = frame.melt(id_vars=["base", "n_pos", "n_neg"], value_vars=list(DATASETS),
                      var_name="dataset", value_name="bpb").dropna()
    long["dataset"] = pd.Categorical(long["dataset"].map(DATASETS), list(DATASETS.values()))
    rows = max(long["base"].nunique(), 1)
    return (p9.ggplot(long, p9.aes("n_neg", "bpb", colour="n_pos"))
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.facet_grid("base ~ dataset", scales="free_y",
                            labeller=p9.labeller(rows=lambda b: b.replace(" · ", "\n")))
            + _npos_scales(style, fill=False)
            + p9.labs(x="perturbation examples (n_neg)", y="bits per byte",
                      title=f"Compression during perturbation: {task}")
            + p9.theme_bw() + p9.theme(figure_size=(10, 1.7 * rows + 1.4),
                                       strip_text_y=p9.element_text(size=6, angle=0)))


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


def kl_plot(curves: pd.DataFrame, style: Style) -> p9.ggplot:
    """KL to base vs n_neg in the forward direction (the paper's Table 3 as curves); one panel
    per base and task (a base's tasks side by side)."""
    frame = _labelled(curves[curves["direction"] == "forward"], style).dropna(
        subset=["kl_to_base"])
    frame["panel"] = _panels(frame, ["base", "task"])
    return (p9.ggplot(frame, p9.aes("n_neg", "kl_to_base", colour="n_pos"))
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.facet_wrap("~panel", ncol=NCOL, scales="free_y")
            + _npos_scales(style, fill=False)
            + p9.labs(x="perturbation examples (n_neg)", y="KL to base (nats/token)",
                      title="KL rebound")
            + p9.theme_bw() + _wrapped(frame["panel"].nunique()))


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
    pretrained size and its random-init twin (claim C1; tables/resistance_summary.csv)."""
    frame = summary[summary["metric"] == "loss"].copy()
    frame["base"] = [base_label(r, "main", s, t) for r, s, t in
                     zip(frame["role"], frame["size"], frame["pretrain_tokens"])]
    plot = p9.ggplot(frame, p9.aes("cell", "value", colour="direction"))
    if frame.empty:
        plot += p9.annotate("text", x=1, y=0, label="no resistance runs in this study")
    else:
        plot += p9.geom_pointrange(p9.aes(ymin="ci_low", ymax="ci_high"),
                                   position=p9.position_dodge(width=0.4))
        plot += p9.facet_wrap("~base", ncol=NCOL, scales="free_y")
    return (plot + p9.labs(x="saved models k-l (forward: theta_k on D_l; inverse: theta_l on D_k)",
                           y="final training loss (nats/token)",
                           title="C1 resistance: inverse alignment should end lower than forward")
            + p9.theme_bw() + p9.theme(figure_size=(11, 4)))


def k_lines(points: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """The k fit of claims.csv (C7 ``k_exponent``, point estimate) per task and size, as a
    segment over its points: a least-squares line passes through the mean of the points it was
    fitted to, so the slope read from claims.csv fixes it (none where the slope is undefined)."""
    fits = claims[(claims["claim"] == "C7") & (claims["statistic"] == "k_exponent")]
    rows = []
    for fit in fits.dropna(subset=["value"]).itertuples():
        own = points[(points["task"] == fit.task) & (points["size"].astype(str) == str(fit.size))]
        if own.empty:
            continue
        x0, y0 = own["log10_k"].mean(), own["log10_ratio"].mean()
        lo, hi = own["log10_k"].min(), own["log10_k"].max()
        rows.append({"task": fit.task, "size": own["size"].iloc[0], "slope": fit.value,
                     "x": lo, "xend": hi, "y": y0 + fit.value * (lo - x0),
                     "yend": y0 + fit.value * (hi - x0)})
    return pd.DataFrame(rows, columns=["task", "size", "slope", "x", "xend", "y", "yend"])


def theorem_plot(points: pd.DataFrame, claims: pd.DataFrame) -> p9.ggplot:
    """log10(Delta gamma_a / -Delta gamma_p) against log10 k (C7) with claims.csv's k-exponent
    (its point estimate) drawn through the points of each task and size; slope 1 is Theta(k)."""
    frame = points.dropna(subset=["log10_ratio"]).copy()
    frame["log10_k"] = np.log10(frame["k"])
    frame["base"] = frame["size"] + " @ " + frame["pretrain_tokens"].map("{:,}".format)
    plot = p9.ggplot(frame, p9.aes("log10_k", "log10_ratio", colour="task"))
    if frame.empty:
        plot += p9.annotate("text", x=0, y=0, label="no point where D_p improved and D_a worsened")
    else:
        plot += p9.geom_point(p9.aes(shape="base"))
        plot += p9.geom_segment(p9.aes(x="x", y="y", xend="xend", yend="yend"),
                                data=k_lines(frame, claims))
        plot += p9.facet_wrap("~size")
    return (plot + p9.labs(x="log10 k = |D_p| / |D_a|",
                           y="log10(Delta bpb D_a / -Delta bpb D_p)",
                           title="C7 Theorem 4.2: change ratio against k (line: claims.csv's "
                                 "k-exponent; Theta(k): slope 1)")
            + p9.theme_bw() + p9.theme(figure_size=(10, 4)))


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


def mitigation_frame(claims: pd.DataFrame, checkpoints: pd.DataFrame) -> pd.DataFrame:
    """The mitigation figure's points: every M1 / M2 row (value and CI, > 0 favours the arm) and
    each arm's cost beside plain SFT's, deepest alignment before the attack (held-out D_a and
    D_p bits/byte, arm minus SFT, mean over runs), by arm kind and strength."""
    rows = claims[claims["claim"].isin(["M1", "M2"])]
    frame = pd.DataFrame({"task": rows["task"], "algo": rows["algo"],
                          "panel": rows["claim"] + " " + rows["statistic"],
                          "value": rows["value"], "low": rows["ci_low"], "high": rows["ci_high"]})
    if len(frame) and "bpb_align" in checkpoints:
        deep = checkpoints[(checkpoints["n_neg"] == 0) & (checkpoints["n_pos"] > 0)
                           & (checkpoints["direction"] == "forward")]
        deep = deep[deep["n_pos"] == deep.groupby("task")["n_pos"].transform("max")]
        mean = deep.groupby(["task", "algo"])[["bpb_align", "bpb_pretrain"]].mean()
        for col, name in (("bpb_align", "cost: D_a bits/byte - SFT"),
                          ("bpb_pretrain", "cost: D_p bits/byte - SFT")):
            diff = (mean[col] - mean[col].xs("sft", level="algo")).reset_index()
            diff = diff[diff["algo"].isin(frame["algo"])]
            frame = pd.concat([frame, pd.DataFrame({
                "task": diff["task"], "algo": diff["algo"], "panel": name, "value": diff[col],
                "low": diff[col], "high": diff[col]})], ignore_index=True)
    parts = frame["algo"].str.split("-", n=1)
    frame["kind"] = parts.str[0]
    frame["strength"] = pd.to_numeric(parts.str[1])
    return frame


def mitigation_plot(claims: pd.DataFrame, checkpoints: pd.DataFrame) -> p9.ggplot:
    """Per arm kind, each M1 / M2 statistic (arm vs plain SFT, 95 % CI; > 0: the arm helps)
    and the arm's cost against its strength, per task."""
    frame = mitigation_frame(claims, checkpoints)
    plot = p9.ggplot(frame, p9.aes("strength", "value", colour="task"))
    if frame.empty:
        return plot + p9.annotate("text", x=0, y=0, label="no mitigation arm in this study")
    return (plot + p9.geom_hline(yintercept=0, linetype="dashed", colour="grey")
            + p9.geom_pointrange(p9.aes(ymin="low", ymax="high"),
                                 position=p9.position_dodge(width=0.02), size=0.3)
            + p9.geom_line(position=p9.position_dodge(width=0.02))
            + p9.facet_grid("panel ~ kind", scales="free")
            + p9.labs(x="arm strength", y="arm vs plain SFT",
                      title="Mitigation (M1, M2): elasticity and surviving alignment vs "
                            "strength (95 % CI; > 0 favours the arm), beside the cost")
            + p9.theme_bw() + p9.theme(figure_size=(3 + 2.4 * frame["kind"].nunique(),
                                                    1.6 * frame["panel"].nunique() + 1.4),
                                       strip_text_y=p9.element_text(size=6)))


def table_figures(*, checkpoints: pd.DataFrame, curves: pd.DataFrame, tasks: list[str],
                  compression: tuple[pd.DataFrame, ...] = ()) -> dict[str, p9.ggplot]:
    """The figures drawn from the aggregated tables alone, by file stem: they need no claims,
    so their job runs beside the claims job (``compression``: the compressors and rank-frequency
    tables, when the study runs that experiment). The curve figures are SFT's; other algorithms
    have their heatmaps."""
    style = study_style(curves, checkpoints)
    sft = curves[curves["algo"] == "sft"]
    plots = {"algorithms": algorithms_plot(curves), "prior_shift": prior_plot(curves),
             "cue_gap": cue_gap_plot(sft, style), "ladder": ladder_plot(checkpoints),
             "kl_rebound": kl_plot(sft, style)}
    for task in tasks:
        plots[f"compression_{task}"] = compression_plot(sft, task, style)
    if compression:
        plots["compressors"] = compressors_plot(compression[0])
        plots["rank_frequency"] = rank_frequency_plot(compression[1])
    return plots


def claim_figures(*, checkpoints: pd.DataFrame, curves: pd.DataFrame,
                  elasticity: pd.DataFrame, trends: pd.DataFrame,
                  resistance_summary: pd.DataFrame, theorem: pd.DataFrame, claims: pd.DataFrame,
                  tasks: list[str]) -> dict[str, p9.ggplot]:
    """The figures that draw the claims job's tables, by file stem."""
    style = study_style(curves, checkpoints)
    metric = elasticity["metric"].iloc[0] if len(elasticity) else "logodds"
    sft, sft_stats = curves[curves["algo"] == "sft"], elasticity[elasticity["algo"] == "sft"]
    plots = {"size_trend": trend_plot(trends, "parameters"),
             "volume_trend": trend_plot(trends, "tokens"),
             "resistance": resistance_plot(resistance_summary),
             "theorem": theorem_plot(theorem, claims),
             "mitigation": mitigation_plot(claims, checkpoints)}
    for task in tasks:
        plots[f"rebound_{task}"] = rebound_plot(sft, sft_stats, task, style, metric)
    return plots


FIGURE_SETS = {"tables": table_figures, "claims": claim_figures}


def build_figures(*, compression: tuple[pd.DataFrame, ...] = (), **tables) -> dict[str, p9.ggplot]:
    """Every figure of a study by its file stem, from the study's tables (the keywords of
    ``claim_figures``, plus ``compression``)."""
    shared = {k: tables[k] for k in ("checkpoints", "curves", "tasks")}
    return table_figures(**shared, compression=compression) | claim_figures(**tables)


def figures(kind: str, *, tasks: list[str], out: dict[str, list[str]],
            compression: list[str] = (), **tables: str) -> None:
    """Write the declared figures of one set (``FIGURE_SETS``: "tables" or "claims") from the
    CSV files its builder reads: each output list holds (png, pdf) pairs, and a file's stem names
    its figure."""
    frames = {key: pd.read_csv(path) for key, path in tables.items()}
    if compression:  # only the table figures' rule declares them
        frames["compression"] = tuple(pd.read_csv(c) for c in compression)
    plots = FIGURE_SETS[kind](tasks=tasks, **frames)
    for files in out.values():
        for png, pdf in zip(files[::2], files[1::2]):
            save(plots[Path(png).stem], png, pdf)
