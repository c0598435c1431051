# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from pathlib import Path

from springback.pipeline.screen import screen

cfg, grid = snakemake.params.rebound, snakemake.params.screen
screen(
    regimes=[{"lr": lr, "loss": loss} for lr in grid["lr"] for loss in grid["loss"]],
    n_pos=grid["n_pos"],
    seeds=grid["seeds"],
    train={"batch_size": cfg["batch_size"]},
    base_dir=f"{snakemake.input.base}/tokens-{snakemake.params.tokens}",
    task_dirs={t: Path(snakemake.input[f"{t}_prompts"]).parent for t in cfg["tasks"]},
    pretrain_heldout=snakemake.input.pretrain_heldout,
    n_neg=cfg["n_neg"],
    eval_cfg=snakemake.params.evaluate,
    runtime=snakemake.params.runtime,
    claims=snakemake.params.claims,
    out=snakemake.output.screen,
)
