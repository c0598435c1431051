"""The compute-floor benchmark (benchmarks/study_floor.py) reads a finished study and counts its
FLOPs consistently with the study's own models and grids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

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
    for stage in ("pretrain", "rebound training", "rebound evaluation"):
        assert flops[stage] > 0, stage
    assert flops["modelled total"] == pytest.approx(
        flops["pretrain"] + flops["rebound training"] + flops["rebound evaluation"])
    # a training token costs at least 6 x the parameters its matmuls touch (tied head included)
    prov = json.loads(next((smoke_study / "base" / "main" / "s").glob("pseed-0/tokens-*"))
                      .joinpath("provenance.json").read_text())
    s = next(v for k, v in units.items() if k.startswith("s/"))
    assert s["pretrain_token"] >= 6 * prov["n_params"] * 0.99
    assert s["text"] > s["behaviour"] > 0
    # the evaluation floor is the study's checkpoints x the per-checkpoint FLOPs
    tables = pd.concat(pd.read_csv(p) for p in (smoke_study / "rebound").rglob("metrics.csv"))
    assert flops["rebound evaluation"] >= len(tables) * min(u["behaviour"] for u in units.values())
    assert "floor of the modelled stages" in proc.stdout


def test_rebound_logs_report_evaluation_cost(smoke_study):
    """Every rebound job logs how many checkpoints it evaluated (and with text metrics) and the
    seconds they took: the counts must be the job's own metrics.csv rows."""
    import re

    for metrics in (smoke_study / "rebound").rglob("metrics.csv"):
        rel = metrics.parent.relative_to(smoke_study / "rebound")
        text = (smoke_study / "logs" / "rebound" / f"{rel}.log").read_text()
        found = re.findall(r"evaluation: (\d+) checkpoints \((\d+) with text metrics\) in "
                           r"([\d.]+) s, ([\d.]+) s per checkpoint", text)
        assert len(found) == 1, rel
        n, n_text, seconds, each = found[0]
        frame = pd.read_csv(metrics)
        assert int(n) == len(frame)
        assert int(n_text) == int(frame["bpb_pretrain"].notna().sum())
        assert float(seconds) > 0 and float(each) == pytest.approx(float(seconds) / int(n), abs=2e-3)


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
