# springback: how language models resist alignment (Ji et al., ACL 2025), end to end.
#
# Path scheme (every output of a study lives under results/<study>/):
#   world/{pretrain,pretrain_heldout}.parquet, world/<task>/{align,perturb,prompts,...}.parquet
#   tokenizer/                                       word-level tokenizer trained on D_p (toy)
#   base/<size>/tokens-<N>/                          pretraining ladder (N tokens seen; 0 = init)
#                                                    or, in hub mode, a fetched model
#   judges/<task>/                                   fetched judge models (hub mode)
#   align/<task>/<size>/tokens-<N>/<direction>/seed-<s>/q1-<n_pos>/
#   perturb/<task>/<size>/tokens-<N>/<direction>/seed-<s>/q1-<n_pos>/q2-<n_neg>/
#   metrics/<task>/<size>/tokens-<N>.csv (+ .prompts.parquet), metrics/ladder.csv
#   tables/{checkpoints,curves}.csv, figures/*.{png,pdf}
#   logs/ and benchmarks/ mirror the stage folders.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
if MODE == "toy":

    include: "rules/world.smk"
    include: "rules/base.smk"

else:

    include: "rules/hub.smk"


include: "rules/align.smk"
include: "rules/perturb.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
