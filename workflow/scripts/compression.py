# `snakemake` (input, output, params, log, threads) is injected by Snakemake's script directive.
snakemake = globals()["snakemake"]

from springback.runtime import start

start(snakemake.log[0], threads=snakemake.threads)

from pathlib import Path

from springback.pipeline.compression import compression_study

cfg, reb = snakemake.params.compression, snakemake.params.rebound
compression_study(
    base_dir=f"{snakemake.input.base}/tokens-{snakemake.params.tokens}",
    task_dirs={t: Path(snakemake.input[f"{t}_prompts"]).parent for t in reb["tasks"]},
    corpus=snakemake.input.corpus,
    pretrain_heldout=snakemake.input.pretrain_heldout,
    coded_task=cfg["task"],
    n_docs=cfg["documents"],
    context=snakemake.params.context,
    n_pos=max(reb["n_pos"]),
    n_neg=max(reb["n_neg"]),
    seed=reb["seeds"][0],
    train={k: reb[k] for k in ("lr", "batch_size", "loss")},
    max_new_tokens=cfg["max_new_tokens"],
    out=dict(snakemake.output.items()),
)
