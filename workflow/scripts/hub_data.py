# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.hubdata import write_data

write_data(
    datasets=snakemake.params.datasets,
    pretrain_text=snakemake.params.pretrain_text,
    sizes=snakemake.params.sizes,
    seed=snakemake.params.seed,
    tasks=snakemake.params.tasks,
    files=dict(snakemake.output.items()),
    sources=list(snakemake.output.sources),
)
