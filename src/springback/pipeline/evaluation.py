"""Stage `evaluate` (rules/evaluate.smk): every checkpoint of a rebound job, and the ladder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from springback import data, models, provenance, world
from springback.models import load_tokenizer
from springback.pipeline.finetune import run_dir, runs

log = logging.getLogger(__name__)


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
