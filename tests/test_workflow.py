"""Integration: the real DAG on the smoke config, in a temporary copy of the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW = ["Snakefile", "rules", "workflow", "config", "report", "envs", "profiles"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--cores", "2", "--configfile", "config/smoke.yaml", *args]
    return subprocess.run(cmd, cwd=workdir, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """Run the smoke study once; tests read its outputs."""
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke"))
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results" / "smoke"


@pytest.mark.slow
def test_checkpoint_table(smoke_study):
    table = pd.read_csv(smoke_study / "tables" / "checkpoints.csv")
    required = {"task", "size", "pretrain_tokens", "algo", "n_pos", "n_neg", "seed", "score",
                "kl_to_base", "bpb_pretrain", "bpb_align", "bpb_perturb", "cue_gap", "p_target"}
    assert required <= set(table.columns)
    rebound = table[table["algo"] == "sft"]
    # 2 tasks x 2 bases x 2 directions x 2 seeds x (1 + 2 n_pos) x 4 n_neg
    assert len(rebound) == 2 * 2 * 2 * 2 * 3 * 4
    assert rebound["score"].between(0, 1).all()
    assert (rebound["bpb_pretrain"] > 0).all() and (rebound["kl_to_base"] >= 0).all()
    base_rows = rebound[(rebound["n_pos"] == 0) & (rebound["n_neg"] == 0)]
    assert (base_rows["kl_to_base"].abs() < 1e-6).all()
    moved = rebound[(rebound["n_pos"] > 0) & (rebound["n_neg"] == 0)]
    assert (moved["kl_to_base"] > 0).all()
    ladder = table[table["algo"] == "none"]
    assert sorted(ladder["pretrain_tokens"].unique()) == [0, 30000, 60000]
    trained = ladder.groupby("pretrain_tokens")["bpb_pretrain"].mean()
    assert trained[60000] < trained[0]


@pytest.mark.slow
def test_curves_have_intervals(smoke_study):
    curves = pd.read_csv(smoke_study / "tables" / "curves.csv")
    assert (curves["score_low"] <= curves["score"] + 1e-9).all()
    assert (curves["score"] <= curves["score_high"] + 1e-9).all()
    assert (curves["n_seeds"] == 2).all()


@pytest.mark.slow
def test_figures_written(smoke_study):
    for name in ["rebound_sentiment", "rebound_safety", "compression_sentiment",
                 "compression_safety", "two_phase_sentiment", "two_phase_safety", "ladder",
                 "kl_rebound"]:
        for ext in ("png", "pdf"):
            path = smoke_study / "figures" / f"{name}.{ext}"
            assert path.stat().st_size > 1000, path


@pytest.mark.slow
def test_model_dirs_are_complete(smoke_study):
    for path in (smoke_study / "perturb").rglob("q2-*"):
        assert (path / "model.safetensors").is_file() and (path / "provenance.json").is_file()
    assert not list(smoke_study.rglob(".q*")), "temporary model directories left behind"


def test_lint():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_of_default_study():
    proc = subprocess.run([SNAKEMAKE, "-n", "--cores", "2"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_claims_table(smoke_study):
    claims = pd.read_csv(smoke_study / "claims.csv")
    required = {"claim", "statement", "statistic", "value", "ci_low", "ci_high", "n", "verdict",
                "control_value", "attributable"}
    assert required <= set(claims.columns)
    assert {"C2", "C3", "C8"} <= set(claims["claim"])
    assert set(claims["verdict"]) <= {"supported", "refuted", "inconclusive"}
    decided = claims.dropna(subset=["ci_low", "ci_high"])
    assert (decided["ci_low"] <= decided["ci_high"]).all()
    # the verdict follows the written rule
    for row in decided.itertuples():
        expected = ("supported" if row.ci_low > 0 else "refuted" if row.ci_high < 0
                    else "inconclusive")
        assert row.verdict == expected
    for name in ("elasticity", "kl_rebound", "recovery"):
        assert len(pd.read_csv(smoke_study / "tables" / f"{name}.csv")) > 0


def jobs_to_run(workdir: Path, *args: str, env: dict | None = None,
                change: str | None = None) -> set[str]:
    """Rules a dry run would execute (``snakemake -n --quiet rules``), optionally with a config
    change given as YAML text (a second config file, so numbers stay numbers)."""
    extra = []
    if change:
        (workdir / "config" / "change.yaml").write_text(change)
        extra = ["config/change.yaml"]
    cmd = [SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "2", "--configfile",
           "config/smoke.yaml", *extra, *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env or ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line.split() for line in proc.stdout.splitlines()]
    return {w[0] for w in lines if len(w) == 2 and w[1].isdigit() and w[0] not in ("total", "job")}


TRAINING = {"world", "tokenizer", "pretrain", "align", "perturb"}


@pytest.mark.slow
def test_complete_study_has_nothing_to_do(smoke_study):
    assert jobs_to_run(smoke_study.parents[1]) == set()


@pytest.mark.slow
def test_figure_and_evaluation_changes_retrain_nothing(smoke_study):
    workdir = smoke_study.parents[1]
    figure_only = jobs_to_run(workdir, change="claims: {kl_epsilon: 0.02}\n")
    assert figure_only and not figure_only & (TRAINING | {"evaluate_rebound"})
    evaluation = jobs_to_run(workdir, change="evaluate: {max_new_tokens: 5}\n")
    assert "evaluate_rebound" in evaluation and not evaluation & TRAINING


@pytest.mark.slow
def test_library_change_reruns_only_the_rules_that_use_it(smoke_study, tmp_path):
    library = tmp_path / "src"
    shutil.copytree(ROOT / "src", library)
    plots = library / "springback" / "plots.py"
    plots.write_text(plots.read_text() + "\n# a change\n")
    env = {**ENV, "PYTHONPATH": str(library)}
    rerun = jobs_to_run(smoke_study.parents[1], env=env)
    assert rerun == {"figures", "manifest", "all"} or rerun == {"figures", "manifest"}


@pytest.mark.slow
def test_report_renders_every_figure_and_the_claims(smoke_study):
    workdir = smoke_study.parents[1]
    report = smoke_study / "report.html"
    proc = subprocess.run([SNAKEMAKE, "--cores", "1", "--configfile", "config/smoke.yaml",
                           "--report", str(report)], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = report.read_text(errors="replace")
    for name in ["rebound_sentiment", "two_phase_safety", "kl_rebound", "ladder", "claims.csv"]:
        assert name in html, name
