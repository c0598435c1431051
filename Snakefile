# springback: how language models resist alignment (Ji et al., ACL 2025), end to end.
#
# Path scheme (every output of a study lives under results/<study>/; logs/ and benchmarks/
# mirror the stage folders):
#   world/{pretrain,pretrain_heldout}.parquet      the world's D_p (toy) or held-out text (hub)
#   world/<task>/{align,perturb,align_heldout,perturb_heldout,prompts}.parquet   task tables
#   world/resistance/{train,prompts}.parquet       the resistance experiment's sets (toy)
#   world/<world>/{pretrain,pretrain_heldout}.parquet   D_p of every other world (config worlds)
#   tokenizer/                                     word-level tokenizer trained on D_p (toy)
#   base/<world>/<size>/pseed-<p>/tokens-<N>/      a base model's ladder: one folder per model
#                                                  (rule pretrain), a checkpoint per N tokens seen
#                                                  (0 = init); hub mode: base/hub/<name>/pseed-0/
#                                                  (rule fetch_base)
#   judges/<task>/                                 fetched judge models (hub mode)
#   rebound/<world>/<size>/pseed-<p>/tokens-<N>/   one job: every run of one base, evaluated in
#       [run-<task>-<direction>-seed<s>/]          memory at every checkpoint (rebound.job run:
#       {metrics.csv, prompts.parquet,             one job per run); bits of every held-out
#        documents.parquet}                        document at the text points
#       models/<task>/<direction>/seed-<s>/q1-<n_pos>/q2-<n_neg>/   kept checkpoints (config keep)
#   algorithms/<world>/<size>/pseed-<p>/tokens-<N>/   the rebound by DPO, KTO, SimPO, GRPO (C6)
#   mitigation/<world>/<size>/pseed-<p>/tokens-<N>/   the rebound after each mitigation arm (M1, M2)
#   resistance/<world>/<size>/tokens-<N>.csv       forward vs inverse alignment (claim C1)
#   compression/documents.csv                      each range-coded document's code length
#   metrics/ladder.csv                             every base checkpoint evaluated
#   tables/{checkpoints,curves,elasticity,runs,regime,screen,...}.csv, tables/prompts.parquet
#   claims.csv, findings.md, figures/*.{png,pdf}, manifest.json
#   pairs/<pair>/models/{base,aligned}/            a released (base, aligned) pair (hub mode)
#   pairs/<pair>/<task>/seed-<s>/{metrics.csv,prompts.parquet}   both perturbed on D_t
#   pairs/<pair>/{card.csv,curves.csv,card.png,card.pdf}   the pair's elasticity report card
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
if MODE == "toy":

    include: "rules/world.smk"
    include: "rules/base.smk"
    include: "rules/resistance.smk"
    include: "rules/compression.smk"
    include: "rules/algorithms.smk"
    include: "rules/mitigation.smk"

else:

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
