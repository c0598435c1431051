"""The stages of a study, one function per workflow rule (called by ``workflow/scripts/*.py``).

Each function takes explicit paths and settings, does one stage for one job and writes its
outputs atomically. Fine-tuning jobs loop over directions and seeds inside the job: every process
pays ~8 s of imports here, so the job, not the run, is the unit (shared/notes/stack.md).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from springback import data, models, provenance, world

log = logging.getLogger(__name__)


# --- world and tokenizer -----------------------------------------------------------------------

def build_world(world_cfg: dict, outdir: str | Path) -> None:
    """Generate the synthetic world's datasets as parquet files under ``outdir``."""
    tables = world.generate_world(world.WorldConfig(**world_cfg))
    for stem, columns in tables.items():
        data.write_table(columns, Path(outdir) / f"{stem}.parquet")
    log.info("world: %d tables, %d pretraining documents", len(tables), len(tables["pretrain"]["text"]))


def build_tokenizer(corpus: str | Path, outdir: str | Path) -> None:
    from springback.tokenizer import train_tokenizer

    texts = data.read_table(corpus, ("text",))["text"].tolist()
    tok = train_tokenizer(texts)
    tok.save_pretrained(str(outdir))
    log.info("tokenizer: %d words", len(tok))


def load_tokenizer(path: str | Path):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(path))


# --- pretraining -------------------------------------------------------------------------------

def pretrain_ladder(*, corpus: str | Path, tokenizer_dir: str | Path, size: str, arch: dict,
                    train_cfg: dict, tokens: int, outdirs: dict[int, str]) -> None:
    """Pretrain one model size from scratch, saving a checkpoint at each ladder budget."""
    from springback.train import pack_blocks, pretrain

    tok = load_tokenizer(tokenizer_dir)
    docs = tok(data.read_table(corpus, ("text",))["text"].tolist(),
               add_special_tokens=False)["input_ids"]
    blocks = pack_blocks(docs, context=train_cfg["context"], bos_id=tok.bos_token_id,
                         eos_id=tok.eos_token_id)
    model = models.build_llama(len(tok), **arch, context=train_cfg["context"],
                               seed=train_cfg["seed"], bos_id=tok.bos_token_id,
                               eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    params = {"arch": arch, "pretrain": train_cfg, "tokens": tokens}
    log.info("pretrain %s: %d parameters, %d corpus tokens, budget %d",
             size, models.n_params(model), blocks.numel(), tokens)

    def save(m, n_tokens: int) -> None:
        models.save_model(m, outdirs[n_tokens], provenance.record(
            params, size=size, tokens=n_tokens, seed=train_cfg["seed"],
            n_params=models.n_params(m), parent=None), tokenizer=tok)

    pretrain(model, blocks, tokens=tokens, save_at=sorted(outdirs), save=save,
             batch_size=train_cfg["batch_size"], lr=train_cfg["lr"], warmup=train_cfg["warmup"],
             weight_decay=train_cfg["weight_decay"], seed=train_cfg["seed"])


# --- alignment and perturbation ----------------------------------------------------------------

def encode_examples(tok, frame: pd.DataFrame) -> list[tuple[list[int], list[int]]]:
    """(BOS + prompt ids, completion ids + EOS) per row."""
    prompts = tok(frame["prompt"].tolist(), add_special_tokens=False)["input_ids"]
    completions = tok(frame["completion"].tolist(), add_special_tokens=False)["input_ids"]
    return [([tok.bos_token_id] + p, c + [tok.eos_token_id]) for p, c in zip(prompts, completions)]


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
    from springback.train import finetune

    def save(m, n: int) -> None:
        models.save_model(m, out(n), provenance.record(params, seed=seed, examples=n,
                                                       parent=parent), tokenizer=tok)

    finetune(model, examples, save_at=save_at, save=save, batch_size=batch_size, lr=lr,
             seed=seed, pad_id=tok.pad_token_id)


def align(*, base_dir: str | Path, task_dirs: dict[str, Path], directions: list[str],
          seeds: list[int], n_pos: list[int], lr: float, batch_size: int,
          outdir: str | Path) -> None:
    """Phase 1: fine-tune the base on the first max(n_pos) examples, saving at every n_pos."""
    tok = load_tokenizer(base_dir)
    params = {"base": str(base_dir), "phase": 1, "lr": lr, "batch_size": batch_size}
    for task, direction, seed in runs(task_dirs, directions, seeds):
        first, _ = data.phase_files(task_dirs[task], direction)
        examples = ordered_examples(tok, first, seed=seed, phase=1, n=max(n_pos))
        log.info("align %s seed %d on %s: %d examples", direction, seed, first, len(examples))
        finetune_run(models.load_model(base_dir), tok, examples, save_at=list(n_pos),
                     out=lambda n: run_dir(outdir, task, direction, seed, n),
                     params={**params, "direction": direction, "data": str(first)},
                     lr=lr, batch_size=batch_size, seed=seed, parent=str(base_dir))


def perturb(*, base_dir: str | Path, align_dir: str | Path, task_dirs: dict[str, Path],
            directions: list[str], seeds: list[int], n_pos: list[int], n_neg: list[int],
            lr: float, batch_size: int, outdir: str | Path) -> None:
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
            finetune_run(models.load_model(parent), tok, examples, save_at=list(n_neg),
                         out=lambda n: run_dir(outdir, task, direction, seed, q1, n),
                         params={**params, "direction": direction, "data": str(second)},
                         lr=lr, batch_size=batch_size, seed=seed, parent=str(parent))


# --- evaluation --------------------------------------------------------------------------------

def eval_set(tok, *, task: str, task_dir: str | Path, pretrain_heldout: str | Path, context: int,
             eval_cfg: dict):
    """Prepare prompts, judge and held-out text sets of a task (once per job)."""
    from springback.evaluate import EvalSet, text_set
    from springback.judge import exact_judge

    task_dir = Path(task_dir)
    spec = world.TASK_SPEC[task]
    prompts = data.read_table(task_dir / "prompts.parquet", data.PROMPT_COLUMNS)
    held = {name: data.read_table(task_dir / f"{name}_heldout.parquet", data.EXAMPLE_COLUMNS)
            for name in ("align", "perturb")}
    texts = {name: (frame["prompt"] + " " + frame["completion"]).tolist()
             for name, frame in held.items()}
    texts["pretrain"] = data.read_table(pretrain_heldout, ("text",))["text"].tolist()
    ids = tok(prompts["prompt"].tolist(), add_special_tokens=False)["input_ids"]
    return EvalSet(
        prompt_ids=[[tok.bos_token_id] + p for p in ids],
        contexts=(prompts["context"] == spec["contexts"][0]).to_numpy(),
        target_ids=tok.convert_tokens_to_ids(spec["target"]),
        contrary_ids=tok.convert_tokens_to_ids(spec["contrary"]),
        judge=exact_judge(task),
        texts={k: text_set(tok, v, context) for k, v in texts.items()},
        pad_id=tok.pad_token_id, max_new_tokens=eval_cfg["max_new_tokens"],
        temperature=eval_cfg["temperature"])


def evaluate_rebound(*, base_dir: str | Path, perturb_dir: str | Path,
                     task_dirs: dict[str, Path], pretrain_heldout: str | Path,
                     directions: list[str], seeds: list[int], n_pos: list[int],
                     n_neg: list[int], eval_cfg: dict, context: int, out_metrics: str | Path,
                     out_prompts: str | Path) -> None:
    """Evaluate every checkpoint of a rebound job; write checkpoint rows and per-prompt rows."""
    from springback.evaluate import evaluate_checkpoint, set_base

    tok = load_tokenizer(base_dir)
    base = models.load_model(base_dir)
    sets = {}
    for task, task_dir in task_dirs.items():
        sets[task] = eval_set(tok, task=task, task_dir=task_dir, pretrain_heldout=pretrain_heldout,
                              context=context, eval_cfg=eval_cfg)
        set_base(base, sets[task])
    rows, prompt_rows = [], []
    ckpts = [(t, d, s, q1, q2) for t, d, s in runs(task_dirs, directions, seeds)
             for q1 in [0, *n_pos] for q2 in n_neg]
    for i, (task, direction, seed, q1, q2) in enumerate(ckpts):
        ev = sets[task]
        path = run_dir(perturb_dir, task, direction, seed, q1, q2)
        metrics, per_prompt = evaluate_checkpoint(models.load_model(path), tok, ev, seed=seed)
        key = {"task": task, "direction": direction, "seed": seed, "n_pos": q1, "n_neg": q2}
        rows.append({**key, **metrics})
        prompt_rows.append(pd.DataFrame({**key, "prompt": np.arange(len(ev.prompt_ids)),
                                         **per_prompt}))
        if (i + 1) % 25 == 0 or i + 1 == len(ckpts):
            log.info("evaluated %d/%d checkpoints", i + 1, len(ckpts))
    write_metrics(pd.DataFrame(rows), out_metrics, base_dir)
    pd.concat(prompt_rows).to_parquet(out_prompts, index=False)


def write_metrics(frame: pd.DataFrame, path: str | Path, base_dir: str | Path) -> None:
    """Metrics CSV with the base's provenance (size, pretraining tokens, parameters) as columns."""
    prov = models.read_provenance(base_dir)
    frame.insert(0, "size", prov.get("size", Path(base_dir).parent.name))
    frame.insert(1, "pretrain_tokens", prov.get("tokens", -1))
    frame.insert(2, "params", prov.get("n_params", -1))
    frame.to_csv(path, index=False)
    Path(f"{path}.provenance.json").write_text(json.dumps(
        provenance.record({"base": str(base_dir)}, base_provenance=prov.get("config_hash")),
        indent=1))


def evaluate_ladder(*, ladder: list[str | Path], tasks: list[str], task_root: str | Path,
                    pretrain_heldout: str | Path, eval_cfg: dict, context: int, seed: int,
                    out_metrics: str | Path) -> None:
    """Evaluate every pretraining checkpoint on every task (KL to base is undefined: NaN)."""
    from springback.evaluate import evaluate_checkpoint

    tok = load_tokenizer(ladder[0])
    rows = []
    for task in tasks:
        ev = eval_set(tok, task=task, task_dir=Path(task_root) / task,
                      pretrain_heldout=pretrain_heldout, context=context, eval_cfg=eval_cfg)
        for path in ladder:
            prov = models.read_provenance(path)
            metrics, _ = evaluate_checkpoint(models.load_model(path), tok, ev, seed=seed)
            rows.append({"task": task, "size": prov["size"], "pretrain_tokens": prov["tokens"],
                         "params": prov["n_params"], "seed": seed, **metrics})
    pd.DataFrame(rows).to_csv(out_metrics, index=False)
