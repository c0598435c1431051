"""Stage `pairs` (rules/pairs.smk): the elasticity report card of released (base, aligned) pairs.

A job perturbs the pair's base and its released aligned model on the first n_neg examples of one
task's D_t (one fine-tuning seed; the same examples in the same order for both), evaluating every
n_neg checkpoint in memory with the base as the reference of KL, exactly as a rebound run
evaluates its arms (springback.runs's Recorder). The card job
(springback.pairs.write_card) reads every job of a pair through the statistics core.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from springback import data, models, provenance, runs
from springback.adapters import Trainable, check_spec
from springback.pairs import ARMS, RELEASED

log = logging.getLogger(__name__)


def model_name(path: str | Path) -> str:
    """The hub id (or source folder) a fetched model came from, else its path."""
    return str(models.read_provenance(path).get("id", path))


def check_vocabulary(base_dir: str | Path, aligned_dir: str | Path) -> None:
    """Refuse a pair whose tokenizers differ: both arms read the same token ids (the base's)."""
    base = models.load_tokenizer(base_dir).get_vocab()
    aligned = models.load_tokenizer(aligned_dir).get_vocab()
    if base != aligned:
        differ = len(set(base.items()) ^ set(aligned.items()))
        raise ValueError(f"base {model_name(base_dir)} ({len(base)} tokens) and aligned "
                         f"{model_name(aligned_dir)} ({len(aligned)} tokens) do not share a "
                         f"tokenizer vocabulary ({differ} token entries differ)")


def perturb_pair(*, pair: str, base_dir: str | Path, aligned_dir: str | Path, task: str,
                 files: Mapping[str, str | Path], direction: str, seed: int, n_neg: list[int],
                 train: dict, eval_cfg: dict, out_metrics: str | Path, out_prompts: str | Path,
                 judges: dict | None = None, runtime: dict | None = None,
                 adapter: dict | None = None, trainer: str = "plain",
                 checkpointing: bool = False) -> None:
    """Both arms of one (pair, task, seed): the base perturbed on D_t (arm 0, n_pos 0), then the
    released model perturbed on the same examples in the same order (arm 1, n_pos
    ``RELEASED``); writes the checkpoint rows (metrics.csv and its provenance) and the per-prompt
    rows (prompts.parquet). ``files``: the job's named inputs (``<task>_<table>``,
    ``judge_<task>``, pretrain_heldout); ``train`` holds lr, batch_size and loss; ``adapter``,
    ``trainer`` and ``checkpointing`` are the study's regime (every weight or a LoRA adapter;
    plain loop or TRL), as in a rebound run."""
    check_vocabulary(base_dir, aligned_dir)
    runtime, adapter = runtime or {}, check_spec(adapter)
    params = {"pair": pair, "base": model_name(base_dir), "aligned": model_name(aligned_dir),
              "direction": direction, **train, "adapter": adapter, "trainer": trainer}
    tok, _, record = runs.prepare(
        base_dir=base_dir, files=files, tasks=[task], pretrain_heldout=files["pretrain_heldout"],
        n_neg=n_neg, eval_cfg=eval_cfg, judges=judges, runtime=runtime, params=params)
    tune = runs.tuner(trainer, tok, train, checkpointing=checkpointing)
    negatives = data.ordered_examples(tok, data.phase_files(data.task_files(files, task),
                                                            direction)[1],
                                      seed=seed, phase=2, n=max(n_neg))
    for n_pos, model_dir in ((0, base_dir), (RELEASED, aligned_dir)):
        # each arm trains its own copy loaded from disk: the base prepare() loaded stays
        # untouched as the reference of KL (a LoRA adapter wraps the model it is given)
        model = Trainable(models.load_model(model_dir, **runtime), adapter, once=True).fresh(seed)
        key = {"task": task, "direction": direction, "seed": seed, "aligned": ARMS[n_pos],
               "n_pos": n_pos}
        tune(model, negatives, seed=seed, save_at=n_neg,
             save=lambda m, n: record(m, {**key, "n_neg": n}))
        del model  # one trained model in memory at a time, beside the reference
        log.info("pair %s %s seed %d: %s arm done", pair, task, seed, ARMS[n_pos])
    runs.write(record.metrics({"pair": pair}), record.prompts({"pair": pair}),
               prov=provenance.record(params, base_model=models.read_provenance(base_dir),
                                      aligned_model=models.read_provenance(aligned_dir)),
               out_metrics=out_metrics, out_prompts=out_prompts)
