"""The run engine: what every stage that fine-tunes and evaluates a model shares.

A *run* (``run``) aligns a model on the first n_pos examples of its phase-1 set (one
constant-rate pass, snapshotted in memory at every n_pos), then perturbs each snapshot - and the
base itself (n_pos = 0, the departure control) - on its phase-2 set, handing every n_neg
checkpoint to a ``Recorder`` the moment it is reached. Writing a checkpoint to disk is a choice
(``keep``), not how metrics are computed; one process pays the imports once.

What trains is a *tuner*: ``SFT`` (the plain loop or TRL's SFTTrainer, chosen by ``tuner``) or
``springback.algorithms.Algorithm`` (DPO, KTO, SimPO, GRPO). A tuner reads a run's two phases
from its task's tables (``phases``) and trains one phase in place (``__call__``), so a rebound
run and an algorithm run are the same loop with another tuner. ``run_ensemble`` runs every run of
a job at once as one batched ensemble (springback.ensemble: toy Llama bases in float32, ~1.6x
the runs per second at 1 CPU thread); it hands the same rows to the recorder in the same order
as run after run, up to float rounding (weights ~1e-6 relative; tests/test_ensemble.py).

A job ``prepare``s its tokenizer, base and evaluation sets once, runs, and ``write``s
metrics.csv (with its provenance), prompts.parquet and, where asked, documents.parquet.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from springback import data, models, provenance
from springback.algorithms import finetune_trl
from springback.ensemble import Ensemble, finetune_ensemble
from springback.evaluate import EvalSet, eval_set, evaluate_checkpoint, set_base, text_codes
from springback.tokenizer import special_ids
from springback.train import finetune

log = logging.getLogger(__name__)

TRAINERS = ("plain", "trl")


def job_runs(tasks, directions: list[str], seeds: list[int]) -> list[tuple[str, str, int]]:
    """Every (task, direction, seed) of a job, in a fixed order."""
    return [(t, d, s) for t in tasks for d in directions for s in seeds]


def run_dir(root: str | Path, task: str, direction: str, seed: int, q1: int, q2: int) -> Path:
    """``<root>/<task>/<direction>/seed-<s>/q1-<n_pos>/q2-<n_neg>`` (Q1/Q2 as in the paper's
    released checkpoints: phase-1 and phase-2 example counts)."""
    return Path(root) / task / direction / f"seed-{seed}" / f"q1-{q1}" / f"q2-{q2}"


def kept(keep: str | list[int], n_neg: int) -> bool:
    """Whether a checkpoint at ``n_neg`` is written to disk: none, the whole grid, or a list."""
    return keep == "grid" or (isinstance(keep, list) and n_neg in keep)


def text_points(n_neg: list[int], text_at: list[int] | None) -> set[int]:
    """The n_neg points whose checkpoints also get bits/byte and KL: every one (None), or the
    first, the last and those listed."""
    return set(n_neg) if text_at is None else {0, max(n_neg), *text_at}


def document_frame(key: dict, bits: dict[str, np.ndarray], ev: EvalSet) -> pd.DataFrame:
    """One row per held-out document of every text set of a checkpoint: its code length in bits
    (float32) and its bytes (UTF-8 + 1 newline; springback.compress)."""
    return pd.concat([pd.DataFrame({
        **key, "set": name, "document": np.arange(len(b), dtype=np.int32),
        "bits": b.astype(np.float32), "bytes": np.asarray(ev.texts[name].document_bytes, np.int32)})
        for name, b in bits.items()], ignore_index=True)


class Recorder:
    """Evaluates each checkpoint it is handed and collects checkpoint, per-prompt and (at text
    checkpoints) per-document rows; a checkpoint that ``keep`` names is also saved under
    ``out_models`` (None: nothing is kept)."""

    def __init__(self, tok, sets: dict[str, EvalSet], *, eval_cfg: dict, text_at: set[int],
                 keep="none", out_models: str | Path | None = None, params: dict | None = None):
        self.tok, self.sets, self.eval_cfg, self.text_at = tok, sets, eval_cfg, text_at
        self.keep, self.out_models, self.params = keep, out_models, params or {}
        self.rows, self.prompt_rows, self.document_rows = [], [], []
        self.seconds, self.n_text = 0.0, 0  # evaluation time and checkpoints with text metrics
        self.text_seconds = 0.0  # the part of ``seconds`` spent on text metrics

    def fresh(self) -> "Recorder":
        """A recorder of the same settings with no rows yet."""
        return Recorder(self.tok, self.sets, eval_cfg=self.eval_cfg, text_at=self.text_at,
                        keep=self.keep, out_models=self.out_models, params=self.params)

    def extend(self, other: "Recorder") -> None:
        """Append another recorder's rows after this one's."""
        self.rows += other.rows
        self.prompt_rows += other.prompt_rows
        self.document_rows += other.document_rows
        self.seconds, self.n_text = self.seconds + other.seconds, self.n_text + other.n_text
        self.text_seconds += other.text_seconds

    def summary(self) -> str:
        """Evaluation cost so far, for the job's log."""
        n = max(len(self.rows), 1)
        return (f"evaluation: {len(self.rows)} checkpoints ({self.n_text} with text metrics) in "
                f"{self.seconds:.1f} s, {self.seconds / n:.3f} s per checkpoint; text metrics "
                f"{self.text_seconds:.1f} s")

    def __call__(self, model, key: dict) -> None:
        ev, text, start = self.sets[key["task"]], key["n_neg"] in self.text_at, time.perf_counter()
        metrics, per_prompt = evaluate_checkpoint(
            model, self.tok, ev, seed=key["seed"], text=False, sample=self.eval_cfg["sample"])
        if text:  # evaluate_checkpoint's text metrics, with each document's code length
            text_start = time.perf_counter()
            codes, bits = text_codes(model, ev)
            metrics |= codes
            self.document_rows.append(document_frame(key, bits, ev))
            self.text_seconds += time.perf_counter() - text_start
        self.seconds += time.perf_counter() - start
        self.n_text += text
        self.rows.append({**key, **metrics})
        self.prompt_rows.append(pd.DataFrame({
            **key, "prompt": np.arange(len(ev.prompt_ids)), "context": ev.contexts,
            "clean": ev.clean, **per_prompt}))
        if self.out_models is not None and kept(self.keep, key["n_neg"]):
            path = run_dir(self.out_models, key["task"], key["direction"], key["seed"],
                           key["n_pos"], key["n_neg"])
            models.save_model(model, path, provenance.record(self.params, **key),
                              tokenizer=self.tok)

    def metrics(self, lead: dict | None = None, **tail) -> pd.DataFrame:
        """The checkpoint rows: after the ``lead`` columns (one value each, first), before the
        ``tail`` columns (a value, or one per row)."""
        frame = pd.DataFrame(self.rows)
        for i, (k, v) in enumerate((lead or {}).items()):
            frame.insert(i, k, v)
        for k, v in tail.items():
            frame[k] = v
        return frame

    def prompts(self, lead: dict | None = None) -> pd.DataFrame:
        """The per-prompt rows of every checkpoint, after the ``lead`` columns."""
        frame = pd.concat(self.prompt_rows, ignore_index=True)
        for i, (k, v) in enumerate((lead or {}).items()):
            frame.insert(i, k, v)
        return frame

    def documents(self) -> pd.DataFrame:
        """The per-document rows of every text checkpoint (their bits sum to the checkpoint
        rows' bits_*)."""
        return pd.concat(self.document_rows, ignore_index=True)


class SFT:
    """Supervised fine-tuning on a run's (prompt, completion) examples, at a constant rate
    (``train``: lr, batch_size, loss): the plain loop (``train.finetune``: CPU, toy sizes) or
    TRL's SFTTrainer (``algorithms.finetune_trl``: GPU, mixed precision, checkpointing)."""

    def __init__(self, tok, train: dict, fit: Callable = finetune):
        self.tok, self.train, self.fit = tok, train, fit
        self.pad = special_ids(tok)["pad"]

    def phases(self, tables: Mapping[str, Path], direction: str, *, seed: int, n_pos: int,
               n_neg: int) -> tuple[list[data.Example], list[data.Example]]:
        """The first n_pos examples of phase 1 and the first n_neg of phase 2, in the seed's
        order of each phase."""
        first, second = data.phase_files(tables, direction)
        return (data.ordered_examples(self.tok, first, seed=seed, phase=1, n=n_pos),
                data.ordered_examples(self.tok, second, seed=seed, phase=2, n=n_neg))

    def __call__(self, model, examples: list[data.Example], *, seed: int, save_at: list[int],
                 save) -> None:
        self.fit(model, examples, save_at=save_at, save=save, seed=seed, pad_id=self.pad,
                 **self.train)


def tuner(trainer: str, tok, train: dict, *, checkpointing: bool = False) -> SFT:
    """The fine-tuning of a job (rebound.trainer): the plain loop, or TRL's SFTTrainer."""
    if trainer not in TRAINERS:
        raise ValueError(f"rebound.trainer {trainer!r} is not one of {', '.join(TRAINERS)}")
    if trainer == "plain":
        return SFT(tok, train)
    return SFT(tok, train, functools.partial(finetune_trl, tokenizer=tok,
                                             checkpointing=checkpointing))


def run(trainable, record: Recorder, tune, *, key: dict, tables: Mapping[str, Path],
        n_pos: list[int], n_neg: list[int], align=None) -> None:
    """One run: align (snapshots at every n_pos), then perturb every snapshot and the base,
    handing every n_neg checkpoint to ``record`` under ``key`` (task, direction, seed and any
    key of the stage's own, e.g. algo) with its n_pos and n_neg. ``trainable``
    (springback.adapters.Trainable) holds the model: every weight, or a LoRA adapter on the
    resident base; ``tune`` trains a phase (``SFT``, ``algorithms.Algorithm``), ``align`` (default
    ``tune``) the alignment phase alone (a mitigation arm, springback.arms)."""
    seed = key["seed"]
    first, second = tune.phases(tables, key["direction"], seed=seed, n_pos=max(n_pos),
                                n_neg=max(n_neg))
    model = trainable.fresh(seed)
    snapshots = {0: trainable.snapshot()}
    (align or tune)(model, first, seed=seed, save_at=n_pos,
                    save=lambda m, n: snapshots.__setitem__(n, trainable.snapshot()))
    for q1 in [0, *n_pos]:
        trainable.restore(snapshots.pop(q1))
        tune(model, second, seed=seed, save_at=n_neg,
             save=lambda m, n: record(m, {**key, "n_pos": q1, "n_neg": n}))


def run_ensemble(base, record: Recorder, tune: SFT, *, runs: list[tuple[str, str, int]],
                 tables: Mapping[str, Mapping[str, Path]], n_pos: list[int],
                 n_neg: list[int]) -> None:
    """``run`` for every run of ``runs`` at once (``tables`` by task): one ensemble member per
    run aligns on its own phase-1 examples (the whole ensemble snapshotted at every n_pos), then
    from each snapshot - and from the base - every member perturbs on its own phase-2 examples;
    each member's checkpoint at every n_neg is copied into one reusable HF model and handed to
    ``record``. Rows reach ``record`` in ``run``'s order (run by run)."""
    phases = [tune.phases(tables[task], direction, seed=seed, n_pos=max(n_pos), n_neg=max(n_neg))
              for task, direction, seed in runs]
    pos, neg = [p for p, _ in phases], [n for _, n in phases]
    ens = Ensemble.from_models([base] * len(runs))
    stack = lambda: [p.detach().clone() for p in ens.stack]  # noqa: E731 (every member)
    snapshots = {0: stack()}

    def keep_snapshot(_, i: int, n: int) -> None:
        if i == 0:  # one call per member; the first takes the whole stack
            snapshots[n] = stack()

    # The seed only seeds torch (as finetune does); the ensemble's training draws no random
    # numbers (dropout-free), so one seed serves every member. Data order is per member.
    seed, train = runs[0][2], {**tune.train, "pad_id": tune.pad}
    finetune_ensemble(ens, pos, save_at=n_pos, save=keep_snapshot, seed=seed, **train)
    view = copy.deepcopy(base).eval()  # every member is evaluated through this HF model
    recorders = [record.fresh() for _ in runs]
    for q1 in [0, *n_pos]:
        with torch.no_grad():
            for p, saved in zip(ens.stack, snapshots.pop(q1)):
                p.copy_(saved)

        def evaluate(e, i: int, n: int) -> None:
            task, direction, run_seed = runs[i]
            e.load_into(i, view)
            recorders[i](view, {"task": task, "direction": direction, "seed": run_seed,
                                "n_pos": q1, "n_neg": n})

        finetune_ensemble(ens, neg, save_at=n_neg, save=evaluate, seed=seed, **train)
        log.info("ensemble of %d runs: n_pos %d perturbed", len(runs), q1)
    for r in recorders:
        record.extend(r)


def prepare(*, base_dir: str | Path, files: Mapping[str, str | Path], tasks, pretrain_heldout,
            n_neg: list[int], eval_cfg: dict, judges: dict | None = None,
            runtime: dict | None = None, **recorder):
    """(tokenizer, base model, Recorder) of a job: the evaluation set of every task, prepared
    once from its tables among ``files`` (``<task>_<table>``; ``judge_<task>``: a fetched model
    judge), with the base as the reference of KL. ``recorder``: keep, out_models, params."""
    runtime = runtime or {}
    tok = models.load_tokenizer(base_dir)
    base = models.load_model(base_dir, **runtime)
    sets = {}
    for task in tasks:
        sets[task] = eval_set(tok, task=task, tables=data.task_files(files, task),
                              pretrain_heldout=pretrain_heldout, eval_cfg=eval_cfg,
                              judge_spec=(judges or {}).get(task),
                              judge_dir=files.get(f"judge_{task}"),
                              device=runtime.get("device", "cpu"))
        set_base(base, sets[task])
    if recorder.get("out_models") is not None:
        Path(recorder["out_models"]).mkdir(parents=True, exist_ok=True)
    record = Recorder(tok, sets, eval_cfg=eval_cfg, text_at=text_points(n_neg, eval_cfg["text_at"]),
                      **recorder)
    return tok, base, record


def phase1_tokens(tok, tables: Mapping[str, Mapping[str, Path]], rows: list[dict]) -> list[float]:
    """Per checkpoint row, the mean tokens of its run's phase-1 examples (with BOS and EOS):
    |D_a| in tokens for the theorem's k."""
    pairs = dict.fromkeys((r["task"], r["direction"]) for r in rows)
    tokens = {(t, d): data.mean_tokens(tok, data.phase_files(tables[t], d)[0]) for t, d in pairs}
    return [tokens[r["task"], r["direction"]] for r in rows]


def write(metrics: pd.DataFrame, prompts: pd.DataFrame, *, prov: dict, out_metrics: str | Path,
          out_prompts: str | Path, documents: pd.DataFrame | None = None,
          out_documents: str | Path | None = None) -> None:
    """A job's metrics.csv with its provenance (``<metrics>.provenance.json``), prompts.parquet
    and, where ``out_documents`` names it, documents.parquet (one row per text checkpoint x
    held-out set x document)."""
    metrics.to_csv(out_metrics, index=False)
    Path(f"{out_metrics}.provenance.json").write_text(json.dumps(prov, indent=1))
    prompts.to_parquet(out_prompts, index=False)
    if out_documents is not None:
        documents.to_parquet(out_documents, index=False)
