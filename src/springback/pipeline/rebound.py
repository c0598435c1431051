"""Stage `rebound` (rules/rebound.smk): the rebound run as the unit of work.

For one base checkpoint, every run (task x direction x fine-tuning seed) aligns on the first n_pos
examples of its phase-1 set (one constant-rate run, snapshotted in memory at every n_pos), then
perturbs each snapshot - and the base itself (n_pos = 0, the departure control) - on its phase-2
set, evaluating each checkpoint in memory the moment it is reached. Writing a checkpoint to disk
is a choice (``keep``), not how metrics are computed; one process pays the imports once.

Two paths compute the same rows in the same order: run after run (``rebound_run``), or every run
of the job at once as one batched ensemble (``rebound_ensemble``, springback.ensemble; toy
Llama bases in float32 on the job's device, ~1.6x the runs per second at 1 CPU thread). They differ by float rounding only
(weights ~1e-6 relative; tests/test_ensemble.py).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from springback import data, models, provenance
from springback.evaluate import EvalSet, evaluate_checkpoint, set_base, text_codes
from springback.models import load_tokenizer
from springback.pipeline.evaluation import base_keys, eval_set

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


def mean_tokens(tok, path: Path) -> float:
    """Mean tokens per example of a task file (start symbol, prompt, completion, EOS)."""
    frame = data.read_table(path, data.EXAMPLE_COLUMNS)
    return float(np.mean([len(p) + len(c) for p, c in encode_examples(tok, frame)]))


def runs(tasks, directions: list[str], seeds: list[int]):
    """Every (task, direction, seed) of a job, in a fixed order."""
    return [(t, d, s) for t in tasks for d in directions for s in seeds]


def run_dir(root: str | Path, task: str, direction: str, seed: int, q1: int, q2: int) -> Path:
    """``<root>/<task>/<direction>/seed-<s>/q1-<n_pos>/q2-<n_neg>`` (Q1/Q2 as in the paper's
    released checkpoints: phase-1 and phase-2 example counts)."""
    return Path(root) / task / direction / f"seed-{seed}" / f"q1-{q1}" / f"q2-{q2}"


def kept(keep: str | list[int], n_neg: int) -> bool:
    """Whether a checkpoint at ``n_neg`` is written to disk: none, the whole grid, or a list."""
    return keep == "grid" or (isinstance(keep, list) and n_neg in keep)


def snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def document_frame(key: dict, bits: dict[str, np.ndarray], ev: EvalSet) -> pd.DataFrame:
    """One row per held-out document of every text set of a checkpoint: its code length in bits
    (float32) and its bytes (UTF-8 + 1 newline; springback.compress)."""
    return pd.concat([pd.DataFrame({
        **key, "set": name, "document": np.arange(len(b), dtype=np.int32),
        "bits": b.astype(np.float32), "bytes": np.asarray(ev.texts[name].document_bytes, np.int32)})
        for name, b in bits.items()], ignore_index=True)


class Recorder:
    """Evaluates each checkpoint it is handed and collects checkpoint, per-prompt and (at text
    checkpoints) per-document rows."""

    def __init__(self, tok, sets: dict, *, eval_cfg: dict, text_at: set[int], keep, out_models,
                 params: dict):
        self.tok, self.sets, self.eval_cfg, self.text_at = tok, sets, eval_cfg, text_at
        self.keep, self.out_models, self.params = keep, out_models, params
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
        if kept(self.keep, key["n_neg"]):
            path = run_dir(self.out_models, key["task"], key["direction"], key["seed"],
                           key["n_pos"], key["n_neg"])
            models.save_model(model, path, provenance.record(self.params, **key),
                              tokenizer=self.tok)


def tuner(trainer: str, tok, *, checkpointing: bool = False):
    """The fine-tuning function of a job: the plain loop (``train.finetune``: CPU, toy sizes) or
    TRL's SFTTrainer (``algorithms.finetune_trl``: GPU, mixed precision, checkpointing)."""
    if trainer == "plain":
        from springback.train import finetune

        return finetune
    if trainer != "trl":
        raise ValueError(f"rebound.trainer {trainer!r} is not one of plain, trl")
    from springback.algorithms import finetune_trl

    return functools.partial(finetune_trl, tokenizer=tok, checkpointing=checkpointing)


def rebound_run(trainable, tok, record: Recorder, *, task: str, task_dir: Path, direction: str,
                seed: int, n_pos: list[int], n_neg: list[int], train: dict, tune=None) -> None:
    """Align (snapshots at every n_pos), then perturb every snapshot and the base, evaluating
    every n_neg checkpoint through ``record``. ``trainable`` (springback.adapters.Trainable)
    holds the model: every weight, or a LoRA adapter on the resident base; ``tune`` is the
    fine-tuning function (default: the plain loop)."""
    if tune is None:
        from springback.train import finetune as tune

    pad = models.special_ids(tok)["pad"]
    first, second = data.phase_files(task_dir, direction)
    pos = ordered_examples(tok, first, seed=seed, phase=1, n=max(n_pos))
    neg = ordered_examples(tok, second, seed=seed, phase=2, n=max(n_neg))
    model = trainable.fresh(seed)
    snapshots = {0: trainable.snapshot()}
    tune(model, pos, save_at=n_pos, seed=seed, pad_id=pad, **train,
         save=lambda m, n: snapshots.__setitem__(n, trainable.snapshot()))
    for q1 in [0, *n_pos]:
        trainable.restore(snapshots.pop(q1))
        key = {"task": task, "direction": direction, "seed": seed, "n_pos": q1}
        tune(model, neg, save_at=n_neg, seed=seed, pad_id=pad, **train,
             save=lambda m, n: record(m, {**key, "n_neg": n}))


def ensemble_unsupported(base) -> str | None:
    """Why ``base`` cannot train in a batched ensemble (None: it can): the ensemble reproduces
    tied, bias-free, dropout-free Llama in float32, on the base's device (CPU or CUDA)."""
    from springback.ensemble import check_config

    if getattr(base.config, "model_type", None) != "llama":
        return f"model type {getattr(base.config, 'model_type', None)!r} is not llama"
    if base.dtype != torch.float32:
        return f"{base.dtype}, not float32"
    try:
        check_config(base.config)
    except (ValueError, AttributeError, KeyError, TypeError) as err:
        return str(err)
    return None


def rebound_ensemble(base, tok, record: Recorder, *, job_runs: list[tuple[str, str, int]],
                     task_dirs: dict[str, Path], n_pos: list[int], n_neg: list[int],
                     train: dict) -> None:
    """``rebound_run`` for every run of ``job_runs`` at once: one ensemble member per run aligns
    on its own phase-1 examples (the whole ensemble snapshotted at every n_pos), then from each
    snapshot - and from the base - every member perturbs on its own phase-2 examples; each
    member's checkpoint at every n_neg is copied into one reusable HF model and handed to
    ``record``. Rows reach ``record`` in ``rebound_run``'s order (run by run)."""
    from springback.ensemble import Ensemble, finetune_ensemble

    pad = models.special_ids(tok)["pad"]
    pos, neg = [], []
    for task, direction, seed in job_runs:
        first, second = data.phase_files(task_dirs[task], direction)
        pos.append(ordered_examples(tok, first, seed=seed, phase=1, n=max(n_pos)))
        neg.append(ordered_examples(tok, second, seed=seed, phase=2, n=max(n_neg)))
    ens = Ensemble.from_models([base] * len(job_runs))
    stack = lambda: [p.detach().clone() for p in ens.stack]  # noqa: E731 (every member)
    snapshots = {0: stack()}

    def keep_snapshot(_, i: int, n: int) -> None:
        if i == 0:  # one call per member; the first takes the whole stack
            snapshots[n] = stack()

    # The seed only seeds torch (as finetune does); the ensemble's training draws no random
    # numbers (dropout-free), so one seed serves every member. Data order is per member.
    seed = job_runs[0][2]
    finetune_ensemble(ens, pos, save_at=n_pos, save=keep_snapshot, seed=seed, pad_id=pad, **train)
    view = copy.deepcopy(base).eval()  # every member is evaluated through this HF model
    recorders = [record.fresh() for _ in job_runs]
    for q1 in [0, *n_pos]:
        with torch.no_grad():
            for p, saved in zip(ens.stack, snapshots.pop(q1)):
                p.copy_(saved)

        def evaluate(e, i: int, n: int) -> None:
            task, direction, run_seed = job_runs[i]
            e.load_into(i, view)
            recorders[i](view, {"task": task, "direction": direction, "seed": run_seed,
                                "n_pos": q1, "n_neg": n})

        finetune_ensemble(ens, neg, save_at=n_neg, save=evaluate, seed=seed, pad_id=pad, **train)
        log.info("ensemble of %d runs: n_pos %d perturbed", len(job_runs), q1)
    for r in recorders:
        record.extend(r)


def rebound(*, base_dir: str | Path, task_dirs: dict[str, Path], pretrain_heldout: str | Path,
            directions: list[str], seeds: list[int], n_pos: list[int], n_neg: list[int],
            train: dict, eval_cfg: dict, keep, out_metrics: str | Path, out_prompts: str | Path,
            out_models: str | Path, out_documents: str | Path | None = None,
            judges: dict | None = None, judge_dirs: dict | None = None,
            runtime: dict | None = None, ensemble: bool = False, adapter: dict | None = None,
            trainer: str = "plain", checkpointing: bool = False) -> None:
    """Every rebound run of one base; writes checkpoint rows, per-prompt rows, per-document rows
    of the text checkpoints (``out_documents``; None: not written) and kept models.
    ``train`` holds lr, batch_size and loss; ``eval_cfg["text_at"]`` the n_neg points that also
    get bits/byte and KL (None: all). ``ensemble``: run every run of the job at once as one
    batched ensemble (falls back to run after run, with a log line, for a base it cannot hold).
    ``adapter``: train every weight (``{kind: full}``, default) or a LoRA adapter on the frozen
    base (kept checkpoints are then adapter folders); ``trainer``: plain loop or TRL."""
    from springback.adapters import Trainable, check_spec

    adapter = check_spec(adapter)
    params = {"base": str(base_dir), **train, "adapter": adapter, "trainer": trainer}
    tok, base, record = prepare(base_dir=base_dir, task_dirs=task_dirs,
                                pretrain_heldout=pretrain_heldout, n_neg=n_neg, eval_cfg=eval_cfg,
                                keep=keep, out_models=out_models, params=params, judges=judges,
                                judge_dirs=judge_dirs, runtime=runtime)
    job_runs = runs(task_dirs, directions, seeds)
    why_not = ensemble_unsupported(base) if ensemble else None
    if ensemble and adapter["kind"] != "full":
        why_not = "LoRA adapters train run after run"
    if why_not:
        log.info("ensemble off, running run after run: %s", why_not)
    if ensemble and not why_not:
        rebound_ensemble(base, tok, record, job_runs=job_runs, task_dirs=task_dirs, n_pos=n_pos,
                         n_neg=n_neg, train=train)
        log.info("ensemble of %d runs done (%d checkpoints)", len(job_runs), len(record.rows))
    else:
        trainable = Trainable(base, adapter)
        if trainable.lora:  # the adapter wraps the base in place: KL reads it with the adapter off
            for ev in record.sets.values():
                ev.base = trainable.model
        tune = tuner(trainer, tok, checkpointing=checkpointing)
        log.info("training %s: %d trainable parameters, %s trainer", adapter["kind"],
                 trainable.trainable_params(), trainer)
        for i, (task, direction, seed) in enumerate(job_runs):
            rebound_run(trainable, tok, record, task=task, task_dir=task_dirs[task],
                        direction=direction, seed=seed, n_pos=n_pos, n_neg=n_neg, train=train,
                        tune=tune)
            log.info("run %d/%d done: %s %s seed %d (%d checkpoints so far)", i + 1,
                     len(job_runs), task, direction, seed, len(record.rows))
    log.info(record.summary())
    write(record, tok, base_dir=base_dir, task_dirs=task_dirs, directions=directions,
          params=params, out_metrics=out_metrics, out_prompts=out_prompts,
          out_documents=out_documents)


def text_points(n_neg: list[int], text_at: list[int] | None) -> set[int]:
    """The n_neg points whose checkpoints also get bits/byte and KL: every one (None), or the
    first, the last and those listed."""
    return set(n_neg) if text_at is None else {0, max(n_neg), *text_at}


def prepare(*, base_dir, task_dirs: dict[str, Path], pretrain_heldout, n_neg: list[int],
            eval_cfg: dict, keep, out_models, params: dict, judges: dict | None = None,
            judge_dirs: dict | None = None, runtime: dict | None = None):
    """(tokenizer, base model, Recorder) of a job: the evaluation sets of every task, prepared
    once, with the base as the reference of KL."""
    runtime = runtime or {}
    tok = load_tokenizer(base_dir)
    base = models.load_model(base_dir, **runtime)
    sets = {}
    for task, task_dir in task_dirs.items():
        sets[task] = eval_set(tok, task=task, task_dir=task_dir, pretrain_heldout=pretrain_heldout,
                              context=eval_cfg["context"], eval_cfg=eval_cfg,
                              judge_spec=(judges or {}).get(task),
                              judge_dir=(judge_dirs or {}).get(task),
                              device=runtime.get("device", "cpu"))
        set_base(base, sets[task])
    text_at = text_points(n_neg, eval_cfg.get("text_at"))
    record = Recorder(tok, sets, eval_cfg=eval_cfg, text_at=text_at, keep=keep,
                      out_models=out_models, params=params)
    Path(out_models).mkdir(parents=True, exist_ok=True)
    return tok, base, record


def write(record: Recorder, tok, *, base_dir, task_dirs: dict[str, Path], directions: list[str],
          params: dict, out_metrics, out_prompts, out_documents=None) -> None:
    """metrics.csv (with the base's keys, the phase-1 tokens per example and the learning
    rate), its provenance, prompts.parquet and, where ``out_documents`` names it,
    documents.parquet of a job (one row per text checkpoint x held-out set x document: the rows'
    bits sum to metrics.csv's bits_*)."""
    keys = base_keys(models.read_provenance(base_dir))
    frame = pd.DataFrame(record.rows)
    for i, (k, v) in enumerate(keys.items()):
        frame.insert(i, k, v)
    # mean tokens per phase-1 example (with BOS and EOS): |D_a| in tokens for the theorem's k
    tokens = {(t, d): mean_tokens(tok, data.phase_files(task_dirs[t], d)[0])
              for t in task_dirs for d in directions}
    frame["phase1_tokens"] = [tokens[t, d] for t, d in zip(frame["task"], frame["direction"])]
    frame["lr"] = params["lr"]  # the job's learning rate (rebound.lr or rebound.control_lr)
    frame.to_csv(out_metrics, index=False)
    Path(f"{out_metrics}.provenance.json").write_text(json.dumps(
        provenance.record(params, base_checkpoint=keys), indent=1))
    pd.concat(record.prompt_rows).to_parquet(out_prompts, index=False)
    if out_documents is not None:
        pd.concat(record.document_rows, ignore_index=True).to_parquet(out_documents, index=False)


