import importlib.util
from pathlib import Path

from snakemake.utils import validate

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
MODE = config["mode"]
HUB = config["hub"]


wildcard_constraints:
    study=STUDY,
    size="[A-Za-z0-9_]+",
    tokens="[0-9]+",


def task_names():
    """Tasks whose tables the data stage writes: toy mode's world always has both."""
    return ["sentiment", "safety"] if MODE == "toy" else REBOUND["tasks"]


def ladder():
    """(size, tokens) of every base checkpoint: toy, the pretraining ladder; hub, the models."""
    if MODE == "hub":
        return [(name, m["tokens"]) for name, m in HUB["models"].items()]
    return [(s, t) for s in config["pretrain"]["sizes"] for t in ladder_tokens(s)]


def hub_model(wildcards):
    return HUB["models"][wildcards.size]


def hub_judge(wildcards):
    return HUB["judges"][wildcards.task]


def judge_dirs(wildcards):
    """Fetched judge folders of the tasks whose judge is a model (none in toy mode)."""
    if MODE == "toy":
        return {}
    return {
        f"judge_{task}": f"results/{wildcards.study}/judges/{task}"
        for task in REBOUND["tasks"]
        if HUB["judges"].get(task, {"kind": "exact"})["kind"] != "exact"
    }


def model_runtime():
    """Device, dtype and remote-code policy of model-loading jobs."""
    if MODE == "toy":
        return {"device": "cpu", "dtype": "float32", "trust_remote_code": False}
    return {k: HUB[k] for k in ("device", "dtype", "trust_remote_code")}


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
    """(size, tokens) of every rebound job (each runs every task, direction and seed)."""
    return [(b["size"], b["tokens"]) for b in REBOUND["bases"]]


def scaled_mem(base_mb):
    """mem_mb growing with the attempt number (retries get more memory)."""
    return lambda wildcards, attempt: base_mb * attempt


def world_tables(study="{study}"):
    """Every parquet file written by the data stage, by stem (a pattern unless ``study`` is
    given); hub mode has no pretraining corpus, only held-out pretraining-style text."""
    root = f"results/{study}/world"
    names = ("pretrain", "pretrain_heldout") if MODE == "toy" else ("pretrain_heldout",)
    tables = {name: f"{root}/{name}.parquet" for name in names}
    for task in task_names():
        for name in ("align", "perturb", "align_heldout", "perturb_heldout", "prompts"):
            tables[f"{task}_{name}"] = f"{root}/{task}/{name}.parquet"
    return tables


def ladder_dirs(wildcards):
    """The base output folder of every model size (toy) or model (hub)."""
    return sorted({f"results/{wildcards.study}/base/{size}" for size, _ in ladder()})


def rebound_metrics(wildcards):
    return [
        f"results/{wildcards.study}/metrics/{s}/tokens-{n}.csv" for s, n in rebound_units()
    ]


def rebound_prompts(wildcards):
    return [f"{m[:-4]}.prompts.parquet" for m in rebound_metrics(wildcards)]


def figure_files(study="{study}"):
    names = [f"rebound_{t}" for t in REBOUND["tasks"]]
    names += [f"compression_{t}" for t in REBOUND["tasks"]]
    names += [f"two_phase_{t}" for t in REBOUND["tasks"]] + ["ladder", "kl_rebound"]
    return {n: [f"results/{study}/figures/{n}.{ext}" for ext in ("png", "pdf")] for n in names}


def final_outputs():
    return [
        f"results/{STUDY}/claims.csv",
        f"results/{STUDY}/manifest.json",
        f"results/{STUDY}/tables/checkpoints.csv",
        f"results/{STUDY}/tables/curves.csv",
        *[f for files in figure_files(STUDY).values() for f in files],
    ]


def arch_of(wildcards):
    return config["models"][wildcards.size]


def budget_of(wildcards):
    return config["pretrain"]["tokens"][wildcards.size]


def ladder_of(wildcards):
    return ladder_tokens(wildcards.size)


def pretrain_settings():
    """Pretraining settings shared by every size (budgets and ladder are per-size params)."""
    skip = ("tokens", "checkpoints", "sizes")
    return {k: v for k, v in config["pretrain"].items() if k not in skip}


def base_models(wildcards):
    return f"results/{wildcards.study}/base/{wildcards.size}"


def phase_settings(phase):
    """What affects a fine-tuning phase: shared grids and optimiser settings."""
    keys = ["tasks", "directions", "seeds", "n_pos", "lr", "batch_size"] + (["n_neg"] if phase == 2 else [])
    return {k: REBOUND[k] for k in keys}


def all_task_tables(wildcards):
    """The world tables of every task of the study."""
    tables = world_tables(wildcards.study)
    return {k: v for k, v in tables.items() if k.split("_")[0] in REBOUND["tasks"]}


def all_ladder_checkpoints(wildcards):
    """Every base checkpoint directory, in ladder order."""
    return [f"results/{wildcards.study}/base/{size}/tokens-{t}" for size, t in ladder()]


LIBRARY = Path(importlib.util.find_spec("springback").origin).parent  # what the jobs import


def code_hash(*modules):
    """sha256 of the library modules that a job runs - Snakemake does not track modules that scripts
    import, so this param makes exactly the rules that use a changed module rerun."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update((LIBRARY / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


def hub_sizes():
    """Rows per task table in hub mode (the world keys that size the toy task sets)."""
    world = config["world"]
    return {"pool": world["task_pool"], "heldout": world["task_heldout"], "prompts": world["prompts"]}


def study_root(wildcards, output):
    """results/<study>, the folder of the manifest the rule writes."""
    return str(Path(output[0]).parent)
