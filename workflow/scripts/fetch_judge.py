# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.fetch import fetch_spec

fetch_spec(snakemake.params.judge, snakemake.output[0])
