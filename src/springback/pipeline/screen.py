"""Stage `screen` (rules/screen.smk): the regime screen that chooses the fine-tuning regime."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from springback.pipeline.rebound import rebound
from springback.tables import regime_table, runs_table

log = logging.getLogger(__name__)


def screen(*, regimes: list[dict], n_pos: list[int], seeds: list[int], train: dict,
           out: str | Path, claims: dict, **job) -> None:
    """The regime screen: forward rebound runs of one base for every regime (lr, loss); per
    regime, task and n_pos the competence and rebound statistics, averaged over runs.
    ``job`` holds the other arguments of ``rebound`` (base, tasks, n_neg grid, evaluation)."""
    rows = []
    for regime in regimes:
        with tempfile.TemporaryDirectory() as tmp:
            metrics, prompts = Path(tmp) / "metrics.csv", Path(tmp) / "prompts.parquet"
            rebound(**job, directions=["forward"], seeds=seeds, n_pos=n_pos,
                    train={**train, **regime}, keep="none", out_metrics=metrics,
                    out_prompts=prompts, out_models=Path(tmp) / "models")
            table = pd.read_csv(metrics).assign(role="main", algo="sft")
            per_prompt = pd.read_parquet(prompts).assign(
                role="main", algo="sft", **table[["world", "size", "pretrain_seed",
                                                  "pretrain_tokens"]].iloc[0].to_dict())
        opts = {k: claims[k] for k in ("band", "early")}
        runs = runs_table(per_prompt, table, **opts)
        regime_rows = regime_table(table, per_prompt, max_dp_rise=claims["max_dp_rise"],
                                   early=claims["early"])
        stats = runs.groupby(["task", "n_pos"])[["lift", "return_rate", "return_speedup",
                                                 "kink_excess", "stiffness_excess", "recovery",
                                                 "kl_min_share"]].mean().reset_index()
        merged = stats.merge(regime_rows.drop(columns=["role", "world", "size", "pretrain_tokens",
                                                       "pretrain_seed"]), on="task")
        rows.append(merged.assign(**regime))
        log.info("screened %s", regime)
    frame = pd.concat(rows, ignore_index=True)
    first = [*regimes[0], "task", "n_pos"]
    frame[first + [c for c in frame.columns if c not in first]].to_csv(out, index=False)
