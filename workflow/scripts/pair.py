# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from pathlib import Path

from springback.pipeline.pairs import perturb_pair

cfg, task = snakemake.params.pair, snakemake.wildcards.task
perturb_pair(
    pair=snakemake.wildcards.pair,
    base_dir=snakemake.input.base,
    aligned_dir=snakemake.input.aligned,
    task=task,
    task_dir=Path(snakemake.input[f"{task}_prompts"]).parent,
    pretrain_heldout=snakemake.input.pretrain_heldout,
    direction=cfg["direction"],
    seed=int(snakemake.wildcards.seed),
    n_neg=cfg["n_neg"],
    train={k: cfg[k] for k in ("lr", "batch_size", "loss")},
    adapter=cfg["adapter"],
    trainer=cfg["trainer"],
    checkpointing=cfg["checkpointing"],
    eval_cfg=snakemake.params.evaluate,
    judges=snakemake.params.judges,
    judge_dirs={k[len("judge_"):]: v for k, v in snakemake.input.items() if k.startswith("judge_")},
    runtime=snakemake.params.runtime,
    out_metrics=snakemake.output.metrics,
    out_prompts=snakemake.output.prompts,
)
