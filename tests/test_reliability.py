"""Reliability of the smoke study: deterministic, offline, and resumable after a hard kill.

Two runs of the smoke study: the session's shared clean run (conftest.py) and one, of the main
base's rebound jobs only (tests/killed.py), with the network blocked in every Python process that
is killed (SIGKILL to its whole process group) while it fine-tunes, then resumed (still offline)
with --rerun-incomplete. Both must give byte-identical job outputs (metrics.csv and
prompts.parquet of each rebound job). The second runs from the unpacked reproducibility archive
(tests/test_archive.py reads it too), so one run tests both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from killed import OUTPUTS, incomplete_models


def outputs(workdir: Path) -> dict[str, bytes]:
    return {name: (workdir / "results" / "smoke" / name).read_bytes() for name in OUTPUTS}


@pytest.mark.slow
def test_offline_run_makes_no_connection(killed_run):
    log = killed_run["netlog"].read_text().splitlines()
    loaded = [line for line in log if " loaded " in line]
    assert any("snakemake" in line for line in loaded), "sitecustomize not loaded by Snakemake"
    assert any("rebound.py" in line for line in loaded), "sitecustomize not loaded by the jobs"
    assert not [line for line in log if " blocked " in line], "connections were attempted"


@pytest.mark.slow
def test_kill_leaves_no_half_written_model(killed_run):
    assert not killed_run["survivors"], f"jobs outlived the kill: {killed_run['survivors']}"
    assert not killed_run["incomplete"], f"incomplete model directories: {killed_run['incomplete']}"


@pytest.mark.slow
def test_killed_offline_resumed_run_is_identical_to_a_clean_run(smoke_study, killed_run):
    study = killed_run["workdir"] / "results" / "smoke"
    assert not incomplete_models(study)
    assert not list(study.rglob(".q*")), "temporary model directories left behind"
    resumed, clean = outputs(killed_run["workdir"]), outputs(smoke_study.parents[1])
    for name in OUTPUTS:
        assert resumed[name] == clean[name], f"{name} differs after kill and offline resume"
