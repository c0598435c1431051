# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.pipeline.pairs import fetch

fetch(model=snakemake.params.model, outdir=snakemake.output.model)
