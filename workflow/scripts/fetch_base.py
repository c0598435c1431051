# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.pipeline.hub import fetch_base

fetch_base(
    model=snakemake.params.model,
    size=snakemake.wildcards.size,
    checkpoints=snakemake.params.checkpoints,
)
