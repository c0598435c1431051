# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.pairs import write_card

write_card(
    metrics=list(snakemake.input.metrics),
    prompts=list(snakemake.input.prompts),
    n_boot=snakemake.params.n_boot,
    claims=snakemake.params.claims,
    out_card=snakemake.output.card,
    out_curves=snakemake.output.curves,
    out_figure=list(snakemake.output.figure),
)
