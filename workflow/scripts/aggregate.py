# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.tables import aggregate

aggregate(
    metrics=list(snakemake.input.metrics),
    prompts=list(snakemake.input.prompts),
    ladder=snakemake.input.ladder,
    roles=snakemake.params.roles,
    out_checkpoints=snakemake.output.checkpoints,
    out_prompts=snakemake.output.prompts,
    out_curves=snakemake.output.curves,
    n_boot=snakemake.params.n_boot,
    metric=snakemake.params.metric,
)
