# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.mitigation import mitigation

cfg = snakemake.params.mitigation
mitigation(
    base_dir=snakemake.params.checkpoint,
    files=dict(snakemake.input.items()),
    tasks=cfg["tasks"],
    arms=cfg["arms"],
    directions=cfg["directions"],
    seeds=cfg["seeds"],
    n_pos=snakemake.params.n_pos,
    n_neg=snakemake.params.n_neg,
    train=snakemake.params.train,
    context=snakemake.params.context,
    eval_cfg=snakemake.params.evaluate,
    runtime=snakemake.params.runtime,
    out_metrics=snakemake.output.metrics,
    out_prompts=snakemake.output.prompts,
)
