"""Shared fixtures: a tiny synthetic world, its tokenizer and tiny Llama models (session-scoped).

Everything here is small enough for 2 shared CPU cores: 300 pretraining documents, a word-level
tokenizer of ~500 words, one-layer models with hidden size 32.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

try:
    import springback  # noqa: F401
except ModuleNotFoundError:  # package not installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from killed import killed_run  # noqa: E402,F401 (session fixture: the killed-and-resumed smoke run)

TINY_WORLD = dict(pretrain_docs=300, heldout_docs=10, task_pool=40, task_heldout=10, prompts=10)
TINY_ARCH = dict(hidden=32, layers=1, heads=2, intermediate=64)
TINY_CONTEXT = 32


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """The smoke study, run once per test session from scratch in a temporary copy of the
    workflow and shared by every test that reads a finished study (results/smoke of that copy);
    tests must not modify what it wrote."""
    import time

    from smoke import copy_runnable, run_smoke

    workdir = copy_runnable(tmp_path_factory.mktemp("smoke"))
    start = time.monotonic()
    proc = run_smoke(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"smoke study: {time.monotonic() - start:.0f} s")
    return workdir / "results" / "smoke"


@pytest.fixture(scope="session")
def unpacked_archive(smoke_study, tmp_path_factory):
    """(root, member names) of the smoke study's reproducibility archive, unpacked; None when
    tracked files have uncommitted changes (CI has a clean clone). The killed-and-resumed run
    of tests/test_reliability.py runs from this root, so one smoke run serves both the
    archive's round trip and the resume."""
    from smoke import tracked_changes, unpack_archive

    if tracked_changes():
        return None
    return unpack_archive(smoke_study, tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="session")
def study_config() -> dict:
    """The default study's config as the workflow reads it (springback.config.load: the schema's
    defaults filled in). Do not mutate: copy it."""
    from springback.config import load

    return load(defaults=Path(__file__).resolve().parents[1] / "config" / "config.yaml")


@pytest.fixture(scope="session")
def tiny_world_cfg(study_config):
    from springback.world import WorldConfig

    return WorldConfig(**{**study_config["world"], **TINY_WORLD})


@pytest.fixture(scope="session")
def tiny_world(tiny_world_cfg):
    """All tables of the tiny world (column dicts keyed by file stem). Do not mutate."""
    from springback.world import generate_world

    return generate_world(tiny_world_cfg)


def world_files(root: Path) -> dict[str, Path]:
    """The main world's tables under ``root``, by the names rule world gives them."""
    from springback.data import TASK_TABLES
    from springback.world import TASKS

    stems = ["pretrain", "pretrain_heldout", "resistance/train", "resistance/prompts",
             *(f"{t}/{n}" for t in TASKS for n in TASK_TABLES)]
    return {stem.replace("/", "_"): root / f"{stem}.parquet" for stem in stems}


@pytest.fixture(scope="session")
def tiny_world_dir(tiny_world_cfg, tmp_path_factory):
    """The tiny world written as parquet files (as the workflow's world rule writes them)."""
    from dataclasses import asdict

    from springback.pipeline.world import build_world

    out = tmp_path_factory.mktemp("world")
    build_world(asdict(tiny_world_cfg), world_files(out))
    return out


@pytest.fixture(scope="session")
def tiny_world_files(tiny_world_dir) -> dict[str, Path]:
    """The tiny world's tables by name (``<task>_<table>``, pretrain_heldout, ...): the named
    inputs a model job gets."""
    return world_files(tiny_world_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_world):
    from springback.tokenizer import train_tokenizer

    return train_tokenizer(tiny_world["pretrain"]["text"])


@pytest.fixture(scope="session")
def make_tiny_model(tiny_tokenizer):
    """Factory: a freshly initialised one-layer Llama over the tiny tokenizer's vocabulary."""
    import torch

    from springback.models import build_llama

    torch.set_num_threads(1)
    tok = tiny_tokenizer

    def make(seed: int = 0, **arch):
        return build_llama(len(tok), **{**TINY_ARCH, **arch}, context=TINY_CONTEXT, seed=seed,
                           bos_id=tok.bos_token_id, eos_id=tok.eos_token_id,
                           pad_id=tok.pad_token_id)

    return make


@pytest.fixture(scope="session")
def tiny_blocks(tiny_world, tiny_tokenizer):
    """The tiny pretraining corpus packed into rows of TINY_CONTEXT tokens."""
    from springback.train import pack_blocks

    tok = tiny_tokenizer
    docs = tok(tiny_world["pretrain"]["text"], add_special_tokens=False)["input_ids"]
    return pack_blocks(docs, context=TINY_CONTEXT, bos_id=tok.bos_token_id,
                       eos_id=tok.eos_token_id)


@pytest.fixture(scope="session")
def _pretrained(make_tiny_model, tiny_blocks):
    from springback.train import pretrain

    model = make_tiny_model(seed=0)
    tokens = 40 * 16 * TINY_CONTEXT  # 40 steps of 16 rows
    pretrain(model, tiny_blocks, tokens=tokens, save_at=[], save=lambda m, n: None,
             batch_size=16, lr=1e-2, warmup=5, weight_decay=0.0, seed=0)
    return model.eval()


@pytest.fixture
def pretrained_model(_pretrained):
    """A tiny model briefly pretrained on the tiny world (a private copy per test)."""
    return copy.deepcopy(_pretrained)
