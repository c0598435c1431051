"""The batched ensemble (springback.ensemble) against HF's LlamaForCausalLM and train's loops.

Tolerance: a member's trained weights may differ from the single-model loop's by float rounding
only (bmm vs addmm, a padding mask where HF had none); we require every tensor's largest absolute
difference to be <= TOL x its largest absolute value. The broken variants below (lookup gradient
into the pad row; one pooled loss that mixes members) exceed it by orders of magnitude.
"""

from __future__ import annotations

import functools

import pytest
import torch

from springback import ensemble as E
from springback.models import build_llama
from springback.train import finetune, pretrain

from conftest import world_files

S_ARCH = dict(hidden=64, layers=2, heads=4, intermediate=256)  # config.yaml models.s
VOCAB, CONTEXT, PAD = 61, 64, 2  # pad = start = EOS, as for hub tokenizers without BOS/PAD
TOL = 1e-5


def model(seed: int):
    return build_llama(VOCAB, **S_ARCH, context=CONTEXT, seed=seed, bos_id=PAD, eos_id=PAD,
                       pad_id=PAD)


def examples(seed: int, n: int):
    """(PAD + prompt, completion + PAD) pairs of 4-30 tokens; prompts hold PAD mid-sequence too."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda k: torch.randint(0, VOCAB, (k,), generator=g).tolist()  # noqa: E731
    out = []
    for _ in range(n):
        p, c = rand(int(torch.randint(2, 18, (1,), generator=g))), rand(int(torch.randint(1, 12, (1,), generator=g)))
        out.append(([PAD] + p[:1] + [PAD] + p[1:], c + [PAD]))
    return out


def worst(a: dict, b: dict) -> float:
    """Largest per-tensor relative difference of two state dicts (same keys)."""
    return max(float((a[k] - b[k]).abs().max() / b[k].abs().max()) for k in b)


def states(m) -> dict:
    return {k: v.detach().clone() for k, v in m.named_parameters()}


def test_forward_equals_hf_per_member():
    models = [model(s).eval() for s in range(3)]
    ens = E.Ensemble.from_models(models)
    ids = torch.randint(0, VOCAB, (3, 4, 20))
    mask = torch.ones_like(ids)
    mask[:, 1, 15:], mask[:, 2, 5:] = 0, 0
    with torch.no_grad():
        padded, full = ens(ids, mask), ens(ids)
        for i, m in enumerate(models):
            keep = mask[i].bool()
            assert torch.equal(m(input_ids=ids[i], attention_mask=mask[i]).logits[keep],
                               padded[i][keep])
            assert torch.equal(m(input_ids=ids[i]).logits, full[i])


def test_round_trip_is_exact():
    models = [model(s) for s in (3, 4)]
    ens = E.Ensemble.from_models(models)
    for i, m in enumerate(models):
        assert worst(ens.state_dict_of(i), m.state_dict()) == 0
        back = ens.to_model(i)
        assert back.lm_head.weight is back.model.embed_tokens.weight  # still tied
        assert worst(back.state_dict(), m.state_dict()) == 0
    ens.set_member(0, models[1].state_dict())
    assert worst(ens.state_dict_of(0), models[1].state_dict()) == 0
    assert worst(E.Ensemble.from_state_dicts(models[0].config, [m.state_dict() for m in models])
                 .state_dict_of(1), models[1].state_dict()) == 0


SAVE_AT, BATCH, LR = [0, 8, 20], 4, 3e-3  # 5 steps; 20 is not a multiple of 8: uneven grid


@functools.cache
def reference_finetune(seed: int, loss: str):
    """train.finetune alone on examples(seed): saved states at each point, each step's loss."""
    m, saved, losses, data = model(seed), {}, [], examples(seed, max(SAVE_AT))
    m.register_forward_hook(lambda mod, args, out: losses.append(out.loss.item()))
    finetune(m, data, save_at=SAVE_AT, save=lambda mm, n: saved.__setitem__(n, states(mm)),
             batch_size=BATCH, lr=LR, seed=0, pad_id=PAD, loss=loss)
    return saved, losses


def ensemble_finetune(seeds, data, loss: str):
    ens = E.Ensemble.from_models([model(s) for s in seeds])
    saved = {}
    save = lambda e, i, n: saved.__setitem__((i, n), e.state_dict_of(i))  # noqa: E731
    losses = E.finetune_ensemble(ens, data, save_at=SAVE_AT, save=save, batch_size=BATCH, lr=LR,
                                 seed=0, pad_id=PAD, loss=loss)
    return saved, losses


def finetune_gap(loss: str) -> float:
    """Worst relative gap (weights at every save point, step losses) between the ensemble and
    train.finetune run member by member; members differ in init and in data."""
    seeds = (10, 11, 12)
    data = [examples(s, max(SAVE_AT)) for s in seeds]
    got, got_losses = ensemble_finetune(seeds, data, loss)
    assert sorted(got) == sorted((i, n) for i in range(3) for n in SAVE_AT)
    gaps = []
    for i, s in enumerate(seeds):
        want, want_losses = reference_finetune(s, loss)
        gaps += [worst(got[i, n], want[n]) for n in SAVE_AT]
        gaps += [abs(g[i] - w) / abs(w) for g, w in zip(got_losses, want_losses, strict=True)]
    return max(gaps)


@pytest.mark.parametrize("loss", ["completion", "full"])
def test_finetune_equals_single_runs(loss):
    assert finetune_gap(loss) <= TOL


def test_finetune_moves_weights_apart_from_init():
    got, _ = ensemble_finetune((10,), [examples(10, max(SAVE_AT))], "completion")
    assert worst(got[0, 20], got[0, 0]) > 1e-3


def lookup_into_pad_row(table, ids, pad_id, embed=E.embed):
    """Broken: a plain lookup (vmap(loss).sum().backward() did this in method B)."""
    return embed(table, ids, None)


def pooled_losses(logits, targets, member_losses=E.member_losses):
    """Broken: one mean over every member's tokens, so a member's gradient scale depends on the
    others' token counts (AdamW is not invariant to a scale that changes from step to step)."""
    counts = (targets != -100).sum(1)
    return member_losses(logits, targets) * counts / counts.sum()


@pytest.mark.parametrize("name, broken", [("embed", lookup_into_pad_row),
                                          ("member_losses", pooled_losses)])
def test_broken_variants_are_caught(monkeypatch, name, broken):
    monkeypatch.setattr(E, name, broken)
    assert finetune_gap("full") > 100 * TOL


def test_pretrain_equals_single_runs():
    seeds, kw = (0, 1, 2), dict(tokens=5 * 4 * 32, batch_size=4, lr=3e-3, warmup=2,
                                weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    world, mirror = (torch.randint(0, VOCAB, (13, 32), generator=g) for _ in range(2))
    blocks, save_at = [world, world, mirror], [0, 256, 640]  # 640 tokens = 5 steps
    ens = E.Ensemble.from_models([model(s) for s in seeds])
    got = {}
    E.pretrain_ensemble(ens, blocks, seeds=seeds, save_at=save_at, **kw,
                        save=lambda e, i, n: got.__setitem__((i, n), e.state_dict_of(i)))
    for i, s in enumerate(seeds):
        want = {}
        pretrain(model(s), blocks[i], save_at=save_at, seed=s, **kw,
                 save=lambda m, n: want.__setitem__(n, states(m)))
        gap = max(worst(got[i, n], want[n]) for n in save_at)
        assert gap <= TOL, f"member {i}: {gap:.2e}"
    assert worst(got[2, 640], got[0, 640]) > 1e-2  # members really differ


# ======================================================= the rebound job through the ensemble

# Rebound rows of the two paths: every key column and the row order must be equal; metric columns
# may differ by the float rounding of the trained weights (~1e-6 relative) carried through
# evaluation. Measured worst absolute gaps here: logodds 1.2e-7 (per prompt 9.5e-7), p_target,
# bpb, KL ~3e-8, bits (sums ~1e3) 4.5e-5 (~1e-8 relative), sampled scores 0. We allow
# REBOUND_ATOL absolute plus 1e-4 relative (np.allclose). Sampled scores are equal unless a ~1e-7
# change in a probability flips a draw, which at these counts does not happen.
REBOUND_ATOL = 1e-4
REBOUND_KEYS = ["world", "size", "pretrain_seed", "pretrain_tokens", "params",
                "params_nonembedding", "task", "direction", "seed", "n_pos", "n_neg"]


def run_rebound_job(tmp_path, base_dir, world_dir, *, ensemble: bool):
    from springback.pipeline import rebound

    out = tmp_path / ("ensemble" if ensemble else "sequential")
    out.mkdir()
    rebound.rebound(
        base_dir=base_dir, files=world_files(world_dir), tasks=["sentiment", "safety"],
        directions=["forward", "reversed"],
        seeds=[1, 2], n_pos=[8, 16], n_neg=[0, 8, 16],
        train={"lr": 3e-3, "batch_size": 8, "loss": "completion"},
        eval_cfg={"max_new_tokens": 4, "temperature": 1.0, "sample": True, "context": 32,
                  "text_at": [16], "batch_size": 64, "documents": {}},
        keep=[16], out_metrics=out / "metrics.csv", out_prompts=out / "prompts.parquet",
        out_documents=out / "documents.parquet", out_models=out / "models", ensemble=ensemble)
    return out


def frames_gap(a, b, keys) -> dict[str, float]:
    """Assert equal keys and row order; return each float column's largest absolute gap."""
    import numpy as np
    import pandas as pd

    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    pd.testing.assert_frame_equal(a[keys], b[keys])
    gaps = {}
    for col in a.columns.difference(keys):
        x, y = a[col].to_numpy(float), b[col].to_numpy(float)
        assert (np.isnan(x) == np.isnan(y)).all(), col
        both = ~np.isnan(x)
        gaps[col] = float(np.abs(x[both] - y[both]).max(initial=0.0))
        assert np.allclose(x[both], y[both], rtol=1e-4, atol=REBOUND_ATOL), (col, gaps[col])
    return gaps


def test_rebound_job_ensemble_equals_sequential(pretrained_model, tiny_tokenizer, tiny_world_dir,
                                                tmp_path, caplog):
    import logging

    import pandas as pd

    from springback import models
    from springback.pipeline import rebound

    assert E.unsupported(pretrained_model) is None
    base = tmp_path / "base"
    models.save_model(pretrained_model, base, {"size": "s", "tokens": 1, "seed": 0,
                                               "n_params": models.n_params(pretrained_model)},
                      tokenizer=tiny_tokenizer)
    with caplog.at_level(logging.INFO, logger="springback.pipeline.rebound"):
        ens = run_rebound_job(tmp_path, base, tiny_world_dir, ensemble=True)
    assert "ensemble of 8 runs done" in caplog.text and "ensemble off" not in caplog.text
    seq = run_rebound_job(tmp_path, base, tiny_world_dir, ensemble=False)
    metrics = [pd.read_csv(d / "metrics.csv") for d in (ens, seq)]
    assert len(metrics[1]) == 2 * 2 * 2 * 3 * 3  # runs x (base + 2 n_pos) x 3 n_neg
    assert all((m["lr"] == 3e-3).all() for m in metrics)  # every row records the job's lr
    gaps = frames_gap(*metrics, REBOUND_KEYS)
    prompts = [pd.read_parquet(d / "prompts.parquet") for d in (ens, seq)]
    keys = [c for c in prompts[1].columns if c not in ("score", "p_target", "logodds")]
    gaps |= {f"prompt {k}": v for k, v in frames_gap(*prompts, keys).items()}
    print({k: f"{v:.1e}" for k, v in gaps.items()})
    assert gaps["logodds"] <= REBOUND_ATOL
    kept = sorted(p.relative_to(seq / "models") for p in (seq / "models").glob("*/*/*/*/*"))
    assert kept == sorted(p.relative_to(ens / "models") for p in (ens / "models").glob("*/*/*/*/*"))
    assert len(kept) == 8 * 3  # keep=[16]: every run, every n_pos


def test_ensemble_unsupported_bases_fall_back(make_tiny_model):
    import torch

    assert E.unsupported(make_tiny_model(seed=0)) is None
    assert "bfloat16" in E.unsupported(make_tiny_model(seed=0).to(torch.bfloat16))
    biased = make_tiny_model(seed=0)
    biased.config.attention_bias = True
    assert "attention_bias" in E.unsupported(biased)
