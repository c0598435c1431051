# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from pathlib import Path

from springback.pipeline.finetune import perturb

w, phase = snakemake.wildcards, snakemake.params.phase
perturb(
    base_dir=f"{snakemake.input.base}/tokens-{w.tokens}",
    align_dir=snakemake.input.aligned,
    task_dirs={t: Path(snakemake.input[f"{t}_prompts"]).parent for t in phase["tasks"]},
    directions=phase["directions"],
    seeds=phase["seeds"],
    n_pos=phase["n_pos"],
    n_neg=phase["n_neg"],
    lr=phase["lr"],
    batch_size=phase["batch_size"],
    outdir=snakemake.output.models,
    runtime=snakemake.params.runtime,
)
