"""The compute-floor benchmark (benchmarks/study_floor.py) reads a finished study and counts its
FLOPs consistently with the study's own models and grids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "study_floor.py"


def test_floor_counts_the_smoke_study(smoke_study, tmp_path):
    out = tmp_path / "floor.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(smoke_study), "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(out.read_text())
    flops, units = got["flops"], got["units"]
    assert got["peak_flops"] > 1e9
    # a training token costs at least 6 x the parameters its matmuls touch (tied head included)
    prov = json.loads(next((smoke_study / "base" / "main" / "s").glob("pseed-0/tokens-*"))
                      .joinpath("provenance.json").read_text())
    s = next(v for k, v in units.items() if k.startswith("s/"))
    assert s["pretrain_token"] >= 6 * prov["n_params"] * 0.99
    assert s["text"] > s["behaviour"] > 0
    # the stages' totals, counted independently from the aggregated checkpoint table and the
    # config: the script's per-unit FLOPs times the study's tokens, examples and checkpoints
    expected = expected_floor(pd.read_csv(smoke_study / "tables" / "checkpoints.csv"), units)
    for stage, value in expected.items():
        assert flops[stage] == pytest.approx(value, rel=1e-9), stage
    assert flops["modelled total"] == pytest.approx(sum(expected.values()), rel=1e-9)
    assert "floor of the modelled stages" in proc.stdout


def expected_floor(checkpoints: pd.DataFrame, units: dict) -> dict[str, float]:
    """FLOPs per stage from the checkpoint table: every pretraining job's largest budget x its
    size's FLOPs per token; every rebound run's examples (phase 1 to the largest n_pos, phase 2
    to the largest n_neg from every snapshot and from the base) x FLOPs per example; every
    rebound checkpoint x one behaviour evaluation, plus its text metrics where measured."""
    unit = {tuple(k.split("/")): v for k, v in units.items()}
    ladder = checkpoints[checkpoints["algo"] == "none"]
    jobs = ladder.groupby(["world", "size", "pretrain_seed"])["pretrain_tokens"].max()
    pretrain = sum(tokens * next(v["pretrain_token"] for (size_, _), v in unit.items()
                                 if size_ == size) for (_, size, _), tokens in jobs.items())
    # the rebound jobs' runs: plain SFT, less the mitigation experiment's plain-SFT arm (its own
    # base, outside the floor's stages, like the other arms and the algorithms)
    arm = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["mitigation"]["tokens"]
    rebound = checkpoints[(checkpoints["algo"] == "sft") & (checkpoints["pretrain_tokens"] != arm)]
    n_pos, n_neg = sorted(rebound["n_pos"].unique()), rebound["n_neg"].max()
    per_run = max(n_pos) + len(n_pos) * n_neg
    runs = rebound.groupby(["size", "task"])[["role", "world", "pretrain_tokens",
                                              "pretrain_seed", "direction", "seed"]].apply(
        lambda f: len(f.drop_duplicates()))
    training = sum(n * per_run * unit[key]["finetune_example"] for key, n in runs.items())
    evaluation = sum(len(f) * unit[key]["behaviour"]
                     + f["bpb_pretrain"].notna().sum() * unit[key]["text"]
                     for key, f in rebound.groupby(["size", "task"]))
    return {"pretrain": pretrain, "rebound training": training,
            "rebound evaluation": evaluation}


def test_rebound_logs_report_evaluation_cost(smoke_study):
    """Every rebound job logs how many checkpoints it evaluated (and with text metrics) and the
    seconds they took: the counts are the job's own metrics.csv rows, and the seconds fit in
    the job's wall time (its benchmark file)."""
    import re

    for metrics in (smoke_study / "rebound").rglob("metrics.csv"):
        rel = metrics.parent.relative_to(smoke_study / "rebound")
        text = (smoke_study / "logs" / "rebound" / f"{rel}.log").read_text()
        found = re.findall(r"evaluation: (\d+) checkpoints \((\d+) with text metrics\) in "
                           r"([\d.]+) s, ([\d.]+) s per checkpoint", text)
        assert len(found) == 1, rel
        n, n_text, seconds, _ = found[0]
        frame = pd.read_csv(metrics)
        assert int(n) == len(frame)
        assert int(n_text) == int(frame["bpb_pretrain"].notna().sum())
        wall = pd.read_csv(smoke_study / "benchmarks" / "rebound" / f"{rel}.tsv", sep="\t")["s"]
        assert 0 < float(seconds) <= float(wall.iloc[0]), rel


def test_stage_spans_read_snakemake_output():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from study_overhead import stage_spans

    log = """[Sun Nov 29 18:17:17 2026]
localrule world:
    output: results/toy/world/pretrain.parquet
    jobid: 4
[Sun Nov 29 18:17:26 2026]
Finished jobid: 4 (Rule: world)
[Sun Nov 29 18:17:30 2026]
localrule pretrain:
    jobid: 18
[Sun Nov 29 18:17:30 2026]
rule pretrain:
    jobid: 8
[Sun Nov 29 18:19:05 2026]
Finished jobid: 8 (Rule: pretrain)
[Sun Nov 29 18:19:20 2026]
Finished jobid: 18 (Rule: pretrain)
"""
    spans = stage_spans(log)
    assert list(spans.index) == ["world", "pretrain"]
    assert spans.loc["world"].tolist() == [1, 0.0, 9.0]
    assert spans.loc["pretrain"].tolist() == [2, 13.0, 123.0]
