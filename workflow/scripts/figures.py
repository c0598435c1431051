# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.plots import figures

tables = {key: path for key, path in snakemake.input.items() if key != "compression"}
figures(
    snakemake.params.kind,
    tasks=snakemake.params.tasks,
    out={key: list(files) for key, files in snakemake.output.items()},
    compression=list(snakemake.input.get("compression", [])),
    **tables,
)
