import importlib.util
import os
from pathlib import Path

from snakemake.utils import validate

from springback import experiments
from springback.config import (MODEL_JUDGES, ConfigError, check_schema, check_study_config,
                               pair_spec)


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
MODE = config["mode"]
HUB = config["hub"]


wildcard_constraints:
    study=STUDY,
    world="main|mirror|hub",
    size="[A-Za-z0-9_]+",
    pseed="[0-9]+",
    tokens="[0-9]+",
    task="sentiment|safety",
    direction="forward|reversed",
    seed="[0-9]+",


def task_names():
    """Tasks whose tables the data stage writes: toy mode's world always has both."""
    return ["sentiment", "safety"] if MODE == "toy" else REBOUND["tasks"]


BASES = experiments.study_bases(config)  # every base of the study's experiments


def world_seeds():
    """Pretraining seeds per world: toy, the main world and (if any seeds) its mirror; hub, one
    fetched model per name."""
    return experiments.world_seeds(config)


def pretrained_models():
    """(world, size, pseed) of every model pretrained from scratch: those the experiments'
    bases need (each saves its whole ladder)."""
    bases = BASES + experiments.resistance_bases(config) + experiments.algorithm_bases(config)
    return sorted({(b["world"], b["size"], p) for b in bases for p in b["pretrain_seeds"]})


def ladder():
    """(world, size, pseed, tokens) of every base checkpoint: toy, the pretraining ladder of every
    pretrained model; hub, the fetched models."""
    if MODE == "hub":
        return [("hub", name, 0, t) for name in HUB["models"] for t in hub_tokens(name)]
    return [(w, s, p, t) for w, s, p in pretrained_models() for t in ladder_tokens(s)]


def hub_model(wildcards):
    return HUB["models"][wildcards.size]


def hub_tokens(name):
    """Checkpoints of a hub model: its release, and tokens 0 (its random initialisation, the
    paired control) where a base asks for it."""
    release = HUB["models"][name]["tokens"]
    return sorted({release} | {b["tokens"] for b in BASES if b["size"] == name})


def hub_judge(wildcards):
    return HUB["judges"][wildcards.task]


def judge_dirs(wildcards):
    """Fetched judge folders of the tasks whose judge is a model (none in toy mode)."""
    if MODE == "toy":
        return {}
    return {
        f"judge_{task}": f"results/{wildcards.study}/judges/{task}"
        for task in REBOUND["tasks"]
        if HUB["judges"].get(task, {"kind": "exact"})["kind"] in MODEL_JUDGES
    }


def model_runtime():
    """Device, dtype and remote-code policy of model-loading jobs."""
    if MODE == "toy":
        return {"device": "cpu", "dtype": "float32", "trust_remote_code": False}
    return {k: HUB[k] for k in ("device", "dtype", "trust_remote_code")}


def job_threads():
    """Threads of a model job: toy models are overhead-bound, so two 1-thread jobs side by side
    finish 1.5x more runs per second on 2 cores than one 2-thread job (benchmarks/); a hub job
    feeds a GPU."""
    return 1 if MODE == "toy" else 4


def gpus():
    """GPUs a model job asks for: one in hub mode (Slurm: --gpus=1), none in toy mode."""
    return 1 if MODE == "hub" else 0


def job_mem(toy_mb, hub_mb=64000):
    return scaled_mem(toy_mb if MODE == "toy" else hub_mb)


def job_runtime(toy_min, hub_min=1440):
    """Integer minutes: toy jobs are short; a hub job trains or evaluates a 7B model many times."""
    return toy_min if MODE == "toy" else hub_min


def ladder_tokens(size):
    """Pretraining checkpoints (tokens seen) saved for a model size."""
    budget = config["pretrain"]["tokens"][size]
    return sorted({t for t in config["pretrain"]["checkpoints"] if t <= budget} | {budget})


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


def world_tables(study="{study}"):
    """Every parquet file written by the data stage, by stem (a pattern unless ``study`` is
    given); hub mode has no pretraining corpus, only held-out pretraining-style text."""
    root = f"results/{study}/world"
    names = ("pretrain", "pretrain_heldout") if MODE == "toy" else ("pretrain_heldout",)
    tables = {name: f"{root}/{name}.parquet" for name in names}
    if "mirror" in world_seeds():
        tables |= {f"mirror_{n}": f"{root}/mirror/{n}.parquet" for n in names}
    for task in task_names():
        for name in ("align", "perturb", "align_heldout", "perturb_heldout", "prompts"):
            tables[f"{task}_{name}"] = f"{root}/{task}/{name}.parquet"
    if MODE == "toy":
        tables |= {f"resistance_{n}": f"{root}/resistance/{n}.parquet" for n in ("train", "prompts")}
    return tables


def world_table(name):
    """The parquet file of ``name`` (pretrain or pretrain_heldout) in the job's world."""
    return lambda wildcards: world_tables(wildcards.study)[
        name if wildcards.world in ("main", "hub") else f"mirror_{name}"]


def heldout_by_world(wildcards):
    """Held-out D_p of every world, by world name (the ladder spans them all)."""
    tables = world_tables(wildcards.study)
    return {w: tables["pretrain_heldout" if w in ("main", "hub") else "mirror_pretrain_heldout"]
            for w in world_seeds()}


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


def algorithm_task_tables(wildcards):
    """The world tables of the algorithms experiment's tasks."""
    tables = world_tables(wildcards.study)
    return {k: v for k, v in tables.items() if k.split("_")[0] in config["algorithms"]["tasks"]}


def trend_figures():
    """Figures of the size, volume and resistance experiments the study runs (toy mode)."""
    run = config["experiments"] if MODE == "toy" else []
    names = {"size": ["size_trend"], "volume": ["volume_trend"], "resistance": ["resistance"],
             "compression": ["compressors", "rank_frequency"], "algorithms": ["algorithms"]}
    return [n for e, ns in names.items() if e in run for n in ns] + (
        ["theorem"] if MODE == "toy" else [])


def compression_tables(wildcards):
    """The compression job's tables, when the study runs it."""
    if MODE != "toy" or "compression" not in config["experiments"]:
        return {}
    root = f"results/{wildcards.study}/tables"
    return {"compressors": f"{root}/compressors.csv", "ranks": f"{root}/rank_frequency.csv"}


def figure_files(study="{study}"):
    names = [f"rebound_{t}" for t in REBOUND["tasks"]]
    names += [f"compression_{t}" for t in REBOUND["tasks"]]
    names += ["cue_gap", "ladder", "kl_rebound", *trend_figures()]
    return {n: [f"results/{study}/figures/{n}.{ext}" for ext in ("png", "pdf")] for n in names}


def resistance_tables(wildcards):
    """The forward/inverse table of every resistance base (empty unless the study runs it)."""
    return [f"results/{wildcards.study}/resistance/{b['world']}/{b['size']}/tokens-{b['tokens']}.csv"
            for b in experiments.resistance_bases(config)]


def resistance_inputs(wildcards):
    """The pretrained folders of every seed of a resistance base."""
    base = next(b for b in experiments.resistance_bases(config)
                if (b["world"], b["size"], b["tokens"]) ==
                (wildcards.world, wildcards.size, int(wildcards.tokens)))
    return [f"results/{wildcards.study}/base/{wildcards.world}/{wildcards.size}/pseed-{p}"
            for p in base["pretrain_seeds"]]


def compression_base(wildcards):
    """The first main base (first pretraining seed): the compression job's model."""
    b = next(b for b in BASES if b["role"] == "main")
    return f"results/{wildcards.study}/base/{b['world']}/{b['size']}/pseed-{b['pretrain_seeds'][0]}"


def final_outputs():
    screen = [f"results/{STUDY}/tables/screen.csv"] if config.get("screen") else []
    if MODE == "toy" and "compression" in config["experiments"]:
        screen += [f"results/{STUDY}/tables/{n}.csv" for n in ("compressors", "pareto", "ideal")]
    return [
        f"results/{STUDY}/claims.csv",
        f"results/{STUDY}/manifest.json",
        f"results/{STUDY}/tables/checkpoints.csv",
        f"results/{STUDY}/tables/curves.csv",
        *[f for files in figure_files(STUDY).values() for f in files],
        *screen,
        *pair_files(STUDY),
    ]


def arch_of(wildcards):
    return config["models"][wildcards.size]


def budget_of(wildcards):
    return config["pretrain"]["tokens"][wildcards.size]


def ladder_of(wildcards):
    return ladder_tokens(wildcards.size)


def pretrain_settings():
    """Pretraining settings shared by every size (budgets, ladder and seeds are per job)."""
    skip = ("tokens", "checkpoints", "sizes", "seeds", "mirror_seeds")
    return {k: v for k, v in config["pretrain"].items() if k not in skip}


def base_checkpoint(wildcards):
    return f"results/{wildcards.study}/base/{wildcards.world}/{wildcards.size}/pseed-{wildcards.pseed}"


def rebound_settings(wildcards):
    """What affects a rebound job: grids, the fine-tuning regime, what is kept, and the
    directions the experiments using its base ask for."""
    keys = ["tasks", "seeds", "n_pos", "n_neg", "lr", "loss", "batch_size", "keep", "adapter",
            "trainer", "checkpointing"]
    base = experiments.base_of(config, wildcards.world, wildcards.size, wildcards.tokens)
    settings = {k: REBOUND[k] for k in keys} | {"directions": base["directions"]}
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


def hub_sizes():
    """Rows per task table in hub mode (the world keys that size the toy task sets)."""
    world = config["world"]
    return {"pool": world["task_pool"], "heldout": world["task_heldout"], "prompts": world["prompts"]}


def study_root(wildcards, output):
    """results/<study>, the folder of the manifest the rule writes."""
    return str(Path(output[0]).parent)


# Released (base, aligned) pairs (rules/pairs.smk, hub mode): results/<study>/pairs/<pair>/...
PAIRS = config.get("pairs") or {}


wildcard_constraints:
    pair="[A-Za-z0-9_]+",
    model="base|aligned",


def pair_model(wildcards):
    """The hub id and revision of a pair's base or aligned model."""
    return PAIRS[wildcards.pair][wildcards.model]


def pair_settings(wildcards):
    """What affects a pair job: the pair's direction and the study's perturbation regime (n_neg
    grid, lr, loss, batch size, adapter, trainer)."""
    keys = ["n_neg", "lr", "loss", "batch_size", "adapter", "trainer", "checkpointing"]
    return {k: REBOUND[k] for k in keys} | {
        "direction": pair_spec(config, wildcards.pair)["direction"]}


def pair_task_tables(wildcards):
    """The world tables of a pair job's task."""
    return {k: v for k, v in world_tables(wildcards.study).items()
            if k.split("_")[0] == wildcards.task}


def pair_judge_dir(wildcards):
    """The fetched judge folder of a pair job's task (none when its judge is exact)."""
    return {k: v for k, v in judge_dirs(wildcards).items() if k == f"judge_{wildcards.task}"}


def pair_job_outputs(name):
    """One output file (metrics.csv or prompts.parquet) of every job of a pair: task x seed."""
    def files(wildcards):
        spec = pair_spec(config, wildcards.pair)
        return [f"results/{wildcards.study}/pairs/{wildcards.pair}/{t}/seed-{s}/{name}"
                for t in spec["tasks"] for s in spec["seeds"]]

    return files


def pair_files(study="{study}"):
    """The card, its curves and its figure of every configured pair."""
    return [f"results/{study}/pairs/{p}/{name}" for p in PAIRS
            for name in ("card.csv", "curves.csv", "card.png", "card.pdf")]


def pair_reports(wildcards):
    return pair_files(wildcards.study)
