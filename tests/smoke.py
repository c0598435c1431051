"""Shared helpers of the tests that run the real DAG: copies of the workflow, the Snakemake
executable, and the environment (offline hub, no telemetry)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW = ["Snakefile", "rules", "workflow", "config", "report", "envs", "profiles"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
       "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
SMOKE = [SNAKEMAKE, "--cores", "2", "--configfile", "config/smoke.yaml"]


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy(src, dest / name)
    return dest


def copy_runnable(dest: Path) -> Path:
    """The workflow plus src/springback (for tests that point PYTHONPATH at a changed copy)."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_workflow(dest)
    if not (dest / "src").exists():
        shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def run_smoke(workdir: Path, *extra: str, env: dict | None = None,
              timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([*SMOKE, *extra], cwd=workdir, env=env or ENV, capture_output=True,
                          text=True, timeout=timeout)


def tracked_changes() -> bool:
    """Uncommitted changes to tracked files (the archive is the code at a commit)."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                         capture_output=True, text=True)
    return out.returncode != 0 or bool(out.stdout.strip())


def unpack_archive(study: Path, dest: Path) -> tuple[Path, set[str]]:
    """Build the reproducibility archive of ``study`` from the committed tree (the README's
    ``make archive``), unpack it into ``dest``; (the unpacked project root, the member names)."""
    import tarfile

    out = dest / "springback.tar.gz"
    proc = subprocess.run([sys.executable, "-m", "springback.archive", str(out), str(study)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        tar.extractall(dest / "unpacked", filter="data")
    return dest / "unpacked" / "springback", names
