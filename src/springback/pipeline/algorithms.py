"""Stage `algorithms` (rules/algorithms.smk): the rebound protocol with both phases trained by
another algorithm (claim C6; paper Fig. 7): DPO, KTO, SimPO (TRL) or GRPO rewarded by the task's
exact judge (``springback.algorithms``). One job per base and pretraining seed runs every
algorithm x task x direction x fine-tuning seed: phase 1 snapshotted in memory at every n_pos,
then each snapshot and the base itself perturbed, every n_neg checkpoint evaluated as it is
reached, exactly as the SFT rebound job (rows carry ``algo``). The x-axis of a preference or RL
phase is examples seen: pairs for DPO / SimPO / KTO, prompts (episode groups) for GRPO.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from springback import data
from springback.pipeline.rebound import prepare, snapshot, write

log = logging.getLogger(__name__)


def ordered_frame(path: Path, *, seed: int, phase: int, n: int) -> pd.DataFrame:
    """The first n rows of a task file in the seed's phase order (as ``ordered_examples``)."""
    frame = data.read_table(path, data.EXAMPLE_COLUMNS)
    if n > len(frame):
        raise ValueError(f"dataset file {path} has {len(frame)} examples, the study needs {n}")
    return frame.iloc[np.random.default_rng([seed, phase]).permutation(len(frame))[:n]]


def algorithm_run(base, tok, record, *, algo: str, task: str, task_dir: Path, direction: str,
                  seed: int, n_pos: list[int], n_neg: list[int], batch_size: int, lr: float,
                  options: dict) -> None:
    """One rebound run with both phases by ``algo``; the forward direction trains toward the
    target behaviour first (the GRPO reward follows the phase's side)."""
    from springback.algorithms import train_phase

    first, second = data.phase_files(task_dir, direction)
    phases = [(ordered_frame(first, seed=seed, phase=1, n=max(n_pos)),
               data.read_table(second, data.EXAMPLE_COLUMNS), direction == "forward"),
              (ordered_frame(second, seed=seed, phase=2, n=max(n_neg)),
               data.read_table(first, data.EXAMPLE_COLUMNS), direction != "forward")]
    common = dict(task=task, batch_size=batch_size, seed=seed, lr=lr, options=options)
    snapshots = {0: snapshot(base)}
    model = copy.deepcopy(base)
    frame, other, toward = phases[0]
    train_phase(model, tok, algo, frame, other, toward_target=toward, save_at=n_pos, **common,
                save=lambda m, n: snapshots.__setitem__(n, snapshot(m)))
    frame, other, toward = phases[1]
    for q1 in [0, *n_pos]:
        model.load_state_dict(snapshots.pop(q1))
        key = {"algo": algo, "task": task, "direction": direction, "seed": seed, "n_pos": q1}
        train_phase(model, tok, algo, frame, other, toward_target=toward, save_at=n_neg,
                    **common, save=lambda m, n: record(m, {**key, "n_neg": n}))


def algorithms(*, base_dir, task_dirs: dict[str, Path], pretrain_heldout, algorithms: list[str],
               directions: list[str], seeds: list[int], n_pos: list[int], n_neg: list[int],
               batch_size: int, lr: dict, options: dict, eval_cfg: dict, out_metrics,
               out_prompts, runtime: dict | None = None) -> None:
    """Every algorithm run of one base; the rebound job's outputs, with an ``algo`` column."""
    params = {"base": str(base_dir), "algorithms": algorithms, "batch_size": batch_size,
              "lr": lr, "options": options}
    tok, base, record = prepare(base_dir=base_dir, task_dirs=task_dirs,
                                pretrain_heldout=pretrain_heldout, n_neg=n_neg, eval_cfg=eval_cfg,
                                keep="none", out_models=Path(out_metrics).parent / "models",
                                params=params, runtime=runtime)
    for algo in algorithms:
        for task, task_dir in task_dirs.items():
            for direction in directions:
                for seed in seeds:
                    algorithm_run(base, tok, record, algo=algo, task=task, task_dir=task_dir,
                                  direction=direction, seed=seed, n_pos=n_pos, n_neg=n_neg,
                                  batch_size=batch_size, lr=lr.get(algo), options=options.get(algo, {}))
                    log.info("%s %s %s seed %d done (%d checkpoints)", algo, task, direction,
                             seed, len(record.rows))
    log.info(record.summary())
    write(record, tok, base_dir=base_dir, task_dirs=task_dirs, directions=directions,
          params=params, out_metrics=out_metrics, out_prompts=out_prompts)
