# springback: how language models resist alignment (Ji et al., ACL 2025), end to end.
#
# Path scheme (every output of a study lives under results/<study>/):
#   world/{pretrain,pretrain_heldout}.parquet, world/<task>/{align,perturb,prompts,...}.parquet
#   tokenizer/                                       word-level tokenizer trained on D_p (toy)
#   world/<world>/{pretrain,pretrain_heldout}.parquet D_p of every other world (config worlds)
#   base/<world>/<size>/pseed-<p>/tokens-<N>/         pretraining ladder (N tokens seen; 0 = init)
#                                                     or, in hub mode, base/hub/<name>/pseed-0/...
#   judges/<task>/                                    fetched judge models (hub mode)
#   rebound/<world>/<size>/pseed-<p>/tokens-<N>/      one job: every run of one base, evaluated
#       {metrics.csv, prompts.parquet,                in memory at every checkpoint; bits of
#        documents.parquet}                           every held-out document at text points
#       models/<task>/<direction>/seed-<s>/q1-<n_pos>/q2-<n_neg>/   kept checkpoints (config keep)
#   resistance/<world>/<size>/tokens-<N>.csv         forward vs inverse alignment (claim C1)
#   algorithms/<world>/<size>/pseed-<p>/tokens-<N>/   the rebound by DPO, KTO, SimPO, GRPO (C6)
#   compression/documents.csv                        each range-coded document's code length
#   metrics/ladder.csv
#   tables/{checkpoints,curves,elasticity,runs,regime,screen}.csv, tables/prompts.parquet
#   claims.csv, figures/*.{png,pdf}
#   pairs/<pair>/models/{base,aligned}/              a released (base, aligned) pair (hub mode)
#   pairs/<pair>/<task>/seed-<s>/                     both perturbed on D_t: metrics.csv,
#                                                     prompts.parquet
#   pairs/<pair>/{card.csv,curves.csv,card.png,card.pdf}   the pair's elasticity report card
#   logs/ and benchmarks/ mirror the stage folders.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
if MODE == "toy":

    include: "rules/toy_mode.smk"
    include: "rules/world.smk"
    include: "rules/base.smk"
    include: "rules/resistance.smk"
    include: "rules/compression.smk"
    include: "rules/algorithms.smk"

else:

    include: "rules/hub_mode.smk"
    include: "rules/hub.smk"
    include: "rules/pairs.smk"


include: "rules/rebound.smk"
include: "rules/evaluate.smk"
include: "rules/screen.smk"
include: "rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
