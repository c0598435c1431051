"""Aggregation: the per-checkpoint and per-prompt tables of a study, the curves with CIs, and the
elasticity, per-run, regime and KL-rebound tables, all from the statistics core
(``springback.elasticity``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from springback.elasticity import (BAND, CONDITION, EARLY, condition_cubes, curve_stats,
                                   kl_stats, make_cube, replicate_curves, replicate_metric,
                                   run_curves, summarise, value_at)

KEYS = ["world", "size", "pretrain_seed", "pretrain_tokens", "params", "params_nonembedding"]
CHECKPOINT_METRICS = ["score", "p_target", "kl_to_base", "bpb_pretrain", "bpb_align", "bpb_perturb"]
BPB = {"bpb_perturb": "D_t", "bpb_align": "D_a", "bpb_pretrain": "D_p"}


def role_of(frame: pd.DataFrame, roles: list[dict]) -> pd.Series:
    """The role of each row's base: "main", or the control named by the config's bases."""
    out = pd.Series("main", index=frame.index)
    for r in roles:
        hit = ((frame["world"] == r["world"]) & (frame["size"] == r["size"])
               & (frame["pretrain_tokens"] == r["tokens"]))
        out[hit] = r["role"]
    return out


def _with_algo(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of a rebound job are SFT; an algorithms job's rows name their algorithm."""
    return frame if "algo" in frame else frame.assign(algo="sft")


def checkpoint_table(metrics: list[str], ladder: str, roles: list[dict]) -> pd.DataFrame:
    """One row per evaluated checkpoint: rebound checkpoints (algo sft) and the ladder (none)."""
    frames = [_with_algo(pd.read_csv(m)) for m in metrics]
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "role", role_of(table, roles))
    base = pd.read_csv(ladder).assign(algo="none", role="ladder", direction="none", n_pos=0, n_neg=0)
    table = pd.concat([table, base], ignore_index=True)
    first = ["role", "task", *KEYS, "algo", "direction", "n_pos", "n_neg", "seed"]
    return table[first + [c for c in table.columns if c not in first]]


def prompt_table(prompts: list[str], metrics: list[str], roles: list[dict]) -> pd.DataFrame:
    """Per-prompt rows of every rebound job with every key of its checkpoint."""
    frames = []
    for p, m in zip(prompts, metrics):
        keys = pd.read_csv(m, nrows=1)[KEYS].iloc[0].to_dict()
        frames.append(_with_algo(pd.read_parquet(p)).assign(**keys))
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "role", role_of(table, roles))
    return table


def conditions(prompts: pd.DataFrame, checkpoints: pd.DataFrame, n_boot: int, seed: int = 0,
               metric: str = "logodds"):
    """(key, cube, checkpoint-metric arrays, draws) per condition, shared draws for all; the
    cube holds the per-prompt ``metric`` (log-odds, or the judged score in hub mode)."""
    cubes, draws = condition_cubes(prompts, n_boot, metric=metric, seed=seed)
    rebound = checkpoints[checkpoints["algo"] != "none"]
    by_key = dict(list(rebound.groupby(CONDITION + ["role"])))
    for key, cube in cubes.items():
        rows = by_key[key].sort_values(["pretrain_seed", "seed", "n_pos", "n_neg"])
        dims = (cube.values.shape[0], cube.values.shape[1], len(cube.n_pos), len(cube.n_neg))
        metrics = {m: rows[m].to_numpy(float).reshape(dims) for m in CHECKPOINT_METRICS}
        yield key, cube, metrics, draws


def _interval_columns(name: str, reps: np.ndarray) -> dict:
    value, low, high = summarise(reps)
    return {name: value, f"{name}_low": low, f"{name}_high": high}


def curves(prompts: pd.DataFrame, checkpoints: pd.DataFrame, *, n_boot: int,
           metric: str = "logodds") -> pd.DataFrame:
    """Per condition, arm and n_neg: the mean behaviour ``level`` (the claims' metric: log-odds,
    or the judged score in hub mode) and its cue gap, with paired hierarchical bootstrap CIs, and
    every checkpoint metric averaged over runs (CI over the same run draws)."""
    rows = []
    for key, cube, metrics, draws in conditions(prompts, checkpoints, n_boot, metric=metric):
        level, gap = replicate_curves(cube, draws)
        per_metric = {m: replicate_metric(v, draws) for m, v in metrics.items()}
        for a, n_pos in enumerate(cube.n_pos):
            for x, n_neg in enumerate(cube.n_neg):
                row = dict(zip(CONDITION + ["role"], key), n_pos=n_pos, n_neg=n_neg)
                row |= _interval_columns("level", level[:, a, x])
                row |= _interval_columns("cue_gap", gap[:, a, x])
                for m, reps in per_metric.items():
                    row |= _interval_columns(m, reps[:, a, x])
                rows.append(row)
    return pd.DataFrame(rows)


def elasticity_table(prompts: pd.DataFrame, checkpoints: pd.DataFrame, *, n_boot: int,
                     metric: str = "logodds", band: float = BAND,
                     early: float = EARLY) -> pd.DataFrame:
    """Per condition and aligned arm: every elasticity statistic and the KL rebound, with CIs
    (each base's recovery is a share of its own base cue gap here; claims.csv uses the effect's)."""
    rows = []
    for key, cube, metrics, draws in conditions(prompts, checkpoints, n_boot, metric=metric):
        x = cube.n_neg.astype(float)
        level, gap = replicate_curves(cube, draws)
        stats = curve_stats(x, level, gap, cube.sign, band=band, early=early)
        stats |= kl_stats(x, replicate_metric(metrics["kl_to_base"], draws))
        for a, n_pos in enumerate(cube.n_pos[1:], start=1):
            row = dict(zip(CONDITION + ["role"], key), n_pos=n_pos, sign=cube.sign,
                       band=band, metric=metric)
            for name, reps in stats.items():
                row |= _interval_columns(name, reps[:, a])
            rows.append(row)
    return pd.DataFrame(rows)


def runs_table(prompts: pd.DataFrame, checkpoints: pd.DataFrame, *, metric: str = "logodds",
               band: float = BAND, early: float = EARLY) -> pd.DataFrame:
    """Per run (pretraining seed x fine-tuning seed) and aligned arm: the point statistics."""
    rows = []
    seeds_of = {key: (np.sort(f["pretrain_seed"].unique()), np.sort(f["seed"].unique()))
                for key, f in checkpoints[checkpoints["algo"] != "none"].groupby(
                    CONDITION + ["role"])}
    for key, cube, metrics, _ in conditions(prompts, checkpoints, 0, metric=metric):
        x = cube.n_neg.astype(float)
        level, gap = run_curves(cube)
        stats = curve_stats(x, level, gap, cube.sign, band=band, early=early) | kl_stats(
            x, metrics["kl_to_base"])
        pseeds, seeds = seeds_of[key]
        for (p, f, a), _ in np.ndenumerate(stats["lift"]):
            if a == 0:
                continue
            rows.append({**dict(zip(CONDITION + ["role"], key)), "pretrain_seed": pseeds[p],
                         "seed": seeds[f], "n_pos": cube.n_pos[a],
                         **{name: float(v[p, f, a]) for name, v in stats.items()}})
    return pd.DataFrame(rows)


def phase_change(frame: pd.DataFrame, start: dict, end: dict, metric: str) -> float:
    """Relative change (%) of a metric's run-mean from the ``start`` to the ``end`` checkpoint."""
    def mean(sel):
        return frame.loc[(frame[list(sel)] == pd.Series(sel)).all(axis=1), metric].mean()
    return 100 * (mean(end) - mean(start)) / mean(start)


BASE = ["role", "task", "world", "size", "pretrain_tokens", "pretrain_seed"]
PLASTICITY_TOLERANCE = 0.25  # a control moves as far as its main base within +-25 %


def departure_moves(prompts: pd.DataFrame, *, early: float,
                    metric: str = "logodds") -> pd.Series:
    """Per pretrained base (BASE keys; forward SFT): how far the departure control (the base
    perturbed directly) moves the mean behaviour in its first ``early`` examples (nats), mean
    over fine-tuning seeds."""
    out = {}
    rows = prompts[(prompts["algo"] == "sft") & (prompts["direction"] == "forward")]
    for key, frame in rows.groupby(CONDITION + ["role"]):
        cube = make_cube(frame, metric)
        level = run_curves(cube)[0][:, :, 0]                       # [pseed, seed, n_neg]
        move = cube.sign * (value_at(cube.n_neg.astype(float), level, np.asarray(float(early)))
                            - level[..., 0])
        for p, pseed in enumerate(np.sort(frame["pretrain_seed"].unique())):
            out[(key[-1], key[0], key[1], key[2], key[3], pseed)] = float(np.mean(move[p]))
    return pd.Series(out, dtype=float)


def regime_table(checkpoints: pd.DataFrame, prompts: pd.DataFrame, *, max_dp_rise: float,
                 early: float = EARLY, metric: str = "logodds") -> pd.DataFrame:
    """Per base, pretraining seed and task (forward direction): is the fine-tuning regime
    competent, and does the base move as far as its main base? Competent: training the
    departure control on D_t lowers held-out D_t bits/byte, and (pretrained bases) no phase
    raises held-out D_p bits/byte by ``max_dp_rise`` % or more. Plasticity: the departure
    control's move in its first ``early`` examples against the main world's main base of the
    same task and size (``plasticity_ratio``; ``plasticity_matched`` within +-25 %). The
    learning rate of the base's rebound runs is listed where the table records it."""
    rebound = checkpoints[(checkpoints["algo"] == "sft") & (checkpoints["direction"] == "forward")]
    moves = departure_moves(prompts, early=early, metric=metric)
    rows = []
    for key, frame in rebound.groupby(BASE):
        deep, last = frame["n_pos"].max(), frame["n_neg"].max()
        row = dict(zip(BASE, key))
        if "lr" in frame:
            row["lr"] = float(frame["lr"].iloc[0])
        phases = {"align": ({"n_pos": 0, "n_neg": 0}, {"n_pos": deep, "n_neg": 0}),
                  "perturb": ({"n_pos": deep, "n_neg": 0}, {"n_pos": deep, "n_neg": last}),
                  "departure": ({"n_pos": 0, "n_neg": 0}, {"n_pos": 0, "n_neg": last})}
        for phase, (start, end) in phases.items():
            for column, name in BPB.items():
                row[f"{phase}_{name}_pct"] = phase_change(frame, start, end, column)
        row["departure_move"] = moves.get(key, np.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    reference = table[(table["role"] == "main") & (table["world"] == "main")]
    reference = reference[reference["pretrain_tokens"] == reference.groupby(
        ["task", "size"])["pretrain_tokens"].transform("max")]
    ref_move = reference.groupby(["task", "size"])["departure_move"].mean()
    table["plasticity_ratio"] = [m / ref_move.get((t, s), np.nan) for m, t, s in zip(
        table["departure_move"], table["task"], table["size"])]
    table["plasticity_matched"] = (table["plasticity_ratio"] - 1).abs() <= PLASTICITY_TOLERANCE
    table["dt_improves"] = table["departure_D_t_pct"] < 0
    rise = table[[f"{p}_D_p_pct" for p in ("align", "perturb", "departure")]].max(axis=1)
    table["dp_rise_ok"] = (table["pretrain_tokens"] == 0) | (rise < max_dp_rise)
    table["competent"] = table["dt_improves"] & table["dp_rise_ok"]
    return table


def competence(regime: pd.DataFrame) -> dict[tuple, tuple[bool, str]]:
    """Per base (task, world, size, tokens): competent in every pretraining seed, and if not,
    why (seed: held-out D_t worsens / D_p rises)."""
    out = {}
    if regime.empty:
        return out
    for (task, world, size, tokens), frame in regime.groupby(["task", "world", "size",
                                                             "pretrain_tokens"]):
        why = []
        for _, r in frame[~frame["competent"]].iterrows():
            if not r["dt_improves"]:
                why.append(f"seed {r['pretrain_seed']}: held-out D_t bits/byte "
                           f"{r['departure_D_t_pct']:+.1f} % while training on D_t")
            if not r["dp_rise_ok"]:
                why.append(f"seed {r['pretrain_seed']}: D_p bits/byte rises too much")
        out[task, world, size, int(tokens)] = (not why, "; ".join(why))
    return out


def aggregate(*, metrics: list[str], prompts: list[str], ladder: str, roles: list[dict],
              out_checkpoints: str, out_prompts: str, out_curves: str, n_boot: int,
              metric: str = "logodds") -> None:
    table = checkpoint_table(metrics, ladder, roles)
    table.to_csv(out_checkpoints, index=False)
    per_prompt = prompt_table(prompts, metrics, roles)
    per_prompt.to_parquet(out_prompts, index=False)
    curves(per_prompt, table, n_boot=n_boot, metric=metric).to_csv(out_curves, index=False)
