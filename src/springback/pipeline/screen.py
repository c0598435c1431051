"""Stage `screen` (rules/screen.smk): the regime screen that chooses the fine-tuning regime."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import pandas as pd

from springback import data, models, provenance, runs
from springback.adapters import Trainable
from springback.tables import regime_table, runs_table

log = logging.getLogger(__name__)

RUN_STATISTICS = ["lift", "return_rate", "return_speedup", "kink_excess", "stiffness_excess",
                  "recovery", "kl_min_share"]


def screen(*, base_dir: str | Path, files: Mapping[str, str | Path], tasks: list[str],
           lrs: list[float], losses: list[str], n_pos: list[int], n_neg: list[int],
           seeds: list[int], batch_size: int, eval_cfg: dict, claims: dict, out: str | Path,
           runtime: dict | None = None) -> None:
    """The regime screen: forward runs of the base checkpoint ``base_dir`` (plain SFT loop,
    every weight, run after run) for every regime (lr x loss); per regime, task and n_pos the
    competence and rebound statistics, averaged over runs. ``files``: the job's named inputs
    (as the rebound stage's)."""
    regimes = [{"lr": lr, "loss": loss} for lr in lrs for loss in losses]
    tok, base, record = runs.prepare(
        base_dir=base_dir, files=files, tasks=tasks, pretrain_heldout=files["pretrain_heldout"],
        n_neg=n_neg, eval_cfg=eval_cfg, runtime=runtime)
    tables = {task: data.task_files(files, task) for task in tasks}
    keys = provenance.base_keys(models.read_provenance(base_dir))
    rows = []
    for regime in regimes:
        regime_record, tune = record.fresh(), runs.SFT(tok, {"batch_size": batch_size, **regime})
        trainable = Trainable(base)
        for task, direction, seed in runs.job_runs(tasks, ["forward"], seeds):
            runs.run(trainable, regime_record, tune, tables=tables[task], n_pos=n_pos,
                     n_neg=n_neg, key={"task": task, "direction": direction, "seed": seed})
        table = regime_record.metrics(keys, phase1_tokens=runs.phase1_tokens(
            tok, tables, regime_record.rows), lr=tune.train["lr"])
        rows.append(regime_rows(table, regime_record.prompts(), keys, claims).assign(**regime))
        log.info("screened %s", regime)
    frame = pd.concat(rows, ignore_index=True)
    first = [*regimes[0], "task", "n_pos"]
    frame[first + [c for c in frame.columns if c not in first]].to_csv(out, index=False)


def regime_rows(table: pd.DataFrame, prompts: pd.DataFrame, keys: dict,
                claims: dict) -> pd.DataFrame:
    """Per task and n_pos of one regime's runs (checkpoint and per-prompt rows, as a rebound job
    writes them): the run statistics averaged over runs, beside the task's competence
    (regime.csv's columns)."""
    table = table.assign(role="main", algo="sft")
    per_prompt = prompts.assign(role="main", algo="sft", **{
        k: keys[k] for k in ("world", "size", "pretrain_seed", "pretrain_tokens")})
    runs_frame = runs_table(per_prompt, table, band=claims["band"], early=claims["early"])
    competence = regime_table(table, per_prompt, max_dp_rise=claims["max_dp_rise"],
                              early=claims["early"])
    stats = runs_frame.groupby(["task", "n_pos"])[RUN_STATISTICS].mean().reset_index()
    return stats.merge(competence.drop(columns=["role", "world", "size", "pretrain_tokens",
                                                "pretrain_seed"]), on="task")
