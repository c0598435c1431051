"""Fetching a model folder: a hub id downloaded, or a local directory copied, into the study.

A module of its own beside ``springback.models``, not inside it: ``models`` builds, loads and
saves models with torch and is imported by every training and evaluation job, while fetching
only copies or downloads files (safetensors weights, config, tokenizer) and records where they
came from. Rules hash the library modules their script imports (``code_hash`` in
rules/common.smk), so an edit here changes the code hash of the fetch rules (fetch_base,
fetch_judge, fetch_pair) only, not that of the training and evaluation rules. The one thing
both share, writing a folder atomically, is ``models.atomic_dir``.
"""

from __future__ import annotations

import json
import re
import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Sequence

from springback.models import atomic_dir

MODEL_PATTERNS = ("*.safetensors", "*.json", "tokenizer*", "*.model", "*.txt", "*.jinja")


def _copy_local(src: Path, dest: Path, patterns: Sequence[str]) -> None:
    """Copy the top-level files of ``src`` that match ``patterns`` (following links)."""
    for file in sorted(src.iterdir()):
        if file.is_file() and any(fnmatch(file.name, p) for p in patterns):
            shutil.copy2(file, dest / file.name)


def _download(model_id: str, dest: Path, revision: str | None,
              patterns: Sequence[str]) -> str | None:
    """snapshot_download into ``dest``; returns the resolved commit hash if recorded. A string
    that cannot be a hub id (huggingface_hub's own check: absolute, ./ or ~, several slashes) is
    a missing local directory."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        snapshot_download(model_id, revision=revision, allow_patterns=list(patterns),
                          local_dir=dest)
    except HFValidationError as err:
        raise FileNotFoundError(f"model directory {model_id} does not exist (nor is it a hub id: "
                                f"{str(err).splitlines()[0]})") from None
    meta = dest / ".cache" / "huggingface" / "download" / "config.json.metadata"
    commit = meta.read_text().splitlines()[0].strip() if meta.is_file() else None
    shutil.rmtree(dest / ".cache", ignore_errors=True)
    if commit is None and revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        commit = revision
    return commit


def fetch_model(model_id: str, dest: str | Path, revision: str | None = None,
                allow_patterns: Sequence[str] = MODEL_PATTERNS) -> Path:
    """Put a model (weights: safetensors only, config, tokenizer files) into ``dest``, atomically.

    A local directory is copied; anything else is a hub id, downloaded with
    ``huggingface_hub.snapshot_download`` (which honours HF_HUB_OFFLINE and the hub cache).
    Writes ``provenance.json``: id, revision, resolved commit (if known), the source's own
    provenance (if it had one) and the files. A directory without safetensors is refused.
    """
    dest = Path(dest)
    local = Path(model_id).expanduser()
    with atomic_dir(dest) as tmp:
        if local.is_dir():
            _copy_local(local, tmp, allow_patterns)
            commit, upstream = None, _read_json(local / "provenance.json")
        else:
            commit, upstream = _download(model_id, tmp, revision, allow_patterns), None
        if not any(tmp.glob("*.safetensors")):
            raise ValueError(f"model {model_id} has no *.safetensors weights (springback loads "
                             "safetensors only; convert .bin/.pt checkpoints first)")
        files = sorted(p.name for p in tmp.iterdir() if p.name != "provenance.json")
        record = {"id": model_id, "revision": revision, "commit": commit,
                  "source": "local" if local.is_dir() else "hub", "files": files}
        if upstream:
            record["upstream"] = upstream
        (tmp / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    return dest


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def fetch_spec(spec: dict, dest: str | Path) -> Path:
    """``fetch_model`` of a config entry that names a model by ``id`` and, optionally,
    ``revision`` (hub.models.*, hub.judges.*, pairs.*.base / aligned)."""
    return fetch_model(spec["id"], dest, revision=spec.get("revision"))
