# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.compression import compression_study

cfg = snakemake.params.compression
compression_study(
    base_dir=snakemake.params.checkpoint,
    files=dict(snakemake.input.items()),
    tasks=snakemake.params.tasks,
    coded_task=cfg["task"],
    n_docs=cfg["documents"],
    context=snakemake.params.context,
    n_pos=snakemake.params.n_pos,
    n_neg=snakemake.params.n_neg,
    seeds=snakemake.params.seeds,
    train=snakemake.params.train,
    max_new_tokens=cfg["max_new_tokens"],
    out=dict(snakemake.output.items()),
)
