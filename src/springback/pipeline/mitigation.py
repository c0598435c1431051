"""Stage `mitigation` (rules/mitigation.smk): the rebound protocol with the alignment phase
trained by a mitigation arm (springback.arms) and the perturbation - the attack - by plain SFT,
as in the rebound experiment. One job per base and pretraining seed runs every arm x task x
direction x fine-tuning seed through the run engine (``runs.run`` with the arm as its alignment
tuner); rows carry ``algo`` = the arm's label (``sft``, ``replay-0.125``, ...), so claims M1 and
M2 (springback.mitigation) pair each arm with plain SFT in the same bootstrap replicate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from springback import data, models, provenance, runs
from springback.adapters import Trainable
from springback.arms import arm_label, arm_tuner, contrary_pool
from springback.tokenizer import special_ids

log = logging.getLogger(__name__)

REPLAY_DOCS = 4096  # pretraining documents a replay arm cycles through (seed-ordered)


def replay_documents(tok, path: str | Path, *, seed: int, context: int) -> list[data.Example]:
    """Pretraining documents as (start symbol, document + EOS) examples, in the seed's order,
    truncated to ``context`` tokens: the replay arm's loss covers every document token."""
    texts = data.read_table(path, ["text"])["text"]
    order = np.random.default_rng([seed, 3]).permutation(len(texts))[:REPLAY_DOCS]
    ids = special_ids(tok)
    encoded = tok([texts.iloc[i] for i in order], add_special_tokens=False)["input_ids"]
    return [([ids["start"]], d[: context - 2] + [ids["eos"]]) for d in encoded]


def mitigation(*, base_dir: str | Path, files: Mapping[str, str | Path], tasks: list[str],
               arms: list[dict], directions: list[str], seeds: list[int], n_pos: list[int],
               n_neg: list[int], train: dict, context: int, eval_cfg: dict,
               out_metrics: str | Path, out_prompts: str | Path,
               runtime: dict | None = None) -> None:
    """Every arm's runs on the base checkpoint ``base_dir`` (``files``: the job's named inputs,
    as the rebound stage's, with the pretraining corpus ``pretrain`` for replay); ``train``: the
    rebound's lr, batch_size and loss, shared by every arm and the attack."""
    params = {"base": str(base_dir), "arms": arms, **train}
    tok, base, record = runs.prepare(
        base_dir=base_dir, files=files, tasks=tasks, pretrain_heldout=files["pretrain_heldout"],
        n_neg=n_neg, eval_cfg=eval_cfg, runtime=runtime, params=params)
    tables = {task: data.task_files(files, task) for task in tasks}
    attack = runs.SFT(tok, train)
    contrary, replay = {}, {}  # read and encoded once per run / seed, shared by every arm
    for task, direction, seed in runs.job_runs(tasks, directions, seeds):
        second = data.phase_files(tables[task], direction)[1]
        pool = data.ordered_examples(tok, second, seed=seed, phase=2,
                                     n=len(data.read_table(second, data.EXAMPLE_COLUMNS)))
        contrary[task, direction, seed] = contrary_pool(pool, max(n_neg))
    if any(arm["kind"] == "replay" for arm in arms):
        replay = {seed: replay_documents(tok, files["pretrain"], seed=seed, context=context)
                  for seed in seeds}
    for arm in arms:
        label = arm_label(arm)
        for task, direction, seed in runs.job_runs(tasks, directions, seeds):
            align = runs.SFT(tok, train, arm_tuner(
                arm, replay=replay.get(seed, ()) if arm["kind"] == "replay" else (),
                contrary=contrary[task, direction, seed]))
            runs.run(Trainable(base), record, attack, align=align, tables=tables[task],
                     n_pos=n_pos, n_neg=n_neg,
                     key={"algo": label, "task": task, "direction": direction, "seed": seed})
            log.info("%s %s %s seed %d done (%d checkpoints)", label, task, direction, seed,
                     len(record.rows))
    log.info(record.summary())
    keys = provenance.base_keys(models.read_provenance(base_dir))
    runs.write(record.metrics(keys, phase1_tokens=runs.phase1_tokens(tok, tables, record.rows),
                              lr=train["lr"]),
               record.prompts(), prov=provenance.record(params, base_checkpoint=keys),
               out_metrics=out_metrics, out_prompts=out_prompts)
