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
experiment's pre-emergence control can also be a point of the volume series). Pure functions of
the config: the Snakefile, the config checks and the claims all read the same expansion.
"""

from __future__ import annotations

EXPERIMENTS = ("rebound", "size", "volume", "prior", "resistance", "compression", "algorithms")


def worlds(cfg: dict) -> dict[str, dict]:
    """The pretraining worlds besides main (toy mode; config ``worlds``) that have seeds, each
    with its seeds, ``mirror`` (default false) and ``prior`` (nats, default 0)."""
    if cfg.get("mode", "toy") == "hub":
        return {}
    return {name: {"seeds": list(spec["seeds"]), "mirror": bool(spec.get("mirror", False)),
                   "prior": float(spec.get("prior", 0.0))}
            for name, spec in (cfg.get("worlds") or {}).items() if spec.get("seeds")}


def world_seeds(cfg: dict) -> dict[str, list[int]]:
    """Pretraining seeds per world (toy: main, then every world of ``worlds`` with seeds; hub:
    one)."""
    if cfg.get("mode", "toy") == "hub":
        return {"hub": [0]}
    return {"main": cfg["pretrain"]["seeds"]} | {w: s["seeds"] for w, s in worlds(cfg).items()}


def study_bases(cfg: dict) -> list[dict]:
    """Every base of the study's experiments: world, size, tokens, role, pretrain_seeds,
    directions and the experiments that use it, in a fixed order."""
    hub = cfg.get("mode", "toy") == "hub"
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

    experiments = cfg.get("experiments", ["rebound"])
    if "rebound" in experiments:
        for b in rebound["bases"]:
            add("rebound", b["size"], b["tokens"], world=b.get("world", "main"),
                role=b.get("role", "main"), directions=rebound["directions"])
    if "size" in experiments and not hub:
        spec = cfg["size"]
        for size in spec["sizes"]:
            own = spec.get("pretrain_seeds", {}).get(size)
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
    if "resistance" not in cfg.get("experiments", []) or cfg.get("mode", "toy") == "hub":
        return []
    spec, seeds = cfg["resistance"], cfg["pretrain"]["seeds"]
    return [{"world": "main", "size": size, "tokens": tokens, "role": role,
             "pretrain_seeds": list(seeds)}
            for size in spec["sizes"] for tokens, role in ((spec["tokens"], "main"),
                                                           (0, "random_init"))]


def algorithm_bases(cfg: dict) -> list[dict]:
    """The bases of the algorithms experiment (toy mode): ``algorithms.size`` at
    ``algorithms.tokens`` (main) and at 0 (random_init), every pretraining seed of the main world."""
    if "algorithms" not in cfg.get("experiments", []) or cfg.get("mode", "toy") == "hub":
        return []
    spec, seeds = cfg["algorithms"], cfg["pretrain"]["seeds"]
    return [{"world": "main", "size": spec["size"], "tokens": tokens, "role": role,
             "pretrain_seeds": list(seeds)}
            for tokens, role in ((spec["tokens"], "main"), (0, "random_init"))]


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
