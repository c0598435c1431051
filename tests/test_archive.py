"""The reproducibility archive: built from the committed tree, unpacked elsewhere, it holds the
code, the exact package lock and the manifest, and the smoke study rerun from the unpacked code
gives a byte-identical checkpoint table."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest

from smoke import ENV, ROOT, run_smoke


def _tracked_changes() -> bool:
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                         capture_output=True, text=True)
    return out.returncode != 0 or bool(out.stdout.strip())


@pytest.mark.slow
def test_archive_round_trip_reruns_the_smoke_study_identically(smoke_study, tmp_path):
    if _tracked_changes():
        pytest.skip("uncommitted changes: the archive is the code at a commit (CI has a clean clone)")
    out = tmp_path / "springback.tar.gz"
    proc = subprocess.run([sys.executable, "-m", "springback.archive", str(out), str(smoke_study)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "unpacked", filter="data")
    root = tmp_path / "unpacked" / "springback"
    for name in ("Snakefile", "config/config.yaml", "config/schema.yaml", "src/springback/world.py",
                 "requirements.lock", "ARCHIVE.json", "smoke.manifest.json"):
        assert f"springback/{name}" in names, name
    lock = (root / "requirements.lock").read_text().splitlines()
    assert any(line.startswith("torch==") for line in lock)
    assert any(line.startswith("snakemake==") for line in lock)
    # rerun from the unpacked code (its own src first on the path, the same installed packages)
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(root / "src"), ENV.get("PYTHONPATH", "")])}
    rerun = run_smoke(root, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    table = "tables/checkpoints.csv"
    assert (root / "results" / "smoke" / table).read_bytes() == (smoke_study / table).read_bytes()


def test_archive_refuses_uncommitted_changes(tmp_path):
    from springback.archive import build_archive

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "a.txt").write_text("1\n")
    subprocess.run([*git, "add", "a.txt"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "a"], cwd=repo, check=True)
    build_archive(tmp_path / "ok.tar.gz", repo=repo)
    with tarfile.open(tmp_path / "ok.tar.gz") as tar:
        assert "springback/a.txt" in tar.getnames()
    (repo / "a.txt").write_text("2\n")
    with pytest.raises(RuntimeError, match="uncommitted changes"):
        build_archive(tmp_path / "bad.tar.gz", repo=repo)
    assert not (tmp_path / "bad.tar.gz").exists()
