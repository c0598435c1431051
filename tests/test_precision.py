"""The precision-per-cost benchmark (benchmarks/precision.py) on a tiny synthetic study, and the
per-document code lengths it reads (rebound's documents.parquet, compress.document_lengths)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "precision.py"


@pytest.fixture(scope="module")
def precision():
    spec = importlib.util.spec_from_file_location("precision", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


N_POS, N_NEG, TEXT_AT = [0, 8, 16], [0, 8, 16, 24, 32, 48, 64, 96], [0, 32, 96]


def synthetic(seed: int = 0):
    """(prompts, checkpoints) of a tiny study: one task, a main base and its random-init twin,
    both directions, 3 x 2 runs, 8 prompts; log-odds fall 0.06 nats per example from the
    aligned lift (0, 2, 3 nats), bits/byte at TEXT_AT only."""
    rng = np.random.default_rng(seed)
    rows, ckpt = [], []
    for role, tokens in (("main", 1000), ("random_init", 0)):
        for direction, sign in (("forward", -1.0), ("reversed", 1.0)):
            for p in range(3):
                for s in (1, 2):
                    run = rng.normal(0, 0.2)
                    for a, n_pos in enumerate(N_POS):
                        for n_neg in N_NEG:
                            key = dict(role=role, task="sentiment", world="main", size="s",
                                       pretrain_tokens=tokens, algo="sft", direction=direction,
                                       pretrain_seed=p, seed=s, n_pos=n_pos, n_neg=n_neg)
                            level = 1.0 - sign * (a + (a > 0)) * 1.0 + sign * 0.06 * n_neg + run
                            for q in range(8):
                                rows.append({**key, "prompt": q, "context": q % 2 == 0,
                                             "clean": q < 6, "logodds": level + (q % 2 - 0.5)
                                             + rng.normal(0, 0.3)})
                            text = n_neg in TEXT_AT
                            bpb = {"bpb_pretrain": 3 - 1e-3 * n_neg + 0.02 * a,
                                   "bpb_align": 2 - 0.1 * a + 2e-3 * n_neg,
                                   "bpb_perturb": 2 - 1e-3 * n_neg,
                                   "kl_to_base": 0.1 * a + 1e-3 * abs(n_neg - 40)}
                            ckpt.append({**key, "score": np.nan, "p_target": 0.5,
                                         **{k: v + rng.normal(0, 1e-3) if text else np.nan
                                            for k, v in bpb.items()}})
    return pd.DataFrame(rows), pd.DataFrame(ckpt)


@pytest.fixture(scope="module")
def tables(precision):
    prompts, checkpoints = synthetic()
    return precision.Tables(prompts, checkpoints, None)


def test_prompt_subset_keeps_half_per_context(precision, tables):
    sub = precision.prompt_subset(tables.prompts, 4, seed=1)
    first = sub.drop_duplicates("prompt")
    assert sorted(first["prompt"]) == [0, 1, 2, 3]
    assert first["context"].sum() == 2
    assert len(sub) == len(tables.prompts) // 2


def test_thinned_grids_keep_the_ends(precision):
    grids = precision.grid_settings(N_NEG, keep=TEXT_AT)
    for name, grid in grids.items():
        assert set(TEXT_AT) <= set(grid) <= set(N_NEG), name
    assert grids["full (8)"] == N_NEG and grids["kept points only (3)"] == TEXT_AT
    assert precision.text_settings(TEXT_AT)["first and last (2)"] == [0, 96]


def test_full_design_compares_to_itself_and_fewer_prompts_widen(precision, tables):
    full = precision.claim_widths(tables, n_boot=100, opts={})
    assert {"claim", "statistic", "control", "half_width"} <= set(full)
    assert (full["half_width"] > 0).sum() >= 5
    same = precision.compare(full, full, 10.0, 10.0)
    defined = same["width_ratio"].notna()
    assert defined.any() and np.allclose(same.loc[defined, "width_ratio"], 1.0)
    few = precision.claim_widths(
        precision.Tables(precision.prompt_subset(tables.prompts, 2, seed=0),
                         tables.checkpoints, None), n_boot=100, opts={})
    ratio = precision.compare(few, full, 5.0, 10.0)
    # behaviour statistics read prompts: 2 of 8 prompts widen them (C7 reads bits/byte only)
    behaviour = ratio[ratio["claim"].isin(["E1", "C2"])]["width_ratio"].dropna()
    assert len(behaviour) and behaviour.median() > 1.2
    assert (ratio["cost_ratio"] == 0.5).all()


def test_text_points_and_grid_thinning(precision, tables):
    assert precision.text_points(tables.checkpoints) == TEXT_AT
    ends = precision.text_only_at(tables, [0, 96])
    assert precision.text_points(ends.checkpoints) == [0, 96]
    thin = precision.on_grid(tables, [0, 32, 96])
    assert sorted(thin.prompts["n_neg"].unique()) == [0, 32, 96]
    assert len(precision.claim_widths(thin, n_boot=50, opts={}))


def test_seed_subsets_and_their_cost(precision, tables):
    sub = precision.with_seeds(tables, [0, 1], [1])
    assert set(sub.prompts["pretrain_seed"]) == {0, 1} and set(sub.prompts["seed"]) == {1}
    jobs = pd.DataFrame({"job": ["base/main/s/pseed-2", "rebound/main/s/pseed-0/tokens-1000"],
                         "stage": ["base", "rebound"], "size": ["s", "s"], "pseed": [2, 0],
                         "seconds": [50.0, 100.0], "checkpoints": [np.nan, 100],
                         "text_checkpoints": [np.nan, 20], "eval_s": [np.nan, 40.0],
                         "text_s": [np.nan, 20.0], "coder_s": [np.nan, np.nan]})
    jobs = precision.split_evaluation(jobs)
    assert jobs.attrs["rho"] == pytest.approx((20 / 20) / (20 / 100))
    scale = precision.seed_scales(jobs, tables, [0, 1], [1])
    assert list(scale) == [0.0, 0.5]
    assert precision.job_cost(jobs, behaviour=scale, text=scale, rest=scale) == 50.0
    assert precision.job_cost(jobs, behaviour=0.5) == 150.0 - 10.0


def test_document_error_matches_subsampling(precision):
    """The linearised ratio SE equals the spread of sum(d)/sum(y) over random document subsets."""
    rng = np.random.default_rng(3)
    y = rng.integers(60, 200, 4000).astype(float)
    d = 0.02 * y + rng.normal(0, 3, 4000)
    n = 50
    draws = [d[i].sum() / y[i].sum() for i in (rng.choice(4000, n, replace=False)
                                               for _ in range(3000))]
    assert precision.ratio_se(d, y, n) == pytest.approx(np.std(draws), rel=0.1)


def test_bits_per_byte_from_documents(precision, tables):
    keys = precision.RUN + ["n_pos", "n_neg"]
    rows = tables.checkpoints[tables.checkpoints["bpb_align"].notna()][keys].head(3)
    docs = pd.concat([rows.assign(set=s, document=i, bits=float(i + 1), bytes=10)
                      for s in ("align", "perturb", "pretrain") for i in range(4)])
    bpb = precision.subsample_bpb(docs, 4, seed=0)
    assert np.allclose(bpb["bpb_align"], 10 / 40)
    new = precision.with_bpb(tables, bpb).checkpoints
    assert (new["bpb_align"] == 0.25).sum() == 3
    assert new["bpb_align"].isna().sum() == tables.checkpoints["bpb_align"].isna().sum()


def test_documents_sum_to_the_job_bits(pretrained_model, tiny_tokenizer, tiny_world_files,
                                       tmp_path):
    """documents.parquet of a rebound job: one row per text checkpoint x set x document whose
    bits sum to metrics.csv's bits_<set> and bytes to bits_<set> / bpb_<set>."""
    from springback import models
    from springback.pipeline import rebound

    base = tmp_path / "base"
    models.save_model(pretrained_model, base, {"size": "s", "tokens": 1, "seed": 0,
                                               "n_params": models.n_params(pretrained_model)},
                      tokenizer=tiny_tokenizer)
    out = tmp_path / "job"
    rebound.rebound(
        base_dir=base, files=tiny_world_files, tasks=["sentiment"], directions=["forward"],
        seeds=[1], n_pos=[8], n_neg=[0, 8, 16], train={"lr": 3e-3, "batch_size": 8,
                                                      "loss": "completion"},
        eval_cfg={"max_new_tokens": 4, "temperature": 1.0, "sample": False, "context": 32,
                  "text_at": [], "batch_size": 64, "documents": {}},
        keep="none", out_metrics=out / "metrics.csv", out_prompts=out / "prompts.parquet",
        out_documents=out / "documents.parquet", out_models=out / "models", ensemble=True)
    metrics, docs = pd.read_csv(out / "metrics.csv"), pd.read_parquet(out / "documents.parquet")
    keys = ["task", "direction", "seed", "n_pos", "n_neg"]
    sums = docs.groupby(keys + ["set"])[["bits", "bytes"]].sum().unstack("set")
    text = metrics.dropna(subset=["bpb_align"]).set_index(keys)
    assert len(text) == 2 * 2 and len(sums) == len(text)  # n_neg 0 and 16, two arms
    for name in ("pretrain", "align", "perturb"):
        got = sums.loc[text.index]
        assert np.allclose(got["bits", name], text[f"bits_{name}"], rtol=1e-6), name
        assert np.allclose(got["bytes", name], text[f"bits_{name}"] / text[f"bpb_{name}"])
    assert docs["bits"].dtype == np.float32 and (docs["bits"] > 0).all()


def test_document_lengths_sum_to_the_code_length(pretrained_model, tiny_world, tiny_tokenizer):
    from springback import compress

    tok = tiny_tokenizer
    texts = list(tiny_world["pretrain"]["text"][:12])
    docs = tok(texts, add_special_tokens=False)["input_ids"]
    batches = compress.layout(docs, context=8, bos_id=tok.bos_token_id,
                              eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, batch_size=5)
    logits = compress.model_logits(pretrained_model)
    each = compress.document_lengths(logits, batches, len(docs))
    assert each.shape == (12,) and (each > 0).all()
    assert each.sum() == pytest.approx(compress.code_length(logits, batches)[0], rel=1e-9)
    alone = compress.code_length(logits, compress.layout(
        docs[3:4], context=8, bos_id=tok.bos_token_id, eos_id=tok.eos_token_id,
        pad_id=tok.pad_token_id))[0]
    assert each[3] == pytest.approx(alone, rel=1e-5)  # a document's bits do not see the others


def test_evaluation_log_lines_with_and_without_the_text_split(precision, tmp_path):
    log = tmp_path / "job.log"
    log.write_text("2026-01-01 00:00:00,000 springback.pipeline.rebound evaluation: 736 "
                   "checkpoints (192 with text metrics) in 98.2 s, 0.133 s per checkpoint; text "
                   "metrics 67.0 s\n")
    assert precision.eval_line(log) == {"checkpoints": 736, "text_checkpoints": 192,
                                        "eval_s": 98.2, "text_s": 67.0}
    log.write_text("x evaluation: 368 checkpoints (96 with text metrics) in 17.0 s, 0.046 s per "
                   "checkpoint\n")
    assert np.isnan(precision.eval_line(log)["text_s"])
    assert precision.eval_line(tmp_path / "missing.log") == {}


def test_full_design_table_checks_the_targets(precision, tables):
    """The per-claim table of the study's own half-widths marks a target missed exactly when the
    largest main-world SFT half-width exceeds it, and the markdown carries every claim."""
    full = precision.claim_widths(tables, n_boot=100, opts={})
    worst = precision.full_design(full, {})
    claim = worst.dropna(subset=["largest, main SFT"]).iloc[0]
    width = claim["largest, main SFT"]
    design = precision.full_design(full, {claim["claim"]: width * 2}).set_index("claim")
    assert design.loc[claim["claim"], "met"] == "yes"
    design = precision.full_design(full, {claim["claim"]: width / 2}).set_index("claim")
    assert design.loc[claim["claim"], "met"] == "no"
    assert (design["largest"] >= design["median half-width"]).all()
    text = precision.markdown(pd.DataFrame({"knob": ["prompts"], "cost_ratio": [0.5]}),
                              design.reset_index(), boot=100, full_cost=10)
    assert all(f"| {c} |" in text for c in design.index)
