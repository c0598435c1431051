"""Stage `world` (rules/world.smk): the synthetic world's datasets and its tokenizer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from springback import data, world
from springback.tokenizer import train_tokenizer

log = logging.getLogger(__name__)


def build_world(world_cfg: dict, files: Mapping[str, str | Path]) -> None:
    """Generate the main world's datasets (D_p, task sets, resistance sets) and write each to its
    file: ``files`` names one per table, by its stem with ``_`` for ``/`` (pretrain,
    sentiment_align, resistance_train, ...)."""
    tables = {stem.replace("/", "_"): columns for stem, columns in
              world.generate_world(world.WorldConfig(**world_cfg)).items()}
    if set(tables) != set(files):
        raise ValueError(f"the world writes {sorted(tables)}, the job names {sorted(files)}")
    for name, columns in tables.items():
        data.write_table(columns, files[name])
    log.info("world: %d tables, %d pretraining documents", len(tables), len(tables["pretrain"]["text"]))


def build_corpus(world_cfg: dict, *, mirror: bool, prior: float, pretrain: str | Path,
                 pretrain_heldout: str | Path) -> None:
    """Write another pretraining world's D_p and its held-out part (``world.generate_corpus``:
    the main world's documents with the behaviour mirrored and/or shifted by ``prior`` nats)."""
    tables = world.generate_corpus(world.WorldConfig(**world_cfg), mirror=mirror, prior=prior)
    data.write_table(tables["pretrain"], pretrain)
    data.write_table(tables["pretrain_heldout"], pretrain_heldout)
    log.info("world corpus (mirror %s, prior %g nats): %d pretraining documents", mirror, prior,
             len(tables["pretrain"]["text"]))


def build_tokenizer(corpus: str | Path, outdir: str | Path) -> None:
    """Train the word-level tokenizer on D_p and save it into ``outdir``."""
    texts = data.read_table(corpus, ("text",))["text"].tolist()
    tok = train_tokenizer(texts)
    tok.save_pretrained(str(outdir))
    log.info("tokenizer: %d words", len(tok))
