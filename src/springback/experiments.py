"""The experiments of a study, expanded into the bases the rebound protocol runs on.

- ``rebound``: the config's ``rebound.bases`` (the effect and its paired controls), every
  direction of ``rebound.directions``;
- ``size`` (claim C4): each size of ``size.sizes`` at ``size.tokens`` as a main base, with its
  random-init twin as the paired control;
- ``volume`` (claim C5): one size at each budget of ``volume.tokens``;
- ``prior``: ``prior.size`` at ``prior.tokens`` in the main world (the balanced reference) and
  in every world of ``worlds`` with a nonzero prior (D_p's behaviour shifted toward the target);
- ``resistance`` (claim C1): forward vs inverse alignment on each size of ``resistance.sizes``
  and its random-init twin (its own protocol, not the rebound's: ``resistance_bases``).

A base is one (world, size, tokens); an experiment naming a base another already holds adds its
directions and pretraining seeds to it and keeps the first role given (so the rebound
experiment's pre-emergence control can also be a point of the volume series). From the bases
follow the study's jobs: the base models and their checkpoint ladders (``base_models``,
``ladder``), the rebound jobs (``rebound_jobs``), what affects one (``rebound_settings``) and the
one base that stands for the study (``representative_base``). Pure functions of a config
completed by springback.config: the rules, the config checks and the claims all read the same
expansion.
"""

from __future__ import annotations

EXPERIMENTS = ("rebound", "size", "volume", "prior", "resistance", "compression", "algorithms",
               "mitigation")


def worlds(cfg: dict) -> dict[str, dict]:
    """The pretraining worlds besides main (toy mode; config ``worlds``) that have seeds, each
    with its seeds, ``mirror`` (default false) and ``prior`` (nats, default 0)."""
    if cfg["mode"] == "hub":
        return {}
    return {name: {"seeds": list(spec["seeds"]), "mirror": bool(spec["mirror"]),
                   "prior": float(spec["prior"])}
            for name, spec in cfg["worlds"].items() if spec["seeds"]}


def world_seeds(cfg: dict) -> dict[str, list[int]]:
    """Pretraining seeds per world (toy: main, then every world of ``worlds`` with seeds; hub:
    one)."""
    if cfg["mode"] == "hub":
        return {"hub": [0]}
    return {"main": cfg["pretrain"]["seeds"]} | {w: s["seeds"] for w, s in worlds(cfg).items()}


def study_bases(cfg: dict) -> list[dict]:
    """Every base of the study's experiments: world, size, tokens, role, pretrain_seeds,
    directions and the experiments that use it, in a fixed order."""
    hub = cfg["mode"] == "hub"
    seeds, rebound = world_seeds(cfg), cfg["rebound"]
    bases: dict[tuple, dict] = {}

    def add(exp, size, tokens, *, world="main", role="main", pretrain_seeds=None, directions):
        world = "hub" if hub else world
        b = bases.setdefault((world, size, tokens), {
            "world": world, "size": size, "tokens": tokens, "role": role,
            "pretrain_seeds": [], "directions": [], "experiments": []})
        b["pretrain_seeds"] = sorted({*b["pretrain_seeds"], *(pretrain_seeds or seeds[world])})
        b["directions"] = [d for d in ("forward", "reversed")
                           if d in b["directions"] or d in directions]
        b["experiments"] += [exp]

    experiments = cfg["experiments"]
    if "rebound" in experiments:
        for b in rebound["bases"]:
            add("rebound", b["size"], b["tokens"], world=b["world"], role=b["role"],
                directions=b.get("directions", rebound["directions"]))
    if "size" in experiments and not hub:
        spec = cfg["size"]
        for size in spec["sizes"]:
            own = spec["pretrain_seeds"].get(size)  # a size not listed: its world's seeds
            add("size", size, spec["tokens"], pretrain_seeds=own, directions=spec["directions"])
            add("size", size, 0, role="random_init", pretrain_seeds=own,
                directions=spec["directions"])
    if "volume" in experiments and not hub:
        spec = cfg["volume"]
        for tokens in spec["tokens"]:
            add("volume", spec["size"], tokens, directions=spec["directions"])
    if "prior" in experiments and not hub:
        spec = cfg["prior"]
        for world in ["main", *prior_worlds(cfg)]:
            add("prior", spec["size"], spec["tokens"], world=world, directions=spec["directions"])
    return list(bases.values())


def prior_worlds(cfg: dict) -> list[str]:
    """The worlds of ``worlds`` (with seeds) whose D_p is shifted toward the target behaviour."""
    return [name for name, spec in worlds(cfg).items() if spec["prior"] != 0]


def resistance_bases(cfg: dict) -> list[dict]:
    """The bases of the resistance experiment (toy mode): each size at ``resistance.tokens``
    (role main) and at 0 (random_init), with every pretraining seed of the main world."""
    if "resistance" not in cfg["experiments"] or cfg["mode"] == "hub":
        return []
    spec, seeds = cfg["resistance"], cfg["pretrain"]["seeds"]
    return [{"world": "main", "size": size, "tokens": tokens, "role": role,
             "pretrain_seeds": list(seeds)}
            for size in spec["sizes"] for tokens, role in ((spec["tokens"], "main"),
                                                           (0, "random_init"))]


def algorithm_bases(cfg: dict) -> list[dict]:
    """The bases of the algorithms experiment (toy mode): ``algorithms.size`` at
    ``algorithms.tokens`` (main) and at 0 (random_init), every pretraining seed of the main world."""
    if "algorithms" not in cfg["experiments"] or cfg["mode"] == "hub":
        return []
    spec, seeds = cfg["algorithms"], cfg["pretrain"]["seeds"]
    return [{"world": "main", "size": spec["size"], "tokens": tokens, "role": role,
             "pretrain_seeds": list(seeds)}
            for tokens, role in ((spec["tokens"], "main"), (0, "random_init"))]


def mitigation_bases(cfg: dict) -> list[dict]:
    """The base of the mitigation experiment (toy mode): ``mitigation.size`` at
    ``mitigation.tokens`` in the main world, every pretraining seed (each arm is paired with plain
    SFT on the same base, which is its control)."""
    if "mitigation" not in cfg["experiments"] or cfg["mode"] == "hub":
        return []
    spec = cfg["mitigation"]
    return [{"world": "main", "size": spec["size"], "tokens": spec["tokens"], "role": "main",
             "pretrain_seeds": list(cfg["pretrain"]["seeds"])}]


def representative_base(cfg: dict) -> dict:
    """The base that stands for the study where one base is enough (the regime screen, the
    compression experiment): the first base of role main (of the rebound protocol, else of the
    algorithms or mitigation experiment), at its first pretraining seed, as
    {world, size, pseed, tokens}."""
    b = next(b for b in study_bases(cfg) + algorithm_bases(cfg) + mitigation_bases(cfg)
             if b["role"] == "main")
    return {"world": b["world"], "size": b["size"], "pseed": b["pretrain_seeds"][0],
            "tokens": b["tokens"]}


def rebound_units(cfg: dict, bases: list[dict] | None = None) -> list[dict]:
    """(world, size, pseed, tokens) of every job of the rebound protocol: each base (default:
    the study's, ``study_bases``) once per pretraining seed it uses."""
    return [{"world": b["world"], "size": b["size"], "pseed": p, "tokens": b["tokens"]}
            for b in (study_bases(cfg) if bases is None else bases) for p in b["pretrain_seeds"]]


def rebound_jobs(cfg: dict) -> list[dict]:
    """The wildcards of every rebound job: a unit (``rebound_units``), or with rebound.job run
    one job per task x direction x fine-tuning seed of it."""
    units, rebound = rebound_units(cfg), cfg["rebound"]
    if rebound["job"] == "base":
        return units
    return [{**u, "task": t, "direction": d, "seed": s} for u in units for t in rebound["tasks"]
            for d in base_of(cfg, u["world"], u["size"], u["tokens"])["directions"]
            for s in rebound["seeds"]]


def rebound_settings(cfg: dict, world: str, size: str, tokens: int) -> dict:
    """What affects a rebound job of a base: grids, the fine-tuning regime (lr: rebound.control_lr
    of its base's role and size, else rebound.lr), what is kept, and the directions the
    experiments using its base ask for."""
    keys = ["tasks", "seeds", "n_pos", "n_neg", "loss", "batch_size", "keep", "adapter",
            "trainer", "checkpointing"]
    rebound, base = cfg["rebound"], base_of(cfg, world, size, tokens)
    lr = rebound["control_lr"].get(base["role"], {}).get(base["size"], rebound["lr"])
    return {k: rebound[k] for k in keys} | {"lr": lr, "directions": base["directions"]}


def ladder_tokens(cfg: dict, size: str) -> list[int]:
    """The checkpoints (tokens seen) of a base model: toy, the pretraining ladder of a size
    (pretrain.checkpoints within its budget, and the budget); hub, the model's release and
    tokens 0 (its seeded random initialisation, the paired control) where a base asks for it."""
    if cfg["mode"] == "hub":
        release = cfg["hub"]["models"][size]["tokens"]
        return sorted({release} | {b["tokens"] for b in study_bases(cfg) if b["size"] == size})
    budget = cfg["pretrain"]["tokens"][size]
    return sorted({t for t in cfg["pretrain"]["checkpoints"] if t <= budget} | {budget})


def base_models(cfg: dict) -> list[tuple[str, str, int]]:
    """(world, size, pretraining seed) of every base model: toy, each model pretrained from
    scratch that an experiment's bases need (each saves its whole ladder); hub, each fetched
    model of hub.models."""
    if cfg["mode"] == "hub":
        return [("hub", name, 0) for name in cfg["hub"]["models"]]
    bases = study_bases(cfg) + resistance_bases(cfg) + algorithm_bases(cfg) + mitigation_bases(cfg)
    return sorted({(b["world"], b["size"], p) for b in bases for p in b["pretrain_seeds"]})


def ladder(cfg: dict) -> list[dict]:
    """{world, size, pseed, tokens} of every base checkpoint: the ladder of every base model."""
    return [{"world": w, "size": s, "pseed": p, "tokens": t} for w, s, p in base_models(cfg)
            for t in ladder_tokens(cfg, s)]


def base_of(cfg: dict, world: str, size: str, tokens: int) -> dict:
    """The study base at (world, size, tokens)."""
    for b in study_bases(cfg):
        if (b["world"], b["size"], b["tokens"]) == (world, size, int(tokens)):
            return b
    raise KeyError(f"no base {world}/{size}@{tokens} in the study")


def nonembedding_params(arch: dict) -> int:
    """Parameters of a Llama-style model outside its (tied) embedding and norms: attention
    (4 h^2) and gated MLP (3 h i) per layer - the size axis of scaling studies."""
    h, i = arch["hidden"], arch["intermediate"]
    return arch["layers"] * (4 * h * h + 3 * h * i)
