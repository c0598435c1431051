# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from pathlib import Path

from springback.pipeline.algorithms import algorithms

cfg, grid = snakemake.params.algorithms, snakemake.params.grid
algorithms(
    base_dir=f"{snakemake.input.base}/tokens-{snakemake.wildcards.tokens}",
    task_dirs={t: Path(snakemake.input[f"{t}_prompts"]).parent for t in cfg["tasks"]},
    pretrain_heldout=snakemake.input.pretrain_heldout,
    algorithms=cfg["algorithms"],
    directions=cfg["directions"],
    seeds=cfg["seeds"],
    n_pos=grid["n_pos"],
    n_neg=grid["n_neg"],
    batch_size=grid["batch_size"],
    lr=cfg["lr"],
    options=cfg["options"],
    eval_cfg=snakemake.params.evaluate,
    runtime=snakemake.params.runtime,
    out_metrics=snakemake.output.metrics,
    out_prompts=snakemake.output.prompts,
)
