# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from springback.pipeline.resistance import resistance

cfg = snakemake.params.resistance
resistance(
    base_dirs=list(snakemake.params.checkpoints),
    train_file=snakemake.input.train,
    prompt_file=snakemake.input.prompts,
    seeds=cfg["seeds"],
    slice_size=cfg["slice"],
    epochs=cfg["epochs"],
    lr=cfg["lr"],
    batch_size=cfg["batch_size"],
    max_new_tokens=cfg["max_new_tokens"],
    out=snakemake.output[0],
)
