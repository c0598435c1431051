# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.base import pretrain_ladder

pretrain_ladder(
    corpus=snakemake.input.pretrain,
    tokenizer_dir=snakemake.input.tokenizer,
    world=snakemake.wildcards.world,
    size=snakemake.wildcards.size,
    seed=int(snakemake.wildcards.pseed),
    arch=snakemake.params.arch,
    train_cfg=snakemake.params.train,
    tokens=snakemake.params.tokens,
    outdirs=snakemake.params.checkpoints,
    device=snakemake.params.runtime["device"],
)
