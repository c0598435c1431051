"""plotnine figures of a study (each saved as PNG and PDF)."""

from __future__ import annotations

import pandas as pd
import plotnine as p9

DATASETS = {"bpb_pretrain": "D_p (pretraining)", "bpb_align": "D_a (alignment)",
            "bpb_perturb": "D_t (perturbation)"}


def _labelled(curves: pd.DataFrame) -> pd.DataFrame:
    frame = curves.copy()
    frame["base"] = frame["size"] + " @ " + frame["pretrain_tokens"].map("{:,} tokens".format)
    frame["n_pos"] = pd.Categorical(frame["n_pos"], sorted(frame["n_pos"].unique()))
    return frame


def rebound_plot(curves: pd.DataFrame, task: str) -> p9.ggplot:
    """Score vs n_neg, a line per n_pos, CI band, dashed base level; facets: direction x base."""
    frame = _labelled(curves[curves["task"] == task])
    base = frame[(frame["n_pos"] == 0) & (frame["n_neg"] == 0)]
    return (p9.ggplot(frame, p9.aes("n_neg", "score", colour="n_pos", fill="n_pos"))
            + p9.geom_ribbon(p9.aes(ymin="score_low", ymax="score_high"), alpha=0.15,
                             colour="none")
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.geom_hline(p9.aes(yintercept="score"), data=base, linetype="dashed")
            + p9.facet_grid("direction ~ base")
            + p9.labs(x="perturbation examples (n_neg)", y="judged score (share of target)",
                      colour="n_pos", fill="n_pos", title=f"Rebound: {task}")
            + p9.theme_bw() + p9.theme(figure_size=(9, 5)))


def compression_plot(curves: pd.DataFrame, task: str) -> p9.ggplot:
    """Bits/byte of each dataset vs n_neg during the forward perturbation."""
    frame = _labelled(curves[(curves["task"] == task) & (curves["direction"] == "forward")])
    long = frame.melt(id_vars=["base", "n_pos", "n_neg"], value_vars=list(DATASETS),
                      var_name="dataset", value_name="bpb")
    long["dataset"] = long["dataset"].map(DATASETS)
    return (p9.ggplot(long, p9.aes("n_neg", "bpb", colour="n_pos"))
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.facet_grid("dataset ~ base", scales="free_y")
            + p9.labs(x="perturbation examples (n_neg)", y="bits per byte",
                      title=f"Compression during perturbation: {task}")
            + p9.theme_bw() + p9.theme(figure_size=(9, 6)))


def ladder_plot(checkpoints: pd.DataFrame) -> p9.ggplot:
    """Cue gap and pretraining bits/byte against tokens seen, per size and task."""
    ladder = checkpoints[checkpoints["algo"] == "none"]
    long = ladder.melt(id_vars=["task", "size", "pretrain_tokens"],
                       value_vars=["cue_gap", "bpb_pretrain"], var_name="metric").dropna()
    return (p9.ggplot(long, p9.aes("pretrain_tokens", "value", colour="size"))
            + p9.geom_line() + p9.geom_point()
            + p9.facet_grid("metric ~ task", scales="free_y")
            + p9.labs(x="pretraining tokens", y="", title="Pretraining ladder")
            + p9.theme_bw() + p9.theme(figure_size=(8, 5)))


def two_phase_fits(curves: pd.DataFrame, metric: str = "p_target") -> pd.DataFrame:
    """The fitted two-segment line of every aligned curve (n_pos > 0), on its n_neg grid."""
    from springback.stats import fit_two_phase

    rows = []
    keys = ["task", "size", "pretrain_tokens", "direction", "n_pos"]
    for key, frame in curves[curves["n_pos"] > 0].groupby(keys):
        x, y = frame["n_neg"].to_numpy(float), frame[metric].to_numpy(float)
        fit = fit_two_phase(x, y)
        fitted = fit.intercept + fit.slope1 * x + (fit.slope2 - fit.slope1) * (x - fit.breakpoint).clip(0)
        rows.append(frame[keys + ["n_neg"]].assign(fit=fitted))
    return pd.concat(rows, ignore_index=True)


def two_phase_plot(curves: pd.DataFrame, task: str, metric: str = "p_target") -> p9.ggplot:
    """The claims' metric vs n_neg (points, CI bars) with the two-phase fit (lines)."""
    frame = _labelled(curves[(curves["task"] == task) & (curves["n_pos"] > 0)])
    fits = _labelled(two_phase_fits(curves[curves["task"] == task], metric).assign(
        **{"size": lambda f: f["size"].astype(str)}))
    return (p9.ggplot(frame, p9.aes("n_neg", metric, colour="n_pos"))
            + p9.geom_errorbar(p9.aes(ymin=f"{metric}_low", ymax=f"{metric}_high"), width=0)
            + p9.geom_point(size=1)
            + p9.geom_line(p9.aes(y="fit"), data=fits)
            + p9.facet_grid("direction ~ base")
            + p9.labs(x="perturbation examples (n_neg)",
                      y="P(target behaviour)" if metric == "p_target" else "judged score",
                      title=f"Two-phase fits: {task}")
            + p9.theme_bw() + p9.theme(figure_size=(9, 5)))


def kl_plot(curves: pd.DataFrame, epsilon: float) -> p9.ggplot:
    """KL to base vs n_neg in the forward direction (the paper's Table 3 as curves)."""
    frame = _labelled(curves[curves["direction"] == "forward"])
    return (p9.ggplot(frame, p9.aes("n_neg", "kl_to_base", colour="n_pos"))
            + p9.geom_line() + p9.geom_point(size=0.8)
            + p9.geom_hline(yintercept=epsilon, linetype="dashed")
            + p9.facet_grid("task ~ base", scales="free_y")
            + p9.labs(x="perturbation examples (n_neg)", y="KL to base (nats/token)",
                      title="KL rebound (dashed: epsilon)")
            + p9.theme_bw() + p9.theme(figure_size=(9, 5)))


def save(plot: p9.ggplot, png: str, pdf: str) -> None:
    plot.save(png, dpi=120, verbose=False)
    plot.save(pdf, verbose=False)


def figures(*, checkpoints: str, curves: str, tasks: list[str], epsilon: float,
            out: dict[str, list[str]], metric: str = "p_target") -> None:
    """Write every figure; per-task outputs list png, pdf for each task in order."""
    table, frame = pd.read_csv(checkpoints), pd.read_csv(curves)
    for i, task in enumerate(tasks):
        save(rebound_plot(frame, task), *out["rebound"][2 * i: 2 * i + 2])
        save(compression_plot(frame, task), *out["compression"][2 * i: 2 * i + 2])
        save(two_phase_plot(frame, task, metric), *out["two_phase"][2 * i: 2 * i + 2])
    save(ladder_plot(table), *out["ladder"])
    save(kl_plot(frame, epsilon), *out["kl"])
