"""Claim C7: the paper's Theorem 4.2 measured on the rebound runs.

gamma_x = bits per byte of held-out dataset x (each document coded on its own, springback.compress):
x = p (pretraining D_p), a (the phase-1 set the model was aligned on: D_a forward) and t (the
phase-2 set it is perturbed with). Over the perturbation of an aligned model (n_neg from 0 to the
last measured point) the theorem says

    d gamma_a / d l = Theta(-k d gamma_p / d l),   k = |D_p| / |D_a|,

i.e. the alignment set's rate worsens about k times faster than the pretraining set's improves.
Read here, per condition (task, world, size, pretraining tokens, role) and aligned arm (n_pos),
forward direction, every value per replicate of the paired hierarchical bootstrap (the draws of
claims.csv) over the runs' checkpoint metrics:

- ``delta_a``: Delta gamma_a over the perturbation (> 0: the alignment set is forgotten);
- ``p_falls``: -Delta gamma_p (> 0: the pretraining set's rate improves, the theorem's premise);
- ``a_moves_more``: |Delta gamma_a| - |Delta gamma_p| (> 0: D_p barely moves by comparison);
- ``k_exponent``: the slope of log10(Delta gamma_a / -Delta gamma_p) on log10 k over every arm of
  every pretrained main base of a task and size (k varies with n_pos and, across the volume
  bases, with |D_p|); the verdict tests "grows with k" (> 0), Theta(k) predicts about 1. A point whose Delta gamma_p is not negative (D_p did not improve)
  has no ratio; the slope is fitted, per replicate, through the points that have one (at least
  3, at 2 k or more), so it describes only where the premise holds (``detail``: how many);
- ``spring_log_ratio``: log10 of (|D_a| Delta gamma_a) / (|D_p| (-Delta gamma_p)) on the deepest
  arm, the spring picture's invariant (|D_i| times the change of its rate equal across datasets):
  0 where it holds exactly (its verdict reads the sign; a CI around 0 is the invariant holding).

|D_p| = pretraining tokens seen; |D_a| = n_pos x the phase-1 set's mean tokens per example
(column ``phase1_tokens`` of the rebound rows, per task; without it, 1 token per example, which
moves the spring ratio and the intercept, not the k-exponent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from springback.elasticity import replicate_metric, slope
from springback.verdicts import claim_row

DATASETS = {"p": "bpb_pretrain", "a": "bpb_align", "t": "bpb_perturb"}
MIN_POINTS = 3  # points with a ratio the k fit needs (at two k or more)
STATEMENT = ("Theorem 4.2: under perturbation the alignment set's bits/byte rises about k = "
             "|D_p|/|D_a| times faster than the pretraining set's falls (k-exponent 1), and "
             "|D_i| x Delta(rate of D_i) is about equal across datasets.")


def deltas(metrics: dict[str, np.ndarray], draws) -> dict[str, np.ndarray]:
    """Delta gamma [B, arm] of each dataset over the perturbation: last measured n_neg minus 0."""
    out = {}
    for x, column in DATASETS.items():
        reps = replicate_metric(metrics[column], draws)  # [B, arm, n_neg]
        measured = np.flatnonzero(np.isfinite(reps[0]).all(0))
        if len(measured) < 2:  # no bits/byte past n_neg 0 (e.g. tables made elsewhere)
            out[x] = np.full(reps.shape[:2], np.nan)
            continue
        out[x] = reps[:, :, measured[-1]] - reps[:, :, 0]
    return out


def log_ratio(d: dict[str, np.ndarray]) -> np.ndarray:
    """log10(Delta gamma_a / -Delta gamma_p), NaN where either has the wrong sign."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (d["a"] > 0) & (d["p"] < 0)
        return np.where(ok, np.log10(np.abs(d["a"]) / np.abs(d["p"])), np.nan)


def c7_rows(conditions, *, phase1_tokens: dict | None = None,
            margin: float = 0.5) -> tuple[list[dict], list[dict]]:
    """C7 claim rows and the points of the k fit, from ``tables.conditions`` output (key, cube,
    checkpoint metrics, draws) of a study's forward conditions. The spring invariant is an
    equality: its verdict is an equivalence test of the log10 ratio against 0 +- ``margin``."""
    per_key, twins = {}, {}
    for key, cube, metrics, draws in conditions:
        task, world, size, tokens, algo, direction, role = key
        if direction != "forward" or algo != "sft":
            continue
        d = deltas(metrics, draws)
        per_key[key] = (cube.n_pos, d)
        if role == "random_init":
            twins[task, size] = d
    rows, points = [], []
    for key, (n_pos, d) in per_key.items():
        task, world, size, tokens, algo, direction, role = key
        if role != "main" or world != "main":
            continue
        label = {"task": task, "world": world, "size": size, "pretrain_tokens": tokens,
                 "algo": algo, "direction": direction, "n_runs": np.nan}
        twin = twins.get((task, size))
        for name, fn in (("delta_a", lambda v: v["a"][:, -1]),
                         ("p_falls", lambda v: -v["p"][:, -1]),
                         ("a_moves_more", lambda v: np.abs(v["a"][:, -1]) - np.abs(v["p"][:, -1]))):
            rows.append(claim_row("C7", STATEMENT, name, 0.0, label, fn(d),
                                  "random_init" if twin else "none", fn(twin) if twin else None))
    for task, size in sorted({(k[0], k[2]) for k in per_key}):
        keys = [k for k in per_key if (k[0], k[2]) == (task, size) and k[-1] == "main"
                and k[1] == "main" and k[3] > 0]
        if not keys:
            continue
        ks, ratios, springs = [], [], []
        for key in keys:
            n_pos, d = per_key[key]
            per_example = (phase1_tokens or {}).get(key[0], 1.0)
            k = key[3] / (n_pos[1:] * per_example)
            ks.append(np.log10(k))
            ratios.append(log_ratio(d)[:, 1:])
            springs.append(ratios[-1][:, -1] - np.log10(k[-1]))
            for i, n in enumerate(n_pos[1:]):
                points.append({"task": task, "size": key[2], "pretrain_tokens": key[3],
                               "n_pos": n, "k": k[i], "delta_p": d["p"][0, i + 1],
                               "delta_a": d["a"][0, i + 1], "delta_t": d["t"][0, i + 1],
                               "log10_ratio": ratios[-1][0, i]})
        x, values = np.concatenate(ks), np.concatenate(ratios, axis=1)
        label = {"task": task, "world": "main", "size": size,
                 "pretrain_tokens": "|".join(dict.fromkeys(str(k[3]) for k in keys)),
                 "algo": "sft", "direction": "forward", "n_runs": np.nan}
        rows.append(claim_row("C7", STATEMENT, "k_exponent", 0.0, label,
                              slope(x, values, MIN_POINTS),
                              detail=f"{int(np.isfinite(values[0]).sum())} of {len(x)} points "
                                     "have a ratio"))
        spring = np.stack(springs, 1)
        with np.errstate(all="ignore"):  # a replicate without any ratio has no median
            median = np.array([np.median(r[np.isfinite(r)]) if np.isfinite(r).any() else np.nan
                               for r in spring])
        rows.append(claim_row("C7", STATEMENT, "spring_log_ratio", 0.0, label, median,
                              margin=margin, equality=True,
                              detail=f"equality within +-{margin} (log10)"))
    return [r for r in rows if r is not None], points


def points_frame(points: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(points, columns=["task", "size", "pretrain_tokens", "n_pos", "k",
                                         "delta_p", "delta_a", "delta_t", "log10_ratio"])
