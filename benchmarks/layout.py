"""Where a study keeps what a benchmark reads or writes outside the workflow: the layout
rules/common.smk declares (world_tables, checkpoint), as the named files a job gets."""

from __future__ import annotations

from pathlib import Path

from springback.data import TASK_TABLES
from springback.world import TASKS


def world_tables(folder: str | Path) -> dict[str, Path]:
    """Every table the world job writes into a world folder (``results/<study>/world``), by
    name: D_p, held-out D_p, the task tables (``<task>_<table>``), the resistance sets."""
    folder = Path(folder)
    stems = ["pretrain", "pretrain_heldout", "resistance/train", "resistance/prompts",
             *(f"{t}/{n}" for t in TASKS for n in TASK_TABLES)]
    return {stem.replace("/", "_"): folder / f"{stem}.parquet" for stem in stems}


def world_files(study: str | Path, tasks=TASKS) -> dict[str, Path]:
    """The named inputs a model job of a study (``results/<study>``) reads: the held-out D_p
    (pretrain_heldout) and the task tables of ``tasks``."""
    tables = world_tables(Path(study) / "world")
    return {k: v for k, v in tables.items()
            if k == "pretrain_heldout" or k.split("_")[0] in tasks}


def checkpoint(study: str | Path, size: str, tokens: int, pseed: int = 0,
               world: str = "main") -> Path:
    """A base checkpoint's folder."""
    return Path(study) / "base" / world / size / f"pseed-{pseed}" / f"tokens-{tokens}"
