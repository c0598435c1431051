# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.pairs import perturb_pair

perturb_pair(
    pair=snakemake.wildcards.pair,
    base_dir=snakemake.input.base,
    aligned_dir=snakemake.input.aligned,
    task=snakemake.wildcards.task,
    files=dict(snakemake.input.items()),
    direction=snakemake.params.direction,
    seed=int(snakemake.wildcards.seed),
    n_neg=snakemake.params.n_neg,
    train=snakemake.params.train,
    adapter=snakemake.params.adapter,
    trainer=snakemake.params.trainer,
    checkpointing=snakemake.params.checkpointing,
    eval_cfg=snakemake.params.evaluate,
    judges=snakemake.params.judges,
    runtime=snakemake.params.runtime,
    out_metrics=snakemake.output.metrics,
    out_prompts=snakemake.output.prompts,
)
