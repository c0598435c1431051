"""Stages `align` and `perturb` (rules/align.smk, rules/perturb.smk).

Each job loops over tasks, directions and seeds inside one process: every process pays ~8 s of
imports here, so the job, not the run, is the unit (shared/notes/stack.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from springback import data, models, provenance
from springback.models import load_tokenizer

log = logging.getLogger(__name__)


def encode_examples(tok, frame: pd.DataFrame) -> list[tuple[list[int], list[int]]]:
    """(BOS + prompt ids, completion ids + EOS) per row."""
    ids = models.special_ids(tok)
    prompts = tok(frame["prompt"].tolist(), add_special_tokens=False)["input_ids"]
    completions = tok(frame["completion"].tolist(), add_special_tokens=False)["input_ids"]
    return [([ids["start"]] + p, c + [ids["eos"]]) for p, c in zip(prompts, completions)]


def ordered_examples(tok, path: Path, *, seed: int, phase: int, n: int):
    """The first n examples of a task file in the seed's order (a phase-specific permutation)."""
    frame = data.read_table(path, data.EXAMPLE_COLUMNS)
    if n > len(frame):
        raise ValueError(f"dataset file {path} has {len(frame)} examples, the study needs {n}")
    order = np.random.default_rng([seed, phase]).permutation(len(frame))[:n]
    return encode_examples(tok, frame.iloc[order])


def runs(task_dirs: dict, directions: list[str], seeds: list[int]):
    """Every (task, direction, seed) of a job, in a fixed order."""
    return [(t, d, s) for t in task_dirs for d in directions for s in seeds]


def run_dir(root: str | Path, task: str, direction: str, seed: int, q1: int,
            q2: int | None = None) -> Path:
    """``<root>/<task>/<direction>/seed-<s>/q1-<n_pos>[/q2-<n_neg>]`` (Q1/Q2 as in the paper's
    released checkpoints: phase-1 and phase-2 example counts)."""
    path = Path(root) / task / direction / f"seed-{seed}" / f"q1-{q1}"
    return path if q2 is None else path / f"q2-{q2}"


def finetune_run(model, tok, examples, *, save_at: list[int], out: callable, params: dict,
                 lr: float, batch_size: int, seed: int, parent: str) -> None:
    """Fine-tune ``model`` on ``examples``, saving a model directory at every count in save_at."""
    from springback.train import finetune

    def save(m, n: int) -> None:
        models.save_model(m, out(n), provenance.record(params, seed=seed, examples=n,
                                                       parent=parent), tokenizer=tok)

    finetune(model, examples, save_at=save_at, save=save, batch_size=batch_size, lr=lr,
             seed=seed, pad_id=models.special_ids(tok)["pad"])


def align(*, base_dir: str | Path, task_dirs: dict[str, Path], directions: list[str],
          seeds: list[int], n_pos: list[int], lr: float, batch_size: int,
          outdir: str | Path, runtime: dict | None = None) -> None:
    """Phase 1: fine-tune the base on the first max(n_pos) examples, saving at every n_pos."""
    tok = load_tokenizer(base_dir)
    params = {"base": str(base_dir), "phase": 1, "lr": lr, "batch_size": batch_size}
    for task, direction, seed in runs(task_dirs, directions, seeds):
        first, _ = data.phase_files(task_dirs[task], direction)
        examples = ordered_examples(tok, first, seed=seed, phase=1, n=max(n_pos))
        log.info("align %s seed %d on %s: %d examples", direction, seed, first, len(examples))
        finetune_run(models.load_model(base_dir, **(runtime or {})), tok, examples, save_at=list(n_pos),
                     out=lambda n: run_dir(outdir, task, direction, seed, n),
                     params={**params, "direction": direction, "data": str(first)},
                     lr=lr, batch_size=batch_size, seed=seed, parent=str(base_dir))


def perturb(*, base_dir: str | Path, align_dir: str | Path, task_dirs: dict[str, Path],
            directions: list[str], seeds: list[int], n_pos: list[int], n_neg: list[int],
            lr: float, batch_size: int, outdir: str | Path, runtime: dict | None = None) -> None:
    """Phase 2: fine-tune each aligned model (and the base: n_pos = 0, the departure control) on
    the first max(n_neg) contrary examples, saving at every n_neg."""
    tok = load_tokenizer(base_dir)
    params = {"phase": 2, "lr": lr, "batch_size": batch_size}
    for task, direction, seed in runs(task_dirs, directions, seeds):
        _, second = data.phase_files(task_dirs[task], direction)
        examples = ordered_examples(tok, second, seed=seed, phase=2, n=max(n_neg))
        for q1 in [0, *n_pos]:
            parent = Path(base_dir) if q1 == 0 else run_dir(align_dir, task, direction, seed, q1)
            log.info("perturb %s %s seed %d q1 %d", task, direction, seed, q1)
            finetune_run(models.load_model(parent, **(runtime or {})), tok, examples, save_at=list(n_neg),
                         out=lambda n: run_dir(outdir, task, direction, seed, q1, n),
                         params={**params, "direction": direction, "data": str(second)},
                         lr=lr, batch_size=batch_size, seed=seed, parent=str(parent))
