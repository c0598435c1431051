"""Stage `evaluate` (rules/evaluate.smk): every pretraining checkpoint evaluated on every task."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from springback import data, models, provenance
from springback.evaluate import eval_set, evaluate_checkpoint


def evaluate_ladder(*, checkpoints: list[str | Path], files: Mapping[str, str | Path],
                    tasks: list[str], eval_cfg: dict, seed: int, out_metrics: str | Path,
                    judges: dict | None = None, runtime: dict | None = None) -> None:
    """Evaluate every base checkpoint (``checkpoints``) on every task (KL to base is undefined:
    NaN). ``files``: the job's named inputs: ``<task>_<table>``, ``judge_<task>`` and
    ``pretrain_heldout_<world>``, the held-out D_p of each world a checkpoint was pretrained in
    (its provenance's world; a hub model's is hub)."""
    runtime, rows = runtime or {}, []
    for path in checkpoints:
        prov, tok = models.read_provenance(path), models.load_tokenizer(path)
        model = models.load_model(path, **runtime)
        keys = provenance.base_keys(prov)
        for task in tasks:
            ev = eval_set(tok, task=task, tables=data.task_files(files, task),
                          pretrain_heldout=files[f"pretrain_heldout_{keys['world']}"],
                          eval_cfg=eval_cfg, judge_spec=(judges or {}).get(task),
                          judge_dir=files.get(f"judge_{task}"),
                          device=runtime.get("device", "cpu"))
            metrics, _ = evaluate_checkpoint(model, tok, ev, seed=seed,
                                             sample=eval_cfg["sample"])
            rows.append({"task": task, **keys, "seed": seed, **metrics})
    pd.DataFrame(rows).to_csv(out_metrics, index=False)
