"""Stage `hub` (rules/hub.smk): hub mode's replacement of the world and pretraining stages.

Datasets become the same task tables the toy world writes; base models and judges are fetched
into the study folder (safetensors only) with a provenance record, so everything downstream is
the toy code path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from springback import hub, models

log = logging.getLogger(__name__)


def write_data(*, datasets: dict, pretrain_text: dict, sizes: dict, seed: int,
               tasks: list[str], outdir: str | Path) -> None:
    """Adapt every task's dataset into task tables, and sample pretraining-style text."""
    outdir = Path(outdir)
    for task in tasks:
        spec = datasets[task]
        counts = hub.write_task(task, spec["source"], spec.get("mapping", {}), sizes, seed,
                                outdir / task)
        log.info("task %s: %s", task, counts)
    hub.write_pretrain(pretrain_text["source"], pretrain_text.get("n_docs", 200), seed,
                       outdir / "pretrain_heldout.parquet")


def count_params(model_dir: Path, *, skip: tuple[str, ...] = ()) -> int:
    """Parameters stored in a model's safetensors files (read from the headers only), leaving
    out tensors whose name contains any of ``skip``."""
    from safetensors import safe_open

    total = 0
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            total += sum(_numel(handle.get_slice(name).get_shape()) for name in handle.keys()
                         if not any(s in name for s in skip))
    return total


def _numel(shape) -> int:
    n = 1
    for dim in shape:
        n *= int(dim)
    return n


def fetch_base(*, model: dict, size: str, tokens: int, outdir: str | Path,
               random_init: bool = False, seed: int = 0) -> None:
    """Fetch one base checkpoint into ``<outdir>/tokens-<tokens>`` and record size and tokens;
    ``random_init``: also write its random initialisation (same config and tokenizer, weights
    drawn with ``seed``) as ``<outdir>/tokens-0``, the paired control of a released model."""
    dest = hub.fetch_model(model["id"], Path(outdir) / f"tokens-{tokens}",
                           revision=model.get("revision"))
    describe(dest, size=size, tokens=tokens)
    if random_init:
        twin = Path(outdir) / "tokens-0"
        random_twin(dest, twin, seed=seed)
        describe(twin, size=size, tokens=0)


def describe(dest: Path, *, size: str, tokens: int) -> None:
    """Add size, tokens and parameter counts to a model folder's provenance."""
    record = json.loads((dest / "provenance.json").read_text())
    record.update(size=size, tokens=tokens, n_params=count_params(dest),
                  n_params_nonembedding=count_params(dest, skip=models.EMBEDDING_NAMES))
    (dest / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True))


def random_twin(src: Path, dest: Path, *, seed: int) -> None:
    """The architecture of ``src`` at its random initialisation (seeded, fp32), with the same
    tokenizer, written atomically."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(src)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    record = {**json.loads((src / "provenance.json").read_text()), "random_init_seed": seed}
    with models.atomic_dir(dest) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for file in src.iterdir():
            if file.is_file() and (file.name.startswith(("tokenizer", "special_tokens"))
                                   or file.suffix in (".model", ".jinja")):
                shutil.copy2(file, tmp / file.name)
        (tmp / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    log.info("random initialisation of %s written to %s (seed %d)", src, dest, seed)


def fetch_judge(*, judge: dict, outdir: str | Path) -> None:
    hub.fetch_model(judge["id"], outdir, revision=judge.get("revision"))
