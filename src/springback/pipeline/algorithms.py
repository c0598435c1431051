"""Stage `algorithms` (rules/algorithms.smk): the rebound protocol with both phases trained by
another algorithm (claim C6; paper Fig. 7): DPO, KTO, SimPO (TRL) or GRPO rewarded by the task's
exact judge. An algorithm run is a rebound run (springback.runs.run) whose tuner is
``springback.algorithms.Algorithm``. One job per base and pretraining seed runs every
algorithm x task x direction x fine-tuning seed (rows carry ``algo``). The x-axis of a preference
or RL phase is examples seen: pairs for DPO / SimPO / KTO, prompts (episode groups) for GRPO.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from springback import data, models, provenance, runs
from springback.adapters import Trainable
from springback.algorithms import Algorithm

log = logging.getLogger(__name__)


def algorithms(*, base_dir: str | Path, files: Mapping[str, str | Path], tasks: list[str],
               algorithms: list[str], directions: list[str], seeds: list[int], n_pos: list[int],
               n_neg: list[int], batch_size: int, lr: dict, options: dict, eval_cfg: dict,
               out_metrics: str | Path, out_prompts: str | Path,
               runtime: dict | None = None) -> None:
    """Every algorithm run of the base checkpoint ``base_dir`` (``files``: the job's named
    inputs, as the rebound stage's); the rebound job's metrics and prompts, with an ``algo``
    column. ``lr`` and ``options`` are per algorithm."""
    params = {"base": str(base_dir), "algorithms": algorithms, "batch_size": batch_size,
              "lr": lr, "options": options}
    tok, base, record = runs.prepare(
        base_dir=base_dir, files=files, tasks=tasks, pretrain_heldout=files["pretrain_heldout"],
        n_neg=n_neg, eval_cfg=eval_cfg, runtime=runtime, params=params)
    tables = {task: data.task_files(files, task) for task in tasks}
    for algo in algorithms:
        for task in tasks:
            tune = Algorithm(tok, algo, task=task, batch_size=batch_size, lr=lr.get(algo),
                             options=options.get(algo, {}))
            for direction, seed in ((d, s) for d in directions for s in seeds):
                # each run trains its own copy of the base: nothing a TRL trainer leaves on the
                # model object it trained reaches the next run
                runs.run(Trainable(base), record, tune, tables=tables[task], n_pos=n_pos,
                         n_neg=n_neg, key={"algo": algo, "task": task, "direction": direction,
                                           "seed": seed})
                log.info("%s %s %s seed %d done (%d checkpoints)", algo, task, direction, seed,
                         len(record.rows))
    log.info(record.summary())
    keys = provenance.base_keys(models.read_provenance(base_dir))
    # lr is the per-algorithm dict: pandas aligns a dict on the row index, so the column stays
    # empty (kept as it was, for identical tables; the rate of a row is lr[algo])
    runs.write(record.metrics(keys, phase1_tokens=runs.phase1_tokens(tok, tables, record.rows),
                              lr=lr),
               record.prompts(), prov=provenance.record(params, base_checkpoint=keys),
               out_metrics=out_metrics, out_prompts=out_prompts)
