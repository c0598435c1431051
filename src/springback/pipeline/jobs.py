"""What every job of the rebound protocol shares: evaluation sets prepared once with the base as
KL reference, a Recorder, and the job's output files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from springback import data, models, provenance
from springback.evaluate import set_base
from springback.models import load_tokenizer
from springback.pipeline.evaluation import base_keys, eval_set
from springback.pipeline.rebound import Recorder, mean_tokens


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
    text_at = set(n_neg) if eval_cfg.get("text_at") is None else {0, max(n_neg), *eval_cfg["text_at"]}
    record = Recorder(tok, sets, eval_cfg=eval_cfg, text_at=text_at, keep=keep,
                      out_models=out_models, params=params)
    Path(out_models).mkdir(parents=True, exist_ok=True)
    return tok, base, record


def write(record: Recorder, tok, *, base_dir, task_dirs: dict[str, Path], directions: list[str],
          params: dict, out_metrics, out_prompts) -> None:
    """metrics.csv (with the base's keys and the phase-1 tokens per example), its provenance,
    and prompts.parquet of a job."""
    keys = base_keys(models.read_provenance(base_dir))
    frame = pd.DataFrame(record.rows)
    for i, (k, v) in enumerate(keys.items()):
        frame.insert(i, k, v)
    # mean tokens per phase-1 example (with BOS and EOS): |D_a| in tokens for the theorem's k
    tokens = {(t, d): mean_tokens(tok, data.phase_files(task_dirs[t], d)[0])
              for t in task_dirs for d in directions}
    frame["phase1_tokens"] = [tokens[t, d] for t, d in zip(frame["task"], frame["direction"])]
    frame.to_csv(out_metrics, index=False)
    Path(f"{out_metrics}.provenance.json").write_text(json.dumps(
        provenance.record(params, base_checkpoint=keys), indent=1))
    pd.concat(record.prompt_rows).to_parquet(out_prompts, index=False)
