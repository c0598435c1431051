"""Reading and writing the datasets of a study (parquet, one table per file), and encoding their
examples for training.

Toy mode's world and hub mode's adapters write the same task format, five tables per task
(``TASK_TABLES``): ``align`` (D_a) and ``perturb`` (D_t) with columns prompt, completion,
context; their ``*_heldout`` twins; ``prompts`` (prompt, context); and ``pretrain_heldout``
(text) for bits/byte of the pretraining distribution. A job receives its tables as named files,
``<task>_<table>``, the names the rules give them (``task_files``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from springback.tokenizer import special_ids

EXAMPLE_COLUMNS = ("prompt", "completion", "context")
PROMPT_COLUMNS = ("prompt", "context")
TASK_TABLES = ("align", "perturb", "align_heldout", "perturb_heldout", "prompts")

Example = tuple[list[int], list[int]]  # (start symbol + prompt ids, completion ids + EOS)


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


def task_files(files: Mapping[str, str | Path], task: str) -> dict[str, Path]:
    """The five tables of ``task`` (by table name) among a job's named files
    (``<task>_<table>``), failing with a one-line message naming a missing one."""
    missing = [name for name in TASK_TABLES if f"{task}_{name}" not in files]
    if missing:
        raise KeyError(f"no file {task}_{missing[0]} among the job's inputs")
    return {name: Path(files[f"{task}_{name}"]) for name in TASK_TABLES}


def phase_files(tables: Mapping[str, Path], direction: str) -> tuple[Path, Path]:
    """(phase-1 file, phase-2 file) of a task's tables: forward aligns on D_a then perturbs with
    D_t; reversed swaps them."""
    first, second = ("align", "perturb") if direction == "forward" else ("perturb", "align")
    return Path(tables[first]), Path(tables[second])


def ordered_rows(path: str | Path, *, seed: int, phase: int, n: int) -> pd.DataFrame:
    """The first n rows of a task file in the seed's order (a phase-specific permutation)."""
    frame = read_table(path, EXAMPLE_COLUMNS)
    if n > len(frame):
        raise ValueError(f"dataset file {path} has {len(frame)} examples, the study needs {n}")
    return frame.iloc[np.random.default_rng([seed, phase]).permutation(len(frame))[:n]]


def encode_examples(tok, frame: pd.DataFrame) -> list[Example]:
    """(start symbol + prompt ids, completion ids + EOS) per row."""
    ids = special_ids(tok)
    prompts = tok(frame["prompt"].tolist(), add_special_tokens=False)["input_ids"]
    completions = tok(frame["completion"].tolist(), add_special_tokens=False)["input_ids"]
    return [([ids["start"]] + p, c + [ids["eos"]]) for p, c in zip(prompts, completions)]


def ordered_examples(tok, path: str | Path, *, seed: int, phase: int, n: int) -> list[Example]:
    """The first n examples of a task file in the seed's phase order, encoded."""
    return encode_examples(tok, ordered_rows(path, seed=seed, phase=phase, n=n))


def mean_tokens(tok, path: str | Path) -> float:
    """Mean tokens per example of a task file (start symbol, prompt, completion, EOS)."""
    frame = read_table(path, EXAMPLE_COLUMNS)
    return float(np.mean([len(p) + len(c) for p, c in encode_examples(tok, frame)]))
