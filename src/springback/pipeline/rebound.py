"""Stage `rebound` (rules/rebound.smk): every SFT run of one base checkpoint, through the run
engine (springback.runs).

For one base, every run (task x direction x fine-tuning seed) aligns on the first n_pos examples
of its phase-1 set, then perturbs each snapshot and the base itself on its phase-2 set,
evaluating each checkpoint in memory the moment it is reached. The job runs them run after run
(``runs.run``) or every run at once as one batched ensemble (``runs.run_ensemble``; a base the
ensemble cannot hold falls back to run after run, with a log line).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from springback import data, ensemble as batched, models, provenance, runs
from springback.adapters import Trainable, check_spec

log = logging.getLogger(__name__)


def why_run_after_run(base, *, ensemble: bool, adapter: dict) -> str | None:
    """Why a job asking for an ensemble runs run after run (None: it runs as an ensemble)."""
    if not ensemble:
        return None
    if adapter["kind"] != "full":
        return "LoRA adapters train run after run"
    return batched.unsupported(base)


def rebound(*, base_dir: str | Path, files: Mapping[str, str | Path], tasks: list[str],
            directions: list[str], seeds: list[int], n_pos: list[int], n_neg: list[int],
            train: dict, eval_cfg: dict, keep, out_metrics: str | Path, out_prompts: str | Path,
            out_documents: str | Path, out_models: str | Path, judges: dict | None = None,
            runtime: dict | None = None, ensemble: bool = False, adapter: dict | None = None,
            trainer: str = "plain", checkpointing: bool = False) -> None:
    """Every rebound run of the base checkpoint ``base_dir``; writes checkpoint rows, per-prompt
    rows, per-document rows of the text checkpoints and kept models. ``files``: the job's named
    inputs (``<task>_<table>``, ``judge_<task>``, pretrain_heldout); ``train`` holds lr,
    batch_size and loss; ``eval_cfg`` is the study's evaluate config. ``adapter``: train every
    weight (``{kind: full}``, default) or a LoRA adapter on the frozen base (kept checkpoints
    are then adapter folders); ``trainer``: plain loop or TRL."""
    adapter = check_spec(adapter)
    params = {"base": str(base_dir), **train, "adapter": adapter, "trainer": trainer}
    tok, base, record = runs.prepare(
        base_dir=base_dir, files=files, tasks=tasks, pretrain_heldout=files["pretrain_heldout"],
        n_neg=n_neg, eval_cfg=eval_cfg, judges=judges, runtime=runtime, keep=keep,
        out_models=out_models, params=params)
    tables = {task: data.task_files(files, task) for task in tasks}
    job_runs = runs.job_runs(tasks, directions, seeds)
    tune = runs.tuner(trainer, tok, train, checkpointing=checkpointing)
    why_not = why_run_after_run(base, ensemble=ensemble, adapter=adapter)
    if why_not:
        log.info("ensemble off, running run after run: %s", why_not)
    if ensemble and not why_not:
        runs.run_ensemble(base, record, tune, runs=job_runs, tables=tables, n_pos=n_pos,
                          n_neg=n_neg)
        log.info("ensemble of %d runs done (%d checkpoints)", len(job_runs), len(record.rows))
    else:
        trainable = Trainable(base, adapter)
        log.info("training %s: %d trainable parameters, %s trainer", adapter["kind"],
                 trainable.trainable_params(), trainer)
        run_after_run(trainable, record, tune, job_runs=job_runs, tables=tables, n_pos=n_pos,
                      n_neg=n_neg)
    log.info(record.summary())
    keys = provenance.base_keys(models.read_provenance(base_dir))
    runs.write(record.metrics(keys, phase1_tokens=runs.phase1_tokens(tok, tables, record.rows),
                              lr=train["lr"]),  # rebound.lr, or rebound.control_lr of the base
               record.prompts(), documents=record.documents(),
               prov=provenance.record(params, base_checkpoint=keys), out_metrics=out_metrics,
               out_prompts=out_prompts, out_documents=out_documents)


def run_after_run(trainable: Trainable, record: runs.Recorder, tune: runs.SFT, *,
                  job_runs: list[tuple[str, str, int]], tables: dict, n_pos: list[int],
                  n_neg: list[int]) -> None:
    """Every run of the job, one after another, on the one resident ``trainable``."""
    if trainable.lora:  # the adapter wraps the base in place: KL reads it with the adapter off
        for ev in record.sets.values():
            ev.base = trainable.model
    for i, (task, direction, seed) in enumerate(job_runs):
        runs.run(trainable, record, tune, key={"task": task, "direction": direction, "seed": seed},
                 tables=tables[task], n_pos=n_pos, n_neg=n_neg)
        log.info("run %d/%d done: %s %s seed %d (%d checkpoints so far)", i + 1, len(job_runs),
                 task, direction, seed, len(record.rows))
