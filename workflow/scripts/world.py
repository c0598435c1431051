# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from pathlib import Path

from springback.pipeline.world import build_world

build_world(snakemake.params.world, Path(snakemake.output.pretrain).parent)
