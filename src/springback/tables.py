"""Aggregation: the tidy per-checkpoint table and the per-condition curves with CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from springback.stats import bootstrap_ci, hierarchical_bootstrap_means

CONDITION = ["task", "size", "params", "pretrain_tokens", "algo", "direction", "n_pos", "n_neg"]
SEED_METRICS = ["cue_gap", "logodds", "kl_to_base", "bpb_pretrain", "bpb_align", "bpb_perturb"]
PROMPT_METRICS = ["score", "p_target"]


def checkpoint_table(metrics: list[str], ladder: str) -> pd.DataFrame:
    """One row per evaluated checkpoint: rebound checkpoints (algo sft) and the ladder (none)."""
    frames = [pd.read_csv(m).assign(algo="sft") for m in metrics]
    base = pd.read_csv(ladder).assign(algo="none", direction="none", n_pos=0, n_neg=0)
    table = pd.concat(frames + [base], ignore_index=True)
    first = CONDITION + ["seed"]
    return table[first + [c for c in table.columns if c not in first]]


def prompt_table(prompts: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per-prompt rows of every rebound job, with the job's task/size/tokens columns."""
    frames = []
    for p, m in zip(prompts, metrics):
        keys = pd.read_csv(m, nrows=1)[["size", "params", "pretrain_tokens"]].iloc[0]
        frames.append(pd.read_parquet(p).assign(algo="sft", **keys.to_dict()))
    return pd.concat(frames, ignore_index=True)


def curves(checkpoints: pd.DataFrame, prompts: pd.DataFrame, *, n_boot: int) -> pd.DataFrame:
    """Mean and 95 % CI per condition: prompt-level metrics by a two-level (seed, prompt)
    bootstrap; checkpoint-level metrics by a bootstrap over seeds."""
    out = None
    for metric in PROMPT_METRICS:
        frame = hierarchical_bootstrap_means(prompts.rename(columns={metric: "value"}),
                                             group_cols=CONDITION, n_boot=n_boot)
        frame = frame.rename(columns={"mean": metric, "ci_low": f"{metric}_low",
                                      "ci_high": f"{metric}_high"})
        if out is None:
            out = frame
        elif len(frame):
            out = out.merge(frame.drop(columns="n_seeds"), on=CONDITION, how="left")
        else:  # a metric undefined everywhere (p_target in hub mode) stays NaN
            out[[metric, f"{metric}_low", f"{metric}_high"]] = np.nan
    rebound = checkpoints[checkpoints["algo"] != "none"]
    seed_level = rebound.groupby(CONDITION)[SEED_METRICS].agg(list).reset_index()
    for metric in SEED_METRICS:
        cis = [bootstrap_ci(np.array(v), n_boot=n_boot) for v in seed_level[metric]]
        seed_level[f"{metric}_low"] = [c[0] for c in cis]
        seed_level[f"{metric}_high"] = [c[1] for c in cis]
        seed_level[metric] = [float(np.mean(v)) for v in seed_level[metric]]
    return out.merge(seed_level, on=CONDITION, how="left").sort_values(CONDITION,
                                                                       ignore_index=True)


def aggregate(*, metrics: list[str], prompts: list[str], ladder: str, out_checkpoints: str,
              out_curves: str, n_boot: int) -> None:
    table = checkpoint_table(metrics, ladder)
    table.to_csv(out_checkpoints, index=False)
    curves(table, prompt_table(prompts, metrics), n_boot=n_boot).to_csv(out_curves, index=False)
