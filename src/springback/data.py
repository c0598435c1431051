"""Reading and writing the datasets of a study (parquet, one table per file).

Toy mode's world and hub mode's adapters write the same task format:
``<task>/align.parquet`` (D_a), ``<task>/perturb.parquet`` (D_t) with columns prompt, completion,
context; their ``*_heldout.parquet`` twins; ``<task>/prompts.parquet`` (prompt, context); and
``pretrain_heldout.parquet`` (text) for bits/byte of the pretraining distribution.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

EXAMPLE_COLUMNS = ("prompt", "completion", "context")
PROMPT_COLUMNS = ("prompt", "context")


def write_table(columns: dict[str, list], path: str | Path) -> None:
    """Write a column dict as parquet with ``datasets`` (atomically: temp file, then rename)."""
    from datasets import Dataset

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Dataset.from_dict(columns).to_parquet(str(tmp))
    tmp.replace(path)


def read_table(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a parquet table, failing with a one-line message naming a missing file or column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} does not exist")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise ValueError(f"dataset file {path} is not a readable parquet file ({err})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"dataset file {path} has no column {missing[0]!r}")
    if frame.empty:
        raise ValueError(f"dataset file {path} is empty")
    return frame


def phase_files(task_dir: str | Path, direction: str) -> tuple[Path, Path]:
    """(phase-1 file, phase-2 file): forward aligns on D_a then perturbs with D_t; reversed swaps."""
    task_dir = Path(task_dir)
    first, second = ("align", "perturb") if direction == "forward" else ("perturb", "align")
    return task_dir / f"{first}.parquet", task_dir / f"{second}.parquet"
