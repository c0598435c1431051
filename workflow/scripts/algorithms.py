# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.algorithms import algorithms

cfg = snakemake.params.algorithms
algorithms(
    base_dir=snakemake.params.checkpoint,
    files=dict(snakemake.input.items()),
    tasks=cfg["tasks"],
    algorithms=cfg["algorithms"],
    directions=cfg["directions"],
    seeds=cfg["seeds"],
    n_pos=snakemake.params.n_pos,
    n_neg=snakemake.params.n_neg,
    batch_size=snakemake.params.batch_size,
    lr=cfg["lr"],
    options=cfg["options"],
    eval_cfg=snakemake.params.evaluate,
    runtime=snakemake.params.runtime,
    out_metrics=snakemake.output.metrics,
    out_prompts=snakemake.output.prompts,
)
