"""Stage `evaluate` (rules/evaluate.smk): evaluation sets of a task, and the pretraining ladder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from springback import data, models, world
from springback.models import load_tokenizer

log = logging.getLogger(__name__)


def task_judge(task: str, judge_spec: dict | None, judge_dir: str | Path | None, device: str):
    """The judge a task's config spec names (springback.judge.JUDGES; toy mode, no spec: the
    world's exact judge), with the kind's options; a model judge is read from its fetched
    folder ``judge_dir`` onto ``device``."""
    from springback.judge import JUDGES, make_judge

    name = (judge_spec or {}).get("kind", "exact")
    options = {k: v for k, v in (judge_spec or {}).items() if k in JUDGES[name].options}
    if JUDGES[name].model:
        options |= {"path": str(judge_dir), "device": device}
    return make_judge({"kind": name, **options}, task)


def eval_set(tok, *, task: str, task_dir: str | Path, pretrain_heldout: str | Path, context: int,
             eval_cfg: dict, judge_spec: dict | None = None, judge_dir: str | Path | None = None,
             device: str = "cpu"):
    """Prepare prompts, judge and held-out text sets of a task (once per job). The exact target
    probability (log-odds) is read at the end of the prompt with the world's exact judge (toy
    mode), and, for a hub task whose judge spec carries a ``probe`` (suffix, target words,
    contrary words), after the prompt followed by the probe's fixed suffix (e.g. verdict words
    after " Overall, the movie was"); without one it is NaN."""
    from springback.evaluate import EvalSet, text_set

    exact = judge_spec is None or judge_spec.get("kind", "exact") == "exact"
    ids = models.special_ids(tok)
    task_dir = Path(task_dir)
    spec = world.TASK_SPEC[task]
    prompts = data.read_table(task_dir / "prompts.parquet", data.PROMPT_COLUMNS)
    held = {name: data.read_table(task_dir / f"{name}_heldout.parquet", data.EXAMPLE_COLUMNS)
            for name in ("align", "perturb")}
    texts = {name: list(zip(frame["prompt"], frame["completion"])) for name, frame in held.items()}
    texts["pretrain"] = data.read_table(pretrain_heldout, ("text",))["text"].tolist()
    limit = eval_cfg.get("documents") or {}  # the first N documents of a set (None: all)
    texts = {name: docs[: limit.get(name)] for name, docs in texts.items()}
    prompt_ids = tok(prompts["prompt"].tolist(), add_special_tokens=False)["input_ids"]
    probe = None if exact else (judge_spec or {}).get("probe")
    target, contrary, probe_ids = None, None, None
    if exact:
        target, contrary = (tok.convert_tokens_to_ids(spec[k]) for k in ("target", "contrary"))
    elif probe:
        target, contrary = (probe_tokens(tok, probe["suffix"], probe[k], task)
                            for k in ("target", "contrary"))
        if set(target) & set(contrary):
            raise ValueError(f"probe of task {task}: target and contrary words share a first "
                             f"token ({sorted(set(target) & set(contrary))})")
        probe_ids = [[ids["start"]] + p for p in tok(
            [p + probe["suffix"] for p in prompts["prompt"]], add_special_tokens=False)["input_ids"]]
    return EvalSet(
        prompt_ids=[[ids["start"]] + p for p in prompt_ids],
        contexts=(prompts["context"] == spec["contexts"][0]).to_numpy(),
        clean=(prompts["clean"].to_numpy(bool) if "clean" in prompts
               else np.ones(len(prompts), bool)),  # hub prompts: the label is the only cue
        target_ids=target, contrary_ids=contrary, probe_ids=probe_ids,
        judge=task_judge(task, judge_spec, judge_dir, device),
        texts={k: text_set(tok, v, context, eval_cfg.get("batch_size", 64))
               for k, v in texts.items()},
        pad_id=ids["pad"], eos_id=ids["eos"], max_new_tokens=eval_cfg["max_new_tokens"],
        temperature=eval_cfg["temperature"], batch_size=eval_cfg.get("batch_size", 64))


def probe_tokens(tok, suffix: str, words: list[str], task: str) -> list[int]:
    """The first token of each word as the model would read it right after ``suffix`` (the
    tokens of suffix + word past those of suffix alone; robust to a tokenizer that merges the
    leading space), de-duplicated."""
    start = len(tok(suffix, add_special_tokens=False)["input_ids"])
    out = []
    for word in words:
        ids = tok(suffix + word, add_special_tokens=False)["input_ids"][start:]
        if not ids or ids[0] == tok.unk_token_id:
            raise ValueError(f"probe of task {task}: the word {word!r} has no token of its own "
                             "after the suffix")
        out += [ids[0]] if ids[0] not in out else []
    return out


def evaluate_ladder(*, ladder: list[str | Path], tasks: list[str], task_root: str | Path,
                    pretrain_heldout: dict[str, str | Path], eval_cfg: dict, seed: int,
                    out_metrics: str | Path, judges: dict | None = None,
                    judge_dirs: dict | None = None, runtime: dict | None = None) -> None:
    """Evaluate every pretraining checkpoint on every task (KL to base is undefined: NaN);
    ``pretrain_heldout`` maps each world to its held-out D_p."""
    from springback.evaluate import evaluate_checkpoint

    runtime, rows = runtime or {}, []
    for path in ladder:
        prov, tok = models.read_provenance(path), load_tokenizer(path)
        model = models.load_model(path, **runtime)
        world_name = prov.get("world", "hub")
        for task in tasks:
            ev = eval_set(tok, task=task, task_dir=Path(task_root) / task,
                          pretrain_heldout=pretrain_heldout[world_name],
                          context=eval_cfg["context"], eval_cfg=eval_cfg,
                          judge_spec=(judges or {}).get(task),
                          judge_dir=(judge_dirs or {}).get(task),
                          device=runtime.get("device", "cpu"))
            metrics, _ = evaluate_checkpoint(model, tok, ev, seed=seed,
                                             sample=eval_cfg["sample"])
            rows.append({"task": task, **base_keys(prov), "seed": seed, **metrics})
    pd.DataFrame(rows).to_csv(out_metrics, index=False)


def base_keys(prov: dict) -> dict:
    """The columns that name a base checkpoint, from its provenance record."""
    return {"world": prov.get("world", "hub"), "size": prov["size"],
            "pretrain_seed": prov.get("seed", 0), "pretrain_tokens": prov["tokens"],
            "params": prov["n_params"],
            "params_nonembedding": prov.get("n_params_nonembedding", prov["n_params"])}
