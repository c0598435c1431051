# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.plots import figures

figures(
    checkpoints=snakemake.input.checkpoints,
    curves=snakemake.input.curves,
    elasticity=snakemake.input.elasticity,
    trends=snakemake.input.trends,
    resistance=snakemake.input.resistance,
    theorem=snakemake.input.theorem,
    compression=list(snakemake.input.compression),
    n_boot=snakemake.params.n_boot,
    tasks=snakemake.params.tasks,
    out={key: list(files) for key, files in snakemake.output.items()},
)
