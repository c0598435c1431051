import importlib.util
import os
from pathlib import Path

from snakemake.utils import validate

from springback import experiments
from springback.config import ConfigError, check_schema, check_study_config


def check_config(cfg):
    """Schema (one-line errors naming the key), defaults, then cross-key rules; exits non-zero
    with one line naming the culprit, before any job runs."""
    try:
        check_schema(cfg, workflow.source_path("../config/schema.yaml"))
        validate(cfg, "../config/schema.yaml")
        check_study_config(cfg)
    except ConfigError as err:
        raise SystemExit(f"springback: {err}") from None


check_config(config)

STUDY = config["study"]
REBOUND = config["rebound"]
MODE = config["mode"]  # the Snakefile includes rules/<MODE>_mode.smk: the mode's own helpers
HUB = config["hub"]


wildcard_constraints:
    study=STUDY,
    world="|".join(["main", "hub", *experiments.worlds(config)]),
    size="[A-Za-z0-9_]+",
    pseed="[0-9]+",
    tokens="[0-9]+",
    task="sentiment|safety",
    direction="forward|reversed",
    seed="[0-9]+",


BASES = experiments.study_bases(config)  # every base of the study's experiments


def world_seeds():
    """Pretraining seeds per world: toy, the main world and every world of `worlds` with seeds;
    hub, one fetched model per name."""
    return experiments.world_seeds(config)


def rebound_units():
    """(world, size, pseed, tokens) of every rebound job: each base of the study's experiments,
    once per pretraining seed it uses."""
    return [(b["world"], b["size"], p, b["tokens"]) for b in BASES for p in b["pretrain_seeds"]]


def base_roles():
    """The control bases by (world, size, tokens) and their role; every other base is "main"."""
    return [{k: b[k] for k in ("world", "size", "tokens", "role")} for b in BASES
            if b["role"] != "main"]


def screen_base(wildcards):
    """The base folder the screen runs on: the first main base, first pretraining seed."""
    world, size, pseed, _ = rebound_units()[0]
    return f"results/{wildcards.study}/base/{world}/{size}/pseed-{pseed}"


def screen_tokens():
    return rebound_units()[0][3]


def scaled_mem(base_mb):
    """mem_mb growing with the attempt number (retries get more memory)."""
    return lambda wildcards, attempt: base_mb * attempt


def longest_first(rank):
    """priority: of a model job, so that the longest jobs start first and no core idles at the
    tail: ``rank`` orders the rules (higher starts first), and within a rule a larger model size
    of config models (more non-embedding weights) adds 1 per step up the ladder; any other size
    (a hub model's name) adds nothing."""
    arch = config["models"]
    ladder = sorted(arch, key=lambda s: arch[s]["layers"] * arch[s]["hidden"]
                    * (4 * arch[s]["hidden"] + 3 * arch[s]["intermediate"]))
    return lambda wildcards: rank + (ladder.index(wildcards.size) + 1
                                     if wildcards.size in ladder else 0)


TASK_TABLES = ("align", "perturb", "align_heldout", "perturb_heldout", "prompts")


def task_tables(root):
    """The five tables of every task the data stage writes, by <task>_<table>."""
    return {f"{task}_{name}": f"{root}/{task}/{name}.parquet" for task in task_names()
            for name in TASK_TABLES}


WORLD_CORPUS = "results/{study}/world/{world}"  # D_p of a world besides main (rule world_corpus)


def world_file(study, world, name):
    """The parquet file of ``name`` (pretrain or pretrain_heldout) of a world: the main (or
    hub) world's from the world job, any other's from its world_corpus job."""
    if world in ("main", "hub"):
        return world_tables(study)[name]
    return f"{WORLD_CORPUS.format(study=study, world=world)}/{name}.parquet"


def world_table(name):
    """The parquet file of ``name`` (pretrain or pretrain_heldout) in the job's world."""
    return lambda wildcards: world_file(wildcards.study, wildcards.world, name)


def heldout_by_world(wildcards):
    """Held-out D_p of every pretrained world, by world name (the ladder spans them all)."""
    return {w: world_file(wildcards.study, w, "pretrain_heldout")
            for w in sorted({w for w, *_ in ladder()})}


def heldout_files(wildcards):
    return list(heldout_by_world(wildcards).values())


def ladder_dirs(wildcards):
    """The base output folder of every (world, size, pretraining seed)."""
    return sorted({f"results/{wildcards.study}/base/{w}/{s}/pseed-{p}" for w, s, p, _ in ladder()})


REBOUND_JOB = "results/{study}/rebound/{world}/{size}/pseed-{pseed}/tokens-{tokens}"
RUN_FOLDER = "run-{task}-{direction}-seed{seed}"  # one run's sub-folder when rebound.job is run


def rebound_path(pattern):
    """A rebound job's path pattern, with the run's own level when rebound.job is run:
    ``pattern``'s {run} field becomes nothing, or a sub-folder run-<task>-<direction>-seed<seed>."""
    return pattern.replace("{run}", f"{os.sep}{RUN_FOLDER}" if REBOUND["job"] == "run" else "")


def rebound_folder(study, world, size, pseed, tokens, stage="rebound"):
    """The output folder of a rebound (or algorithms) job of one base and pretraining seed."""
    return f"results/{study}/{stage}/{world}/{size}/pseed-{pseed}/tokens-{tokens}"


def rebound_job_folders(study, unit):
    """The folder of each job of a rebound unit: the unit itself, or one per run."""
    folder = rebound_folder(study, *unit)
    if REBOUND["job"] == "base":
        return [folder]
    base = experiments.base_of(config, unit[0], unit[1], unit[3])
    return [f"{folder}/{RUN_FOLDER.format(task=t, direction=d, seed=s)}" for t in REBOUND["tasks"]
            for d in base["directions"] for s in REBOUND["seeds"]]


def rebound_outputs(name):
    """One output file (metrics.csv or prompts.parquet) of every rebound and algorithms job."""
    units = [(b["world"], b["size"], p, b["tokens"]) for b in experiments.algorithm_bases(config)
             for p in b["pretrain_seeds"]]
    return lambda wildcards: [f"{f}/{name}" for u in rebound_units()
                              for f in rebound_job_folders(wildcards.study, u)] + [
        f"{rebound_folder(wildcards.study, *u, stage='algorithms')}/{name}" for u in units]


def figure_files(study="{study}"):
    names = [f"rebound_{t}" for t in REBOUND["tasks"]]
    names += [f"compression_{t}" for t in REBOUND["tasks"]]
    names += ["cue_gap", "ladder", "kl_rebound", *trend_figures()]
    return {n: [f"results/{study}/figures/{n}.{ext}" for ext in ("png", "pdf")] for n in names}


def resistance_tables(wildcards):
    """The forward/inverse table of every resistance base (empty unless the study runs it)."""
    return [f"results/{wildcards.study}/resistance/{b['world']}/{b['size']}/tokens-{b['tokens']}.csv"
            for b in experiments.resistance_bases(config)]


def final_outputs():
    screen = [f"results/{STUDY}/tables/screen.csv"] if config.get("screen") else []
    return [
        f"results/{STUDY}/claims.csv",
        f"results/{STUDY}/manifest.json",
        f"results/{STUDY}/tables/checkpoints.csv",
        f"results/{STUDY}/tables/curves.csv",
        *[f for files in figure_files(STUDY).values() for f in files],
        *screen,
        *experiment_tables(),
        *pair_files(STUDY),
    ]


def base_checkpoint(wildcards):
    return f"results/{wildcards.study}/base/{wildcards.world}/{wildcards.size}/pseed-{wildcards.pseed}"


def rebound_settings(wildcards):
    """What affects a rebound job: grids, the fine-tuning regime (lr: rebound.control_lr of its
    base's role and size, else rebound.lr), what is kept, and the directions the experiments
    using its base ask for."""
    keys = ["tasks", "seeds", "n_pos", "n_neg", "loss", "batch_size", "keep", "adapter",
            "trainer", "checkpointing"]
    base = experiments.base_of(config, wildcards.world, wildcards.size, wildcards.tokens)
    lr = REBOUND["control_lr"].get(base["role"], {}).get(base["size"], REBOUND["lr"])
    settings = {k: REBOUND[k] for k in keys} | {"lr": lr, "directions": base["directions"]}
    if "task" in wildcards.keys():  # rebound.job run: the job's one run
        settings |= {"tasks": [wildcards.task], "directions": [wildcards.direction],
                     "seeds": [int(wildcards.seed)]}
    return settings


def all_task_tables(wildcards):
    """The world tables of every task of the study."""
    tables = world_tables(wildcards.study)
    return {k: v for k, v in tables.items() if k.split("_")[0] in REBOUND["tasks"]}


def all_ladder_checkpoints(wildcards):
    """Every base checkpoint directory, in ladder order."""
    return [f"results/{wildcards.study}/base/{w}/{s}/pseed-{p}/tokens-{t}" for w, s, p, t in ladder()]


LIBRARY = Path(importlib.util.find_spec("springback").origin).parent  # what the jobs import


def code_hash(script):
    """sha256 of the springback modules that ``workflow/scripts/<script>.py`` imports, directly
    or transitively (derived from the import statements, never listed by hand): Snakemake tracks
    the script but not the modules it imports, so this param reruns exactly the rules whose
    code changed."""
    import hashlib

    from springback.provenance import import_closure

    digest = hashlib.sha256()
    for path in import_closure(LIBRARY, [workflow.source_path(f"../workflow/scripts/{script}.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def study_root(wildcards, output):
    """results/<study>, the folder of the manifest the rule writes."""
    return str(Path(output[0]).parent)


# Released (base, aligned) pairs (rules/pairs.smk, hub mode): results/<study>/pairs/<pair>/...
PAIRS = config.get("pairs") or {}


def pair_files(study="{study}"):
    """The card, its curves and its figure of every configured pair."""
    return [f"results/{study}/pairs/{p}/{name}" for p in PAIRS
            for name in ("card.csv", "curves.csv", "card.png", "card.pdf")]


def pair_reports(wildcards):
    return pair_files(wildcards.study)
