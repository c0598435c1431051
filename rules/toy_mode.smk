# Toy mode's helpers (mode: toy): the embedded world and models pretrained from scratch on CPU.
# rules/hub_mode.smk defines the same names for hub mode; the Snakefile includes one of them.


def task_names():
    """Tasks whose tables the world writes: always both."""
    return ["sentiment", "safety"]


def pretrained_models():
    """(world, size, pseed) of every model pretrained from scratch: those the experiments'
    bases need (each saves its whole ladder)."""
    bases = BASES + experiments.resistance_bases(config) + experiments.algorithm_bases(config)
    return sorted({(b["world"], b["size"], p) for b in bases for p in b["pretrain_seeds"]})


def ladder_tokens(size):
    """Pretraining checkpoints (tokens seen) saved for a model size."""
    budget = config["pretrain"]["tokens"][size]
    return sorted({t for t in config["pretrain"]["checkpoints"] if t <= budget} | {budget})


def ladder():
    """(world, size, pseed, tokens) of every base checkpoint: the pretraining ladder of every
    pretrained model."""
    return [(w, s, p, t) for w, s, p in pretrained_models() for t in ladder_tokens(s)]


def judge_dirs(wildcards):
    """Fetched judge folders: none, the world's exact judge needs no model."""
    return {}


def model_runtime():
    """Device, dtype and remote-code policy of model-loading jobs: float32 on toy.device."""
    return {"device": config["toy"]["device"], "dtype": "float32", "trust_remote_code": False}


def job_threads():
    """Threads of a model job: toy models are overhead-bound, so two 1-thread jobs side by side
    finish 1.5x more runs per second on 2 cores than one 2-thread job (benchmarks/)."""
    return 1


def gpus():
    """GPUs a model job asks for: one on toy.device cuda, else none."""
    return int(config["toy"]["device"] == "cuda")


def job_mem(toy_mb, hub_mb=64000):
    """mem_mb of a model job: the toy figure, growing with the attempt."""
    return scaled_mem(toy_mb)


def job_runtime(toy_min, hub_min=1440):
    """Integer minutes of a model job: toy jobs are short."""
    return toy_min


def world_tables(study="{study}"):
    """Every parquet file the world job writes, by stem (a pattern unless ``study`` is given),
    i.e. the main world's D_p and its held-out part, the task tables and the resistance
    experiment's tables (other worlds' D_p: rule world_corpus)."""
    root = f"results/{study}/world"
    tables = {name: f"{root}/{name}.parquet" for name in ("pretrain", "pretrain_heldout")}
    tables |= task_tables(root)
    resistance = {f"resistance_{n}": f"{root}/resistance/{n}.parquet" for n in ("train", "prompts")}
    return tables | resistance


def trend_figures():
    """Figures of the size, volume, resistance, compression and algorithms experiments the study
    runs, and the theorem's."""
    names = {"size": ["size_trend"], "volume": ["volume_trend"], "prior": ["prior_shift"],
             "resistance": ["resistance"],
             "compression": ["compressors", "rank_frequency"], "algorithms": ["algorithms"]}
    return [n for e, ns in names.items() if e in config["experiments"] for n in ns] + ["theorem"]


def compression_tables(wildcards):
    """The compression job's tables, when the study runs it."""
    if "compression" not in config["experiments"]:
        return {}
    root = f"results/{wildcards.study}/tables"
    return {"compressors": f"{root}/compressors.csv", "ranks": f"{root}/rank_frequency.csv"}


def experiment_tables():
    """Tables that `all` asks for by name, i.e. the compression experiment's (if it runs)."""
    if "compression" not in config["experiments"]:
        return []
    return [f"results/{STUDY}/tables/{n}.csv" for n in ("compressors", "pareto", "ideal")]


def world_spec(wildcards):
    """How a world besides main changes D_p: {mirror, prior} (config worlds)."""
    spec = experiments.worlds(config)[wildcards.world]
    return {k: spec[k] for k in ("mirror", "prior")}


def arch_of(wildcards):
    return config["models"][wildcards.size]


def budget_of(wildcards):
    return config["pretrain"]["tokens"][wildcards.size]


def ladder_of(wildcards):
    return ladder_tokens(wildcards.size)


def pretrain_settings():
    """Pretraining settings shared by every size (budgets, ladder and seeds are per job)."""
    skip = ("tokens", "checkpoints", "sizes", "seeds")
    return {k: v for k, v in config["pretrain"].items() if k not in skip}


def algorithm_task_tables(wildcards):
    """The world tables of the algorithms experiment's tasks."""
    tables = world_tables(wildcards.study)
    return {k: v for k, v in tables.items() if k.split("_")[0] in config["algorithms"]["tasks"]}


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
