# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.evaluation import evaluate_ladder

evaluate_ladder(
    checkpoints=list(snakemake.params.checkpoints),
    files=dict(snakemake.input.items()),
    tasks=snakemake.params.tasks,
    eval_cfg=snakemake.params.evaluate,
    judges=snakemake.params.judges,
    runtime=snakemake.params.runtime,
    seed=snakemake.params.seed,
    out_metrics=snakemake.output.metrics,
)
