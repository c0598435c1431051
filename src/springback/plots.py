"""plotnine figures of a study (each saved as PNG and PDF). Every curve and fitted segment is read
from the tables the statistics core wrote (curves.csv, elasticity.csv): the figure draws exactly
what the claims use."""

from __future__ import annotations

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


def fit_segments(elasticity: pd.DataFrame) -> pd.DataFrame:
    """The two-phase segments of every aligned curve, as the statistics define them: from the
    aligned model to the base crossing, then to ``beyond`` nats past the base level."""
    rows = []
    for _, r in elasticity.iterrows():
        cross, past = r["return_count"], r["return_count"] + r["beyond_count"]
        beyond_level = r["base_level"] + r["sign"] * r["beyond"] if pd.notna(past) else float("nan")
        for n, y, seg in ((0.0, r["base_level"] - r["sign"] * r["lift"], "fast"),
                          (cross, r["base_level"], "fast"), (cross, r["base_level"], "slow"),
                          (past, beyond_level, "slow")):
            rows.append({**{k: r[k] for k in ("task", "role", "size", "pretrain_tokens",
                                               "direction", "n_pos")},
                         "n_neg": n, "level": y, "segment": f"{r['n_pos']}-{seg}"})
    return pd.DataFrame(rows, columns=["task", "role", "size", "pretrain_tokens", "direction",
                                       "n_pos", "n_neg", "level", "segment"]).dropna(
        subset=["n_neg", "level"])


LEVEL = {"logodds": "mean log-odds of the target behaviour (nats)",
         "score": "judged score (share of target behaviour)"}


def rebound_plot(curves: pd.DataFrame, elasticity: pd.DataFrame, task: str,
                 metric: str = "logodds") -> p9.ggplot:
    """The behaviour level (mean log-odds; the judged score in hub mode) vs n_neg, a line per
    n_pos with its CI band, the dashed base level and the two-phase segments of the statistics;
    facets: direction x base."""
    frame = _labelled(curves[curves["task"] == task])
    base = frame[(frame["n_pos"] == 0) & (frame["n_neg"] == 0)]
    fits = _labelled(fit_segments(elasticity[elasticity["task"] == task]))
    return (p9.ggplot(frame, p9.aes("n_neg", "level", colour="n_pos", fill="n_pos"))
            + p9.geom_ribbon(p9.aes(ymin="level_low", ymax="level_high"), alpha=0.15,
                             colour="none")
            + p9.geom_line(size=0.4)
            + p9.geom_path(p9.aes(group="segment"), data=fits, linetype="dotted", size=0.8)
            + p9.geom_hline(p9.aes(yintercept="level"), data=base, linetype="dashed")
            + p9.facet_grid("direction ~ base")
            + p9.labs(x="perturbation examples (n_neg)", y=LEVEL[metric], colour="n_pos",
                      fill="n_pos", title=f"Rebound: {task} (dotted: the two-phase segments)")
            + p9.theme_bw() + p9.theme(figure_size=(11, 5.5)))


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
            + p9.theme_bw() + p9.theme(figure_size=(11, 5)))


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
            + p9.theme_bw() + p9.theme(figure_size=(11, 6)))


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
            + p9.theme_bw() + p9.theme(figure_size=(11, 5)))


def save(plot: p9.ggplot, png: str, pdf: str) -> None:
    plot.save(png, dpi=110, verbose=False)
    plot.save(pdf, verbose=False)


def figures(*, checkpoints: str, curves: str, elasticity: str, tasks: list[str],
            out: dict[str, list[str]]) -> None:
    """Write every figure; per-task outputs list png, pdf for each task in order."""
    table, frame, stats = pd.read_csv(checkpoints), pd.read_csv(curves), pd.read_csv(elasticity)
    metric = stats["metric"].iloc[0] if len(stats) else "logodds"
    for i, task in enumerate(tasks):
        save(rebound_plot(frame, stats, task, metric), *out["rebound"][2 * i: 2 * i + 2])
        save(compression_plot(frame, task), *out["compression"][2 * i: 2 * i + 2])
    save(cue_gap_plot(frame), *out["cue_gap"])
    save(ladder_plot(table), *out["ladder"])
    save(kl_plot(frame), *out["kl"])
