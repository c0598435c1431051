"""Provenance records written beside every model directory and metrics file."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("springback", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers",
            "snakemake")


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


def _imports(path: Path) -> set[str]:
    """springback modules named by the import statements of a source file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] == "springback"}


def import_closure(library: Path, sources) -> list[Path]:
    """The springback source files that ``sources`` (paths of Python files) import, directly or
    transitively, in a fixed order (``library`` is the installed package folder)."""
    todo, seen, found = [Path(s) for s in sources], set(), set()
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        if path.is_relative_to(library):
            found.add(path)
        for name in _imports(path):
            rel = Path(*name.split(".")[1:])
            todo += [library / f"{rel}.py", library / rel / "__init__.py"]
    return sorted(found)


def record(params: dict, **fields) -> dict:
    """A provenance record: config hash of ``params``, the params, versions, commit, extra fields."""
    return {"config_hash": config_hash(params), "params": params, "versions": versions(),
            "git_commit": git_commit(), **fields}


def base_keys(prov: dict) -> dict:
    """The columns that name a base checkpoint, from its provenance record (a fetched hub model
    has no world and one seed, 0)."""
    return {"world": prov.get("world", "hub"), "size": prov["size"],
            "pretrain_seed": prov.get("seed", 0), "pretrain_tokens": prov["tokens"],
            "params": prov["n_params"],
            "params_nonembedding": prov.get("n_params_nonembedding", prov["n_params"])}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(root: str | Path, out: str | Path, *, skip: tuple[str, ...] = ("logs",
                   "benchmarks")) -> None:
    """``manifest.json``: every file under a study folder (but logs and benchmarks, which change
    from run to run) with its size and sha256, plus the versions and commit that made them."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != Path(out).name
                   and p.relative_to(root).parts[0] not in skip and not p.name.startswith("."))
    entries = {str(p.relative_to(root)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
               for p in files}
    Path(out).write_text(json.dumps({"study": root.name, "versions": versions(),
                                     "git_commit": git_commit(), "files": entries}, indent=1))
