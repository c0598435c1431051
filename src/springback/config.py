"""A study's config: one loader for the workflow, ``python -m springback.plan``, the benchmarks
and the tests, and the cross-key checks a JSON schema cannot express.

``load`` reads config/config.yaml and overlays more files as Snakemake's ``--configfile`` does;
``complete`` (what the workflow calls on the config Snakemake assembled) checks it against
config/schema.yaml, fills every default the schema gives (nowhere else holds one) and runs the
cross-key checks. Each failure raises ``ConfigError`` with one line that names the offending key.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match
from snakemake.utils import update_config

from springback.adapters import check_spec
from springback.experiments import ladder_tokens, prior_worlds, study_bases, world_seeds
from springback.judge import JUDGES, spec_keys

DEFAULTS = Path("config/config.yaml")  # the default study, relative to the project root


class ConfigError(ValueError):
    """A study config is invalid; the message names the key."""


def read_yaml(path: str | Path) -> dict:
    """A config file's mapping of keys, or a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: "
                          f"{' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} is not a mapping of config keys")
    return data


def load(files=(), *, defaults: str | Path = DEFAULTS) -> dict:
    """``defaults`` overlaid with each of ``files`` as Snakemake's --configfile does (mappings
    merged key by key, lists replaced), completed by the schema beside ``defaults``."""
    cfg = read_yaml(defaults)
    for path in files:
        update_config(cfg, read_yaml(path))
    return complete(cfg, Path(defaults).resolve().with_name("schema.yaml"))


def complete(cfg: dict, schema_path: str | Path) -> dict:
    """``cfg`` checked against the schema, its defaults filled in (in place), then every
    cross-key rule checked; returns it."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    check_schema(cfg, schema)
    fill_defaults(cfg, schema)
    check_study_config(cfg)
    return cfg


def check_schema(cfg: dict, schema: dict) -> None:
    """Validate against the JSON schema, raising one line that names the first offending key."""
    error = best_match(Draft202012Validator(schema).iter_errors(cfg))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"config key {key}: {error.message}")


def _set_defaults(validator, properties, instance, schema):
    """jsonschema's ``properties`` keyword, first setting every absent property that has a
    default (the python-jsonschema FAQ recipe, as snakemake.utils.validate fills defaults)."""
    for name, subschema in properties.items():
        if "default" in subschema and isinstance(instance, dict):
            instance.setdefault(name, copy.deepcopy(subschema["default"]))
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance,
                                                             schema)


def fill_defaults(cfg: dict, schema: dict) -> None:
    """Fill every default the schema gives, at every depth (a default object is filled in
    turn), in place."""
    filler = validators.extend(Draft202012Validator, {"properties": _set_defaults})
    for _ in filler(schema).iter_errors(cfg):
        pass  # check_schema has reported any error; this pass only fills


def _increasing(values: list[int], key: str) -> None:
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"config key {key} must be strictly increasing, got {values}")


def check_models(cfg: dict) -> None:
    for name in cfg["pretrain"]["sizes"]:
        if name not in cfg["models"]:
            raise ConfigError(f"config key pretrain.sizes: unknown model size {name!r}")
    for name in cfg["pretrain"]["sizes"]:
        arch = cfg["models"][name]
        if arch["hidden"] % arch["heads"]:
            raise ConfigError(f"config key models.{name}.heads ({arch['heads']}) must divide "
                              f"models.{name}.hidden ({arch['hidden']})")
        if name not in cfg["pretrain"]["tokens"]:
            raise ConfigError(f"config key pretrain.tokens has no budget for model size {name!r}")


def check_grids(rebound: dict, evaluate: dict | None = None) -> None:
    """Grids the statistics can use: increasing multiples of the batch size (every optimiser step
    sees batch_size examples), n_neg from 0 with >= 4 points, >= 2 alignment amounts."""
    _increasing(rebound["n_pos"], "rebound.n_pos")
    _increasing(rebound["n_neg"], "rebound.n_neg")
    if rebound["n_neg"][0] != 0:
        raise ConfigError("config key rebound.n_neg must start at 0 (the aligned model itself)")
    for key in ("n_pos", "n_neg"):
        off = [n for n in rebound[key] if n % rebound["batch_size"]]
        if off:
            raise ConfigError(f"config key rebound.{key}: {off} are not multiples of "
                              f"rebound.batch_size ({rebound['batch_size']})")
    text_at = (evaluate or {}).get("text_at") or []  # None: every point
    off = sorted(set(text_at) - set(rebound["n_neg"]))
    if off:
        raise ConfigError(f"config key evaluate.text_at: {off} are not on the rebound.n_neg grid")


def check_roles(cfg: dict) -> None:
    """At least one main base; a base's world has seeds (main, or a world of ``worlds``); one
    base per control role."""
    bases, seeds = cfg["rebound"]["bases"], world_seeds(cfg)
    roles = [b["role"] for b in bases]
    if "main" not in roles:
        raise ConfigError("config key rebound.bases needs a base with role main (the effect)")
    for i, b in enumerate(bases):
        world = b["world"]
        if world not in seeds:
            raise ConfigError(f"config key rebound.bases[{i}].world: world {world!r} has no "
                              f"seeds (worlds.{world}.seeds)")
        if roles[i] != "main" and roles.count(roles[i]) > 1:
            raise ConfigError(f"config key rebound.bases[{i}].role: {roles[i]!r} is used twice")


RESERVED_WORLDS = ("main", "hub", "sentiment", "safety", "resistance")  # names of other folders


def check_worlds(cfg: dict) -> None:
    """World names that stay apart from the main world's files and task folders; the prior
    experiment needs a world with a prior and seeds."""
    for name in cfg["worlds"]:
        if name in RESERVED_WORLDS:
            raise ConfigError(f"config key worlds.{name}: {name!r} is reserved (the main world is "
                              "pretrain.seeds; world/<task>/ holds the task tables)")
    if "prior" in cfg["experiments"] and not prior_worlds(cfg):
        raise ConfigError("config key worlds: the prior experiment needs a world with a nonzero "
                          "prior and seeds")


def check_experiments(cfg: dict) -> None:
    """Every base an experiment adds must be a pretrained size and a checkpoint of its ladder."""
    experiments = cfg["experiments"]
    if "size" in experiments:
        for size in cfg["size"]["sizes"]:
            if size not in cfg["pretrain"]["sizes"]:
                raise ConfigError(f"config key size.sizes: model size {size!r} is not in "
                                  "pretrain.sizes")
    if "prior" in experiments and cfg["prior"]["size"] not in cfg["pretrain"]["sizes"]:
        raise ConfigError(f"config key prior.size: model size {cfg['prior']['size']!r} is not in "
                          "pretrain.sizes")
    if "volume" in experiments:
        _increasing(cfg["volume"]["tokens"], "volume.tokens")
        if cfg["volume"]["size"] not in cfg["pretrain"]["sizes"]:
            raise ConfigError(f"config key volume.size: model size {cfg['volume']['size']!r} is "
                              "not in pretrain.sizes")
    if "resistance" in experiments:
        spec = cfg["resistance"]
        for size in spec["sizes"]:
            if size not in cfg["pretrain"]["sizes"]:
                raise ConfigError(f"config key resistance.sizes: model size {size!r} is not in "
                                  "pretrain.sizes")
            check_base(cfg, {"size": size, "tokens": spec["tokens"]}, "resistance")
        if spec["slice"] % spec["batch_size"]:
            raise ConfigError(f"config key resistance.slice ({spec['slice']}) is not a multiple "
                              f"of resistance.batch_size ({spec['batch_size']})")
        if 3 * spec["slice"] > cfg["world"]["style_pool"]:
            raise ConfigError(f"config key resistance.slice: 3 slices need {3 * spec['slice']} "
                              f"examples but world.style_pool is {cfg['world']['style_pool']}")
    if "mitigation" in experiments:
        check_mitigation(cfg)
    for base in study_bases(cfg):
        last = base["experiments"][-1]  # the experiment that added it last names the key
        check_base(cfg, base, "rebound.bases" if last == "rebound" else last)


def check_mitigation(cfg: dict) -> None:
    """The mitigation base is a ladder checkpoint, plain SFT is an arm (every other arm is paired
    with it), arms are distinct and each strength is one its arm can take."""
    spec = cfg["mitigation"]
    check_base(cfg, spec, "mitigation")
    labels = [(a["kind"], a.get("strength", 0)) for a in spec["arms"]]
    if ("sft", 0) not in labels:
        raise ConfigError("config key mitigation.arms: plain SFT ({kind: sft}) must be an arm")
    if len(set(labels)) < len(labels):
        raise ConfigError("config key mitigation.arms: an arm is listed twice")
    shared = [b for b in study_bases(cfg) if (b["world"], b["size"], b["tokens"])
              == ("main", spec["size"], spec["tokens"])]
    if shared:
        raise ConfigError(f"config key mitigation.tokens: {spec['size']} @ {spec['tokens']} is "
                          "also a base of the rebound protocol, whose SFT runs its plain-SFT arm "
                          "would duplicate: use another budget or its own study "
                          "(config/mitigation.yaml)")
    batch = cfg["rebound"]["batch_size"]
    for kind, strength in labels:
        if kind == "replay" and round(strength * batch) >= batch:
            raise ConfigError(f"config key mitigation.arms: replay strength {strength} leaves no "
                              "alignment example in a batch (must be < 1)")
        if kind == "recovery" and strength > 1:
            raise ConfigError(f"config key mitigation.arms: recovery strength {strength} is a "
                              "share (<= 1)")


def check_rebound(cfg: dict) -> None:
    rebound, world = cfg["rebound"], cfg["world"]
    check_grids(rebound, cfg["evaluate"])
    for key in ("n_pos", "n_neg"):
        if max(rebound[key]) > world["task_pool"]:
            raise ConfigError(f"config key rebound.{key} asks for {max(rebound[key])} examples "
                              f"but world.task_pool is {world['task_pool']}")
    for i, base in enumerate(rebound["bases"]):
        check_base(cfg, base, f"rebound.bases[{i}]")
    check_roles(cfg)
    screen = cfg["screen"]
    if screen:
        check_grids({**rebound, "n_pos": screen["n_pos"]})


def check_base(cfg: dict, base: dict, key: str) -> None:
    if base["size"] not in cfg["pretrain"]["sizes"]:
        raise ConfigError(f"config key {key}.size: model size {base['size']!r} is not in pretrain.sizes")
    ladder = ladder_tokens(cfg, base["size"])
    if base["tokens"] not in ladder:
        raise ConfigError(f"config key {key}.tokens: {base['tokens']} is not a pretraining "
                          f"checkpoint of size {base['size']!r} (ladder: {ladder})")


def check_results_folder(study: str, root: str | Path = "results") -> None:
    """results/<study> (relative to the working directory) must be a writable folder, or creatable:
    its nearest existing ancestor is a writable folder, not a file."""
    path = Path(root) / study
    existing = next(p for p in (path, *path.parents) if p.exists() or p == Path("."))
    if not existing.is_dir():
        raise ConfigError(f"config key study: results folder {path} cannot be created, "
                          f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"config key study: results folder {path} is not writable ({existing})")


def check_judge(cfg: dict, task: str) -> None:
    """A hub task's judge spec: the keys its kind (springback.judge.JUDGES) takes and needs."""
    judge = cfg["hub"]["judges"].get(task, {"kind": "exact"})  # no spec: the world's words
    kind = judge["kind"]
    unknown = sorted(set(judge) - set(spec_keys(kind)))
    if unknown:
        raise ConfigError(f"config key hub.judges.{task}.{unknown[0]}: judge kind {kind} takes "
                          f"only {', '.join(spec_keys(kind))}")
    missing = [k for k in JUDGES[kind].required if k not in judge]
    if missing:
        raise ConfigError(f"config key hub.judges.{task}.{missing[0]} is required for kind {kind}")
    if kind == "probe" and cfg["evaluate"]["sample"]:
        raise ConfigError(f"config key evaluate.sample must be false: hub.judges.{task} is a "
                          "probe, which scores no sampled text")


def check_hub(cfg: dict) -> None:
    """Hub mode: every base is a configured model, every task has a dataset and a valid judge,
    the task tables (hub.sizes) hold the largest grid point."""
    hub, rebound = cfg["hub"], cfg["rebound"]
    for i, base in enumerate(rebound["bases"]):
        model = hub["models"].get(base["size"])
        if model is None:
            raise ConfigError(f"config key rebound.bases[{i}].size: {base['size']!r} is not in "
                              "hub.models")
        if base["tokens"] not in (model["tokens"], 0):
            raise ConfigError(f"config key rebound.bases[{i}].tokens must equal "
                              f"hub.models.{base['size']}.tokens ({model['tokens']}) or be 0 "
                              "(its random initialisation)")
    for task in rebound["tasks"]:
        if task not in hub["datasets"]:
            raise ConfigError(f"config key hub.datasets has no dataset for task {task!r}")
        check_judge(cfg, task)
    for key in ("n_pos", "n_neg"):
        if max(rebound[key]) > hub["sizes"]["pool"]:
            raise ConfigError(f"config key rebound.{key} asks for {max(rebound[key])} examples "
                              f"but hub.sizes.pool is {hub['sizes']['pool']}")
    if "source" not in hub["pretrain_text"]:
        raise ConfigError("config key hub.pretrain_text.source is required in hub mode")


def pair_spec(cfg: dict, name: str) -> dict:
    """A released pair's settings with their defaults: direction forward, the study's
    fine-tuning seeds (rebound.seeds)."""
    spec = cfg["pairs"][name]
    return {**spec, "seeds": spec["seeds"] or cfg["rebound"]["seeds"]}


def check_pairs(cfg: dict) -> None:
    """Released pairs run in hub mode (they read the hub tasks' tables and judges), on tasks the
    study prepares."""
    pairs = cfg["pairs"]
    if pairs and cfg["mode"] != "hub":
        raise ConfigError(f"config key pairs: released pairs ({', '.join(pairs)}) run in hub mode "
                          "only (mode: hub)")
    for name in pairs:
        for task in pair_spec(cfg, name)["tasks"]:
            if task not in cfg["rebound"]["tasks"]:
                raise ConfigError(f"config key pairs.{name}.tasks: task {task!r} is not in "
                                  "rebound.tasks (the hub tasks the study prepares)")


def check_adapter(spec: dict | None) -> None:
    """The rebound adapter spec (e.g. LoRA keys left under kind full by a layered config file)."""
    try:
        check_spec(spec)
    except ValueError as err:
        raise ConfigError(f"config key {err}") from None


def check_study_config(cfg: dict) -> None:
    """Every cross-key rule; the schema has already checked types and ranges."""
    check_results_folder(cfg["study"])
    check_pairs(cfg)
    check_adapter(cfg["rebound"]["adapter"])
    if cfg["mode"] == "hub":
        check_hub(cfg)
        check_grids(cfg["rebound"], cfg["evaluate"])
        return
    if sum(cfg["world"]["genre_mix"].values()) <= 0:
        raise ConfigError("config key world.genre_mix must have a positive share")
    check_models(cfg)
    check_worlds(cfg)
    check_rebound(cfg)
    check_experiments(cfg)
