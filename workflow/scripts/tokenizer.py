# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.pipeline.world import build_tokenizer

build_tokenizer(snakemake.input.corpus, snakemake.output[0])
