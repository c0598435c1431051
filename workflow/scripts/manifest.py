# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.provenance import write_manifest

write_manifest(snakemake.params.root, snakemake.output[0])
