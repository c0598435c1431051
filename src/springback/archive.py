"""A reproducibility archive that works on the default install (no conda needed).

``python -m springback.archive OUT.tar.gz [STUDY_DIR]`` writes one tarball with:
- the code at its commit: every git-tracked file (``git archive HEAD``; uncommitted changes are
  refused, so the archive is exactly a commit);
- ``requirements.lock``: the exact packages installed in this environment (``pip freeze``, the
  project itself excluded), so ``pip install -r requirements.lock`` rebuilds it;
- ``ARCHIVE.json``: commit, Python version, platform and how to rerun;
- the study's ``manifest.json`` (every output with its sha256), when a study folder is given.

Where conda exists, Snakemake's own ``--archive`` additionally packs the conda environments.
To rerun from the archive: unpack it, ``make install`` (or ``pip install -r requirements.lock``
then ``pip install -e .``), and run the same snakemake command; compare outputs with the manifest.
"""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path


def _git(*args: str, cwd: Path) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


def frozen_packages() -> str:
    """``pip freeze`` of this interpreter, without the project itself (installed editable)."""
    out = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                         capture_output=True, text=True, check=True).stdout
    return "".join(line + "\n" for line in out.splitlines()
                   if line and not line.lower().startswith("springback"))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def build_archive(out: str | Path, *, repo: str | Path = ".", study: str | Path | None = None,
                  prefix: str = "springback") -> Path:
    """Write the archive; refuses a working tree with uncommitted changes to tracked files."""
    repo, out = Path(repo).resolve(), Path(out)
    if _git("status", "--porcelain", "--untracked-files=no", cwd=repo).strip():
        raise RuntimeError(f"uncommitted changes in {repo}: commit them first, the archive is "
                           "the code at a commit")
    commit = _git("rev-parse", "HEAD", cwd=repo).decode().strip()
    code = tarfile.open(fileobj=io.BytesIO(_git("archive", "--format=tar", f"--prefix={prefix}/",
                                                "HEAD", cwd=repo)))
    meta = {"commit": commit, "python": platform.python_version(), "platform": platform.platform(),
            "rerun": "make install && make study (or the same snakemake command)"}
    tmp = out.with_name(f".{out.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for member in code.getmembers():
            tar.addfile(member, code.extractfile(member) if member.isfile() else None)
        _add(tar, f"{prefix}/requirements.lock", frozen_packages().encode())
        _add(tar, f"{prefix}/ARCHIVE.json", json.dumps(meta, indent=1).encode())
        if study is not None and (Path(study) / "manifest.json").is_file():
            _add(tar, f"{prefix}/{Path(study).name}.manifest.json",
                 (Path(study) / "manifest.json").read_bytes())
    tmp.replace(out)
    return out


def main(argv: list[str]) -> None:
    if len(argv) not in (1, 2):
        raise SystemExit("usage: python -m springback.archive OUT.tar.gz [results/<study>]")
    try:
        path = build_archive(argv[0], study=argv[1] if len(argv) == 2 else None)
    except (RuntimeError, subprocess.CalledProcessError) as err:
        raise SystemExit(f"springback: error: {err}") from None
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
