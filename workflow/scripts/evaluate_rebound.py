# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from pathlib import Path

from springback.pipeline.evaluation import evaluate_rebound

w, phase = snakemake.wildcards, snakemake.params.phase
evaluate_rebound(
    base_dir=f"{snakemake.input.base}/tokens-{w.tokens}",
    perturb_dir=snakemake.input.perturbed,
    task_dirs={t: Path(snakemake.input[f"{t}_prompts"]).parent for t in phase["tasks"]},
    pretrain_heldout=snakemake.input.pretrain_heldout,
    directions=phase["directions"],
    seeds=phase["seeds"],
    n_pos=phase["n_pos"],
    n_neg=phase["n_neg"],
    eval_cfg=snakemake.params.evaluate,
    judges=snakemake.params.judges,
    judge_dirs={k[len("judge_"):]: v for k, v in snakemake.input.items() if k.startswith("judge_")},
    runtime=snakemake.params.runtime,
    out_metrics=snakemake.output.metrics,
    out_prompts=snakemake.output.prompts,
)
