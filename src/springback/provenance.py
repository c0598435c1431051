"""Provenance records written beside every model directory and metrics file."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("springback", "torch", "transformers", "trl", "datasets", "tokenizers", "snakemake")


def config_hash(params: dict) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of what affected an output."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def git_commit(cwd: str | Path = ".") -> str:
    """The git commit of the working tree (with '+dirty' if modified), or 'unknown'."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+dirty" if dirty else "")) if head else "unknown"


def record(params: dict, **fields) -> dict:
    """A provenance record: config hash of ``params``, the params, versions, commit, extra fields."""
    return {"config_hash": config_hash(params), "params": params, "versions": versions(),
            "git_commit": git_commit(), **fields}
