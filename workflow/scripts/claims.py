# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0])

from springback.claims import write_claims

write_claims(
    prompts=snakemake.input.prompts,
    checkpoints=snakemake.input.checkpoints,
    resistance=list(snakemake.input.resistance),
    n_boot=snakemake.params.n_boot,
    claims=snakemake.params.claims,
    out=dict(snakemake.output.items()),
)
