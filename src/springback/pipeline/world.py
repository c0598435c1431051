"""Stage `world` (rules/world.smk): the synthetic world's datasets and its tokenizer."""

from __future__ import annotations

import logging
from pathlib import Path

from springback import data, world

log = logging.getLogger(__name__)


def build_world(world_cfg: dict, outdir: str | Path, *, mirror: bool = False) -> None:
    """Generate the synthetic world's datasets (and the mirror world's pretraining corpus) as
    parquet files under ``outdir``."""
    tables = world.generate_world(world.WorldConfig(**world_cfg), mirror=mirror)
    for stem, columns in tables.items():
        data.write_table(columns, Path(outdir) / f"{stem}.parquet")
    log.info("world: %d tables, %d pretraining documents", len(tables), len(tables["pretrain"]["text"]))


def build_tokenizer(corpus: str | Path, outdir: str | Path) -> None:
    from springback.tokenizer import train_tokenizer

    texts = data.read_table(corpus, ("text",))["text"].tolist()
    tok = train_tokenizer(texts)
    tok.save_pretrained(str(outdir))
    log.info("tokenizer: %d words", len(tok))
