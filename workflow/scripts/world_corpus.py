# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.pipeline.world import build_corpus

build_corpus(snakemake.params.world, mirror=snakemake.params.mirror,
             prior=snakemake.params.prior, pretrain=snakemake.output.pretrain,
             pretrain_heldout=snakemake.output.pretrain_heldout)
