# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.rebound import rebound

cfg = snakemake.params.rebound
rebound(
    base_dir=snakemake.params.checkpoint,
    files=dict(snakemake.input.items()),
    tasks=cfg["tasks"],
    directions=cfg["directions"],
    seeds=cfg["seeds"],
    n_pos=cfg["n_pos"],
    n_neg=cfg["n_neg"],
    train={k: cfg[k] for k in ("lr", "batch_size", "loss")},
    eval_cfg=snakemake.params.evaluate,
    keep=cfg["keep"],
    judges=snakemake.params.judges,
    runtime=snakemake.params.runtime,
    ensemble=snakemake.params.ensemble,
    adapter=cfg["adapter"],
    trainer=cfg["trainer"],
    checkpointing=cfg["checkpointing"],
    out_metrics=snakemake.output.metrics,
    out_prompts=snakemake.output.prompts,
    out_documents=snakemake.output.documents,
    out_models=snakemake.output.models,
)
