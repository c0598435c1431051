"""Stage `hub` (rules/hub.smk): hub mode's replacement of the pretraining stage.

A base model is fetched into the study folder (springback.fetch: safetensors only, with a
provenance record), described like a pretrained checkpoint (size, tokens, parameter counts) and,
where a base asks for it, joined by its seeded random initialisation, so everything downstream is
the toy code path. The other hub rules call the library directly (hub_data, the world stage's
counterpart: springback.hubdata.write_data; fetch_judge: springback.fetch.fetch_spec).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Mapping

from springback import fetch, models

log = logging.getLogger(__name__)


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


def fetch_base(*, model: dict, size: str, checkpoints: Mapping[int, str | Path],
               seed: int = 0) -> None:
    """Fetch one base model into its checkpoint folder ``checkpoints[model["tokens"]]`` and
    record size and tokens; a folder for tokens 0 gets its random initialisation (same config
    and tokenizer, weights drawn with ``seed``), the paired control of a released model."""
    tokens = model["tokens"]
    dest = fetch.fetch_spec(model, checkpoints[tokens])
    describe(dest, size=size, tokens=tokens)
    if 0 in checkpoints and tokens != 0:
        random_twin(dest, Path(checkpoints[0]), seed=seed)
        describe(Path(checkpoints[0]), size=size, tokens=0)


def describe(dest: Path, *, size: str, tokens: int) -> None:
    """Add size, tokens and parameter counts to a model folder's provenance."""
    record = json.loads((dest / "provenance.json").read_text())
    record.update(size=size, tokens=tokens, n_params=count_params(dest),
                  n_params_nonembedding=count_params(dest, skip=models.EMBEDDING_NAMES))
    (dest / "provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True))


def random_twin(src: Path, dest: Path, *, seed: int) -> None:
    """The architecture of ``src`` at its random initialisation (seeded, fp32), with the same
    tokenizer, written atomically."""
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

