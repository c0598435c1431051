# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from pathlib import Path

from springback.pipeline.evaluation import evaluate_ladder

task = snakemake.params.tasks[0]
evaluate_ladder(
    ladder=snakemake.params.ladder,
    tasks=snakemake.params.tasks,
    task_root=Path(snakemake.input[f"{task}_prompts"]).parent.parent,
    pretrain_heldout=snakemake.params.heldout,
    eval_cfg=snakemake.params.evaluate,
    judges=snakemake.params.judges,
    judge_dirs={k[len("judge_"):]: v for k, v in snakemake.input.items() if k.startswith("judge_")},
    runtime=snakemake.params.runtime,
    seed=snakemake.params.seed,
    out_metrics=snakemake.output.metrics,
)
