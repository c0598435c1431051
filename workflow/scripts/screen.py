# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.screen import screen

grid = snakemake.params.screen
screen(
    base_dir=snakemake.params.checkpoint,
    files=dict(snakemake.input.items()),
    tasks=snakemake.params.tasks,
    lrs=grid["lr"],
    losses=grid["loss"],
    n_pos=grid["n_pos"],
    seeds=grid["seeds"],
    n_neg=snakemake.params.n_neg,
    batch_size=snakemake.params.batch_size,
    eval_cfg=snakemake.params.evaluate,
    claims=snakemake.params.claims,
    runtime=snakemake.params.runtime,
    out=snakemake.output.screen,
)
