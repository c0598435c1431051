# Hub mode's helpers (mode: hub): fetched base models, hub datasets and judges, GPU jobs.
# rules/toy_mode.smk defines the same names for toy mode; the Snakefile includes one of them.
from springback.config import pair_spec
from springback.judge import MODEL_JUDGES


wildcard_constraints:
    pair="[A-Za-z0-9_]+",
    model="base|aligned",


def task_names():
    """Tasks whose tables the hub_data job writes, i.e. the study's."""
    return REBOUND["tasks"]


def hub_tokens(name):
    """Checkpoints of a hub model: its release, and tokens 0 (its random initialisation, the
    paired control) where a base asks for it."""
    release = HUB["models"][name]["tokens"]
    return sorted({release} | {b["tokens"] for b in BASES if b["size"] == name})


def ladder():
    """(world, size, pseed, tokens) of every base checkpoint: the fetched models."""
    return [("hub", name, 0, t) for name in HUB["models"] for t in hub_tokens(name)]


def hub_model(wildcards):
    return HUB["models"][wildcards.size]


def hub_checkpoints(wildcards):
    return hub_tokens(wildcards.size)


def hub_judge(wildcards):
    return HUB["judges"][wildcards.task]


def judge_dirs(wildcards):
    """Fetched judge folders of the tasks whose judge is a model."""
    return {
        f"judge_{task}": f"results/{wildcards.study}/judges/{task}"
        for task in REBOUND["tasks"]
        if HUB["judges"].get(task, {"kind": "exact"})["kind"] in MODEL_JUDGES
    }


def model_runtime():
    """Device, dtype and remote-code policy of model-loading jobs (hub.*); with hub.gpus > 1 the
    model's layers are spread over the job's GPUs (device_map auto)."""
    runtime = {k: HUB[k] for k in ("device", "dtype", "trust_remote_code")}
    return runtime | ({"device_map": "auto"} if gpus() > 1 else {})


def job_threads():
    """Threads of a model job: it feeds a GPU."""
    return 4


def gpus():
    """GPUs a model job asks for (Slurm: --gpus=N): hub.gpus, none when hub.device is cpu."""
    return 0 if HUB["device"] == "cpu" else HUB["gpus"]


def job_mem(toy_mb, hub_mb=64000):
    """mem_mb of a model job: the hub figure, growing with the attempt."""
    return scaled_mem(hub_mb)


def job_runtime(toy_min, hub_min=1440):
    """Integer minutes: a hub job trains or evaluates a 7B model many times."""
    return hub_min


def world_tables(study="{study}"):
    """Every parquet file the hub_data job writes, by stem (a pattern unless ``study`` is
    given), i.e. held-out pretraining-style text (no pretraining corpus) and the task tables."""
    root = f"results/{study}/world"
    return {"pretrain_heldout": f"{root}/pretrain_heldout.parquet"} | task_tables(root)


def trend_figures():
    """Figures of the toy-only experiments: none."""
    return []


def compression_tables(wildcards):
    """The compression job's tables: none (toy mode only)."""
    return {}


def experiment_tables():
    """Tables that `all` asks for by name besides the claims' and figures' (none)."""
    return []


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
    """The fetched judge folder of a pair job's task (none when its judge is not a model)."""
    return {k: v for k, v in judge_dirs(wildcards).items() if k == f"judge_{wildcards.task}"}


def pair_job_outputs(name):
    """One output file (metrics.csv or prompts.parquet) of every job of a pair: task x seed."""
    def files(wildcards):
        spec = pair_spec(config, wildcards.pair)
        return [f"results/{wildcards.study}/pairs/{wildcards.pair}/{t}/seed-{s}/{name}"
                for t in spec["tasks"] for s in spec["seeds"]]

    return files
