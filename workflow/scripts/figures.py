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
    resistance_summary=snakemake.input.resistance_summary,
    theorem=snakemake.input.theorem,
    claims=snakemake.input.claims,
    compression=list(snakemake.input.compression),
    tasks=snakemake.params.tasks,
    out={key: list(files) for key, files in snakemake.output.items()},
)
