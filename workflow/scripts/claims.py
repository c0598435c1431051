# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.claims import write_claims

write_claims(
    checkpoints=snakemake.input.checkpoints,
    metrics=list(snakemake.input.metrics),
    prompts=list(snakemake.input.prompts),
    window=snakemake.params.claims["early_window"],
    epsilon=snakemake.params.claims["kl_epsilon"],
    n_boot=snakemake.params.n_boot,
    metric=snakemake.params.claims["metric"],
    out=dict(snakemake.output.items()),
)
