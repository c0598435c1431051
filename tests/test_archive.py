"""The reproducibility archive: built from the committed tree, unpacked elsewhere, it holds the
code, the exact package lock and the manifest, and the smoke study rerun from the unpacked code
gives a byte-identical checkpoint table."""

from __future__ import annotations

import subprocess
import tarfile

import pytest

from killed import OUTPUTS


@pytest.mark.slow
def test_archive_round_trip_reruns_the_smoke_study_identically(smoke_study, unpacked_archive,
                                                               killed_run):
    """The archive holds code, config, schema, package lock and manifest; the smoke study run
    from the unpacked code (tests/test_reliability.py: killed mid-run and resumed there, its own
    src first on the path, the same installed packages) gives byte-identical rebound job
    outputs."""
    if unpacked_archive is None:
        pytest.skip("uncommitted changes: the archive is the code at a commit (CI has a clean clone)")
    root, names = unpacked_archive
    for name in ("Snakefile", "config/config.yaml", "config/schema.yaml", "src/springback/world.py",
                 "requirements.lock", "ARCHIVE.json", "smoke.manifest.json"):
        assert f"springback/{name}" in names, name
    lock = (root / "requirements.lock").read_text().splitlines()
    assert any(line.startswith("torch==") for line in lock)
    assert any(line.startswith("snakemake==") for line in lock)
    assert killed_run["workdir"] == root.resolve()
    for name in OUTPUTS:  # the killed-and-resumed run builds the main base's rebound jobs
        assert (root / "results" / "smoke" / name).read_bytes() == (smoke_study / name).read_bytes()


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
