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


def task_judge(task: str, judge_spec: dict | None, judge_dir: str | Path | None, device: str):
    """The world's exact judge (toy mode, no spec) or a fetched hub judge."""
    from springback.judge import exact_judge

    if judge_spec is None or judge_spec.get("kind", "exact") == "exact":
        return exact_judge(task)
    from springback.hub import make_judge

    options = {k: v for k, v in judge_spec.items() if k not in ("id", "revision")}
    return make_judge({**options, "path": str(judge_dir), "device": device}, task)


def eval_set(tok, *, task: str, task_dir: str | Path, pretrain_heldout: str | Path, context: int,
             eval_cfg: dict, judge_spec: dict | None = None, judge_dir: str | Path | None = None,
             device: str = "cpu"):
    """Prepare prompts, judge and held-out text sets of a task (once per job). The exact target
    probability is measured only with the world's exact judge (toy mode): hub tasks have no
    known first words of the target behaviour."""
    from springback.evaluate import EvalSet, text_set

    exact = judge_spec is None or judge_spec.get("kind", "exact") == "exact"
    ids = models.special_ids(tok)
    task_dir = Path(task_dir)
    spec = world.TASK_SPEC[task]
    prompts = data.read_table(task_dir / "prompts.parquet", data.PROMPT_COLUMNS)
    held = {name: data.read_table(task_dir / f"{name}_heldout.parquet", data.EXAMPLE_COLUMNS)
            for name in ("align", "perturb")}
    texts = {name: (frame["prompt"] + " " + frame["completion"]).tolist()
             for name, frame in held.items()}
    texts["pretrain"] = data.read_table(pretrain_heldout, ("text",))["text"].tolist()
    prompt_ids = tok(prompts["prompt"].tolist(), add_special_tokens=False)["input_ids"]
    return EvalSet(
        prompt_ids=[[ids["start"]] + p for p in prompt_ids],
        contexts=(prompts["context"] == spec["contexts"][0]).to_numpy(),
        target_ids=tok.convert_tokens_to_ids(spec["target"]) if exact else None,
        contrary_ids=tok.convert_tokens_to_ids(spec["contrary"]) if exact else None,
        judge=task_judge(task, judge_spec, judge_dir, device),
        texts={k: text_set(tok, v, context) for k, v in texts.items()},
        pad_id=ids["pad"], eos_id=ids["eos"], max_new_tokens=eval_cfg["max_new_tokens"],
        temperature=eval_cfg["temperature"], batch_size=eval_cfg.get("batch_size", 64))


def evaluate_rebound(*, base_dir: str | Path, perturb_dir: str | Path,
                     task_dirs: dict[str, Path], pretrain_heldout: str | Path,
                     directions: list[str], seeds: list[int], n_pos: list[int],
                     n_neg: list[int], eval_cfg: dict, out_metrics: str | Path,
                     out_prompts: str | Path, judges: dict | None = None,
                     judge_dirs: dict | None = None, runtime: dict | None = None) -> None:
    """Evaluate every checkpoint of a rebound job; write checkpoint rows and per-prompt rows."""
    from springback.evaluate import evaluate_checkpoint, set_base

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
    rows, prompt_rows = [], []
    ckpts = [(t, d, s, q1, q2) for t, d, s in runs(task_dirs, directions, seeds)
             for q1 in [0, *n_pos] for q2 in n_neg]
    for i, (task, direction, seed, q1, q2) in enumerate(ckpts):
        ev = sets[task]
        path = run_dir(perturb_dir, task, direction, seed, q1, q2)
        model = models.load_model(path, **runtime)
        metrics, per_prompt = evaluate_checkpoint(model, tok, ev, seed=seed)
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
                    pretrain_heldout: str | Path, eval_cfg: dict, seed: int,
                    out_metrics: str | Path, judges: dict | None = None,
                    judge_dirs: dict | None = None, runtime: dict | None = None) -> None:
    """Evaluate every pretraining checkpoint on every task (KL to base is undefined: NaN)."""
    from springback.evaluate import evaluate_checkpoint

    runtime, rows = runtime or {}, []
    for path in ladder:
        prov, tok = models.read_provenance(path), load_tokenizer(path)
        model = models.load_model(path, **runtime)
        for task in tasks:
            ev = eval_set(tok, task=task, task_dir=Path(task_root) / task,
                          pretrain_heldout=pretrain_heldout, context=eval_cfg["context"],
                          eval_cfg=eval_cfg, judge_spec=(judges or {}).get(task),
                          judge_dir=(judge_dirs or {}).get(task),
                          device=runtime.get("device", "cpu"))
            metrics, _ = evaluate_checkpoint(model, tok, ev, seed=seed)
            rows.append({"task": task, "size": prov["size"], "pretrain_tokens": prov["tokens"],
                         "params": prov["n_params"], "seed": seed, **metrics})
    pd.DataFrame(rows).to_csv(out_metrics, index=False)
