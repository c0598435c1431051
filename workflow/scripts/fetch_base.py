# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.pipeline.hub import fetch_base

fetch_base(
    model=snakemake.params.model,
    size=snakemake.wildcards.size,
    tokens=snakemake.params.model["tokens"],
    random_init=0 in snakemake.params.tokens,
    seed=int(snakemake.wildcards.pseed),
    outdir=snakemake.output.models,
)
