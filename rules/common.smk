# What the rules share: the config checked and completed (springback.config: the schema's
# defaults and every cross-key check), the mode table, the layout of base checkpoints, and small
# helpers named for what they return. What the experiments expand into (bases, the ladder, the
# rebound jobs) is springback.experiments', tested without Snakemake.
import hashlib
import importlib.util
from pathlib import Path

import springback.config
from springback import experiments
from springback.data import TASK_TABLES
from springback.judge import MODEL_JUDGES
from springback.provenance import import_closure

try:
    springback.config.complete(config, workflow.source_path("../config/schema.yaml"))
except springback.config.ConfigError as err:
    raise SystemExit(f"springback: {err}") from None

STUDY = config["study"]
MODE = config["mode"]  # toy or hub: the Snakefile includes the mode's rules
REBOUND = config["rebound"]
HUB = config["hub"]
PAIRS = config["pairs"]  # released (base, aligned) pairs, rules/pairs.smk (hub mode)
BASES = experiments.study_bases(config)  # every base of the study's experiments
WORLDS = experiments.worlds(config)  # the pretraining worlds besides main (toy mode)
REPRESENTATIVE = experiments.representative_base(config)  # for the study: screen, compression
LADDER = experiments.ladder(config)  # {world, size, pseed, tokens} of every base checkpoint
PRETRAIN = {k: v for k, v in config["pretrain"].items()  # what every size's pretraining shares
            if k not in ("tokens", "checkpoints", "sizes", "seeds")}
REGIME = {k: REBOUND[k] for k in ("lr", "batch_size", "loss")}  # the study's fine-tuning regime


wildcard_constraints:
    study=STUDY,
    world="|".join(experiments.world_seeds(config)),
    size="[A-Za-z0-9_]+",
    pseed="[0-9]+",
    tokens="[0-9]+",
    task="sentiment|safety",
    direction="forward|reversed",
    seed="[0-9]+",
    pair="[A-Za-z0-9_]+",
    model="base|aligned",


# Modes as data: how a model job (one that trains or evaluates a language model) runs in each
# mode, and what the mode's data job writes. Toy models are overhead-bound: two 1-thread jobs
# finish 1.5x more runs per second on 2 cores than one 2-thread job (benchmarks/); a hub job
# feeds a GPU (hub.gpus; none when hub.device is cpu) and trains or evaluates a 7B model many
# times. `model` is how a job loads its models (device, dtype, remote code; with several GPUs the
# layers are spread over them).
HUB_GPUS = 0 if HUB["device"] == "cpu" else HUB["gpus"]
MODES = {
    "toy": {
        "threads": 1,
        "mem_mb": 4000,
        "ladder_mem_mb": 6000,
        "runtime": 120,
        "gpu": int(config["toy"]["device"] == "cuda"),
        "model": {"device": config["toy"]["device"], "dtype": "float32",
                  "trust_remote_code": False},
        "tasks": ["sentiment", "safety"],  # the world writes both
        "tables": {"pretrain": "pretrain", "pretrain_heldout": "pretrain_heldout",
                   "resistance_train": "resistance/train",
                   "resistance_prompts": "resistance/prompts"},
        "experiments": config["experiments"],
        "figures": ["theorem"],
    },
    "hub": {
        "threads": 4,
        "mem_mb": 64000,
        "ladder_mem_mb": 64000,
        "runtime": 1440,
        "gpu": HUB_GPUS,
        "model": {k: HUB[k] for k in ("device", "dtype", "trust_remote_code")}
        | ({"device_map": "auto"} if HUB_GPUS > 1 else {}),
        "tasks": REBOUND["tasks"],  # hub_data writes the study's
        "tables": {"pretrain_heldout": "pretrain_heldout"},  # held-out text alone, no corpus
        "experiments": ["rebound"],  # every other experiment is toy mode's
        "figures": [],
    },
}
RUN = MODES[MODE]

# The layout of a rebound job (rebound.job: one per base and pretraining seed, or one per run)
# and of an algorithms job, below results/<study>/ (logs/ and benchmarks/ mirror it).
REBOUND_JOB = {
    "base": "rebound/{world}/{size}/pseed-{pseed}/tokens-{tokens}",
    "run": "rebound/{world}/{size}/pseed-{pseed}/tokens-{tokens}/run-{task}-{direction}-seed{seed}",
}[REBOUND["job"]]
ALGORITHMS_JOB = "algorithms/{world}/{size}/pseed-{pseed}/tokens-{tokens}"
MITIGATION_JOB = "mitigation/{world}/{size}/pseed-{pseed}/tokens-{tokens}"
WILDCARDS = {"world": "{world}", "size": "{size}", "pseed": "{pseed}", "tokens": "{tokens}"}
TREND_FIGURES = {"size": ["size_trend"], "volume": ["volume_trend"], "prior": ["prior_shift"],
                 "resistance": ["resistance"], "compression": ["compressors", "rank_frequency"],
                 "algorithms": ["algorithms"], "mitigation": ["mitigation"]}
# The experiment figures drawn from the aggregated tables alone (rule table_figures, beside the
# claims job); the others draw the claims job's tables (rule figures). As springback.plots'
# table_figures and claim_figures build them.
TABLE_FIGURES = {"prior_shift", "compressors", "rank_frequency", "algorithms"}


def base_model(unit=WILDCARDS):
    """A base model's folder (rules pretrain, fetch_base), holding its whole ladder; ``unit``
    names its world, size and pretraining seed (default: the job's wildcards)."""
    return "results/{{study}}/base/{world}/{size}/pseed-{pseed}".format(**unit)


def checkpoint(unit=WILDCARDS):
    """One base checkpoint: the sub-folder tokens-<N> of its model's folder. Snakemake cannot
    declare the sub-folders of a directory output one by one, so a job gets its checkpoint as a
    param, and this is the one place that names it."""
    return f"{base_model(unit)}/tokens-{unit['tokens']}"


LADDER_MODELS = sorted({base_model(unit) for unit in LADDER})  # every base model's folder
LADDER_CHECKPOINTS = [checkpoint(unit) for unit in LADDER]  # every checkpoint, in ladder order


def ladder_checkpoints(wildcards):
    """The checkpoint folders a base model's job writes, by tokens seen (a hub model is fetched
    into world hub, pretraining seed 0)."""
    unit = {"world": "hub", "pseed": 0} | dict(wildcards.items())
    return {t: checkpoint(unit | {"tokens": t}).format(study=wildcards.study)
            for t in experiments.ladder_tokens(config, wildcards.size)}


def world_tables():
    """Every table the data job writes (the world's, or hub_data's in hub mode), by name: the
    mode's own tables (pretraining text; toy, the resistance experiment's sets) and the task
    tables, <task>_<table>."""
    tables = {k: f"results/{{study}}/world/{stem}.parquet" for k, stem in RUN["tables"].items()}
    return tables | {f"{t}_{n}": f"results/{{study}}/world/{t}/{n}.parquet" for t in RUN["tasks"]
                     for n in TASK_TABLES}


def task_tables(tasks):
    """The tables of ``tasks``, by <task>_<table>."""
    return {k: v for k, v in world_tables().items() if k.split("_")[0] in tasks}


def world_files(world):
    """D_p and its held-out part of a world, by pretrain and pretrain_heldout: the main (or hub)
    world's from the data job (hub mode: held-out text alone), any other's from its
    world_corpus job."""
    if world in ("main", "hub"):
        return {k: v for k, v in world_tables().items() if k in ("pretrain", "pretrain_heldout")}
    return {n: f"results/{{study}}/world/{world}/{n}.parquet"
            for n in ("pretrain", "pretrain_heldout")}


def job_world_files(wildcards):
    """D_p and its held-out part of the job's world (``world_files``)."""
    return world_files(wildcards.world)


def heldout_by_world():
    """The held-out D_p of every world of the ladder, by pretrain_heldout_<world>."""
    return {f"pretrain_heldout_{w}": world_files(w)["pretrain_heldout"]
            for w in sorted({unit["world"] for unit in LADDER})}


def judge_dirs():
    """The fetched judge folders of the tasks whose judge is a model (hub mode), by
    judge_<task>."""
    return {f"judge_{task}": f"results/{{study}}/judges/{task}" for task in REBOUND["tasks"]
            if MODE == "hub" and HUB["judges"].get(task, {"kind": "exact"})["kind"] in MODEL_JUDGES}


def job_judge_dir(wildcards):
    """The fetched judge folder of the job's task, when its judge is a model (``judge_dirs``)."""
    return {k: v for k, v in judge_dirs().items() if k == f"judge_{wildcards.task}"}


def rebound_settings(wildcards):
    """What affects a rebound job (springback.experiments.rebound_settings); with rebound.job
    run, the job's one run."""
    settings = experiments.rebound_settings(config, wildcards.world, wildcards.size,
                                            wildcards.tokens)
    if "task" in wildcards.keys():
        settings |= {"tasks": [wildcards.task], "directions": [wildcards.direction],
                     "seeds": [int(wildcards.seed)]}
    return settings


def rebound_outputs(name):
    """One output file (metrics.csv or prompts.parquet) of every rebound, algorithms and
    mitigation job."""
    return [f"results/{{study}}/{layout}/{name}".format(study="{study}", **job)
            for layout, jobs in ((REBOUND_JOB, experiments.rebound_jobs(config)),
                                 (ALGORITHMS_JOB, experiments.rebound_units(
                                     config, experiments.algorithm_bases(config))),
                                 (MITIGATION_JOB, experiments.rebound_units(
                                     config, experiments.mitigation_bases(config))))
            for job in jobs]


def base_roles():
    """The control bases by (world, size, tokens) and their role; every other base is main."""
    return [{k: b[k] for k in ("world", "size", "tokens", "role")} for b in BASES
            if b["role"] != "main"]


def resistance_tables(wildcards):
    """The forward/inverse table of every resistance base (none unless the study runs it)."""
    return [f"results/{wildcards.study}/resistance/{b['world']}/{b['size']}/"
            f"tokens-{b['tokens']}.csv" for b in experiments.resistance_bases(config)]


def compression_tables():
    """The compression job's tables the figures read, when the study runs it."""
    if "compression" not in RUN["experiments"]:
        return []
    return [f"results/{{study}}/tables/{n}.csv" for n in ("compressors", "rank_frequency")]


def trend_figures(kind=None):
    """Figures of the size, volume, prior, resistance, compression and algorithms experiments
    the study runs, and (toy) the theorem's: all of them, or the "tables" or "claims" set
    (``kind``), as TABLE_FIGURES splits them."""
    names = [n for e, names in TREND_FIGURES.items() if e in RUN["experiments"]
             for n in names] + RUN["figures"]
    return [n for n in names if kind is None or (n in TABLE_FIGURES) == (kind == "tables")]


def pair_files(study="{study}"):
    """The card, its curves and its figure of every configured pair."""
    return [f"results/{study}/pairs/{p}/{name}" for p in PAIRS
            for name in ("card.csv", "curves.csv", "card.png", "card.pdf")]


def pair_reports(wildcards):
    return pair_files(wildcards.study)


def pair_job_outputs(name):
    """One output file (metrics.csv or prompts.parquet) of every job of a pair: task x seed."""

    def files(wildcards):
        spec = springback.config.pair_spec(config, wildcards.pair)
        return [f"results/{wildcards.study}/pairs/{wildcards.pair}/{t}/seed-{s}/{name}"
                for t in spec["tasks"] for s in spec["seeds"]]

    return files


def final_outputs():
    """What `all` asks for: claims, manifest, tables, figures, the screen, the compression
    experiment's tables and every pair's card."""
    figures = [f"rebound_{t}" for t in REBOUND["tasks"]]
    figures += [f"compression_{t}" for t in REBOUND["tasks"]]
    figures += ["cue_gap", "ladder", "kl_rebound", *trend_figures()]
    tables = ["checkpoints", "curves"] + (["screen"] if config["screen"] else [])
    if "compression" in RUN["experiments"]:
        tables += ["compressors", "pareto", "ideal"]
    return [
        f"results/{STUDY}/claims.csv",
        f"results/{STUDY}/manifest.json",
        *[f"results/{STUDY}/tables/{t}.csv" for t in tables],
        *[f"results/{STUDY}/figures/{f}.{ext}" for f in figures for ext in ("png", "pdf")],
        *pair_files(STUDY),
    ]


def scaled_mem(base_mb):
    """mem_mb growing with the attempt number (retries get more memory)."""

    def mem_mb(wildcards, attempt):
        return base_mb * attempt

    return mem_mb


def longest_first(rank):
    """priority: of a model job, so that the longest jobs start first and no core idles at the
    tail: ``rank`` orders the rules (higher starts first), and within one a larger model size
    of config models (more non-embedding weights) adds 1 per step up the ladder; any other size
    (a hub model's name) adds nothing."""
    weights = {s: experiments.nonembedding_params(a) for s, a in config["models"].items()}
    ladder = sorted(weights, key=weights.get)

    def priority(wildcards):
        return rank + (ladder.index(wildcards.size) + 1 if wildcards.size in ladder else 0)

    return priority


LIBRARY = Path(importlib.util.find_spec("springback").origin).parent  # what the jobs import


def code_hash(script):
    """sha256 of the springback modules that ``workflow/scripts/<script>.py`` imports, directly
    or transitively (derived from the import statements, never listed by hand): Snakemake tracks
    the script but not the modules it imports, so this param reruns exactly the rules whose
    code changed."""
    digest = hashlib.sha256()
    for path in import_closure(LIBRARY, [workflow.source_path(f"../workflow/scripts/{script}.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def study_root(wildcards, output):
    """results/<study>, the folder of the manifest the job writes."""
    return str(Path(output[0]).parent)
