"""Toy mode on a device (config toy.device): pretraining and the rebound ensemble run where the
config asks, and their tables equal the default (CPU) path's within float tolerance. On a
machine without CUDA only the "cpu" case runs: it checks the plumbing (the device reaches the
model, the batches and the ensemble); with CUDA the same test checks the numbers.

Tolerances: pretrained weights per tensor in relative norm (AdamW turns the rounding of a
gradient near its eps into larger weight differences: tests/test_fast_paths.py), rebound rows as
tests/test_ensemble.py compares its two paths.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from springback import models
from springback.pipeline.base import pretrain_ladder
from springback.pipeline.rebound import rebound
from conftest import world_files
from test_ensemble import REBOUND_KEYS, frames_gap

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
ARCH = dict(hidden=32, layers=1, heads=2, intermediate=64)
TRAIN = dict(context=32, batch_size=8, lr=3e-3, warmup=2, weight_decay=0.1)
TOKENS = 6 * 8 * 32  # six steps
WEIGHTS_TOL = 1e-4


def ladder(tmp_path, world_dir, tokenizer_dir, name: str, **device) -> dict[int, str]:
    """Pretrain the tiny model, saving at 0 and TOKENS (device: the default unless given)."""
    outdirs = {t: str(tmp_path / name / f"tokens-{t}") for t in (0, TOKENS)}
    pretrain_ladder(corpus=world_dir / "pretrain.parquet", tokenizer_dir=tokenizer_dir,
                    world="main", size="s", seed=0, arch=ARCH, train_cfg=TRAIN, tokens=TOKENS,
                    outdirs=outdirs, **device)
    return outdirs


def weights_gap(a: str, b: str) -> float:
    x, y = (load_file(f"{d}/model.safetensors") for d in (a, b))
    assert x.keys() == y.keys()
    return max(float((x[k] - y[k]).norm() / y[k].norm()) for k in y)


def rebound_job(out, base_dir, world_dir, **runtime):
    """A small rebound job through the ensemble (runtime: the default unless given)."""
    out.mkdir()
    rebound(base_dir=base_dir, files=world_files(world_dir), tasks=["sentiment", "safety"],
            directions=["forward"],
            seeds=[1], n_pos=[8], n_neg=[0, 8, 16],
            train={"lr": 3e-3, "batch_size": 8, "loss": "completion"},
            eval_cfg={"max_new_tokens": 4, "temperature": 1.0, "sample": False, "context": 32,
                      "text_at": [8], "batch_size": 64, "documents": {}},
            keep="none", out_metrics=out / "metrics.csv", out_prompts=out / "prompts.parquet",
            out_documents=out / "documents.parquet", out_models=out / "models", ensemble=True,
            **runtime)
    return out


@pytest.fixture(scope="module")
def tokenizer_dir(tiny_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("device", DEVICES)
def test_pretraining_on_a_device_equals_the_default(device, tiny_world_dir, tokenizer_dir,
                                                    tmp_path):
    want = ladder(tmp_path, tiny_world_dir, tokenizer_dir, "default")
    got = ladder(tmp_path, tiny_world_dir, tokenizer_dir, device, device=device)
    assert weights_gap(got[0], want[0]) == 0.0  # the same initialisation on every device
    assert weights_gap(got[TOKENS], want[TOKENS]) <= WEIGHTS_TOL
    assert weights_gap(want[TOKENS], want[0]) > 1e3 * WEIGHTS_TOL  # training moved them


@pytest.mark.parametrize("device", DEVICES)
def test_rebound_ensemble_on_a_device_equals_the_default(device, pretrained_model,
                                                         tiny_tokenizer, tiny_world_dir,
                                                         tmp_path, caplog):
    base = tmp_path / "base"
    models.save_model(pretrained_model, base, {"size": "s", "tokens": 1, "seed": 0,
                                               "n_params": models.n_params(pretrained_model)},
                      tokenizer=tiny_tokenizer)
    want = rebound_job(tmp_path / "default", base, tiny_world_dir)
    runtime = {"device": device, "dtype": "float32", "trust_remote_code": False}
    with caplog.at_level(logging.INFO, logger="springback.pipeline.rebound"):
        got = rebound_job(tmp_path / device, base, tiny_world_dir, runtime=runtime)
    assert "ensemble of 2 runs done" in caplog.text and "ensemble off" not in caplog.text
    frames_gap(*(pd.read_csv(d / "metrics.csv") for d in (got, want)), REBOUND_KEYS)
    prompts = [pd.read_parquet(d / "prompts.parquet") for d in (got, want)]
    keys = [c for c in prompts[1].columns if c not in ("score", "p_target", "logodds")]
    frames_gap(*prompts, keys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_cuda_without_a_device_fails_in_one_line(tiny_world_dir, tokenizer_dir, tmp_path):
    with pytest.raises(RuntimeError, match="'cuda' asked for, but torch .* sees no CUDA device"):
        ladder(tmp_path, tiny_world_dir, tokenizer_dir, "cuda", device="cuda")
