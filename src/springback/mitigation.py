"""Claims M1 and M2 of the mitigation experiment: does an alignment arm (springback.arms) make
the rebound smaller, paired against plain SFT in the same bootstrap replicate?

Each arm is a condition of the statistics core with ``algo`` = the arm's label (``replay-0.1``,
``anchor-0.1``, ...) on the same base, task, seeds and prompts as plain SFT (``algo`` sft), so
the shared bootstrap draws pair them run for run.

- **M1** (per arm, task and statistic): "this arm reduces elasticity", for the scale-free
  elasticity statistics of the deepest alignment: context recovery (E2) and stiffness excess
  (E1), SFT's minus the arm's (> 0: less elastic; each read on its own lift's scale), and the
  level-matched return slowdown (``return_slowdown``): ln(examples the arm needs to come back
  across the levels both cross / examples SFT needs), > 0 when the arm returns more slowly *from
  the same log-odds*. A plain return speed (lift / examples) is not used: under saturation
  geometry a lower start alone returns more slowly on average (tests/test_mitigation.py), so an
  arm that only aligns less would read as a cure.
- **M2** (per arm, task and n_neg in ``SURVIVAL_AT``): what a practitioner reads, the aligned
  behaviour left after the attack: the deepest arm's log-odds above the base level after n_neg
  contrary examples, arm minus SFT (> 0: more survives). An arm that aligns less starts lower
  and keeps less: it reads refuted, not a cure.

``detail`` gives the arm's lift and its cost beside SFT's: held-out D_a bits/byte after
alignment (how well it aligned) and D_p bits/byte after alignment (what it forgot).
"""

from __future__ import annotations

import numpy as np

from springback.arms import KINDS
from springback.elasticity import crossing_times, replicate_curves, summarise, value_at
from springback.verdicts import claim_row

SURVIVAL_AT = (64, 256)
M1_STATS = ("recovery", "stiffness_excess")  # SFT minus arm; and return_slowdown
STATEMENTS = {
    "M1": "The alignment arm reduces elasticity, deepest alignment, forward: plain SFT's context "
          "recovery or stiffness excess minus the arm's, or the arm's level-matched return "
          "slowdown over SFT (> 0: the arm rebounds less, on its own lift's scale).",
    "M2": "The alignment arm leaves more aligned behaviour after the attack: its log-odds above "
          "the base level after n_neg contrary examples minus plain SFT's (> 0: more survives).",
}


def is_arm(algo: str) -> bool:
    """Whether an ``algo`` label names a mitigation arm (not plain SFT, not a C6 algorithm)."""
    return algo.split("-")[0] in KINDS and algo != "sft"


def return_slowdown(arm, sft, draws) -> np.ndarray:
    """[B] ln(examples the arm's deepest alignment needs to come back from base + c to the base
    level / examples SFT's needs), c the lower of the two lifts: both cross the same log-odds, so
    a speed set by the level alone (saturation, a kink at the base) gives 0 whatever the lifts.
    A curve still above the base at the grid end counts the grid end (censored: the arm's
    advantage is then a lower bound)."""
    x = arm.n_neg.astype(float)
    ys = []
    for cube in (arm, sft):
        level = replicate_curves(cube, draws)[0]
        ys.append(cube.sign * (level[:, -1] - level[:, :1, 0]))  # toward the perturbation
    common = np.minimum(-ys[0][:, 0], -ys[1][:, 0])
    times = []
    for y in ys:
        t = crossing_times(x, y, np.stack([-common, np.zeros_like(common)], -1))
        t = np.where(np.isnan(t), x[-1], t)
        times.append(t[:, 1] - t[:, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (times[0] > 0) & (times[1] > 0) & (common > 0)
        return np.where(ok, np.log(np.where(ok, times[0] / np.where(ok, times[1], 1), 1)), np.nan)


def surviving(cube, draws, n_neg: int) -> np.ndarray:
    """[B] the deepest arm's mean log-odds above the base level, in the aligned direction,
    after ``n_neg`` perturbation examples (interpolated)."""
    level = replicate_curves(cube, draws)[0]
    at = value_at(cube.n_neg.astype(float), level[:, -1], np.asarray(float(n_neg)))
    return -cube.sign * (at - level[:, 0, 0])


def cost_detail(checkpoints, key: tuple, sft: tuple, lift: float, sft_lift: float) -> str:
    """The arm's lift and its held-out D_a / D_p bits/byte after alignment, beside SFT's."""
    def after_alignment(k):
        rows = checkpoints[(checkpoints["task"] == k[0]) & (checkpoints["world"] == k[1])
                           & (checkpoints["size"] == k[2]) & (checkpoints["pretrain_tokens"] == k[3])
                           & (checkpoints["algo"] == k[4]) & (checkpoints["direction"] == k[5])
                           & (checkpoints["n_neg"] == 0)]
        deep = rows[rows["n_pos"] == rows["n_pos"].max()]
        return deep["bpb_align"].mean(), deep["bpb_pretrain"].mean()
    text = f"lift {lift:.2f} (sft {sft_lift:.2f})"
    if checkpoints is None or "bpb_align" not in checkpoints:
        return text
    (a, p), (sa, sp) = after_alignment(key), after_alignment(sft)
    return text + f"; after alignment D_a {a:.4f} (sft {sa:.4f}), D_p {p:.4f} (sft {sp:.4f}) bits/byte"


def mitigation_rows(study, checkpoints=None) -> list[dict]:
    """M1 and M2 rows of every arm condition paired with the SFT condition of the same task,
    world, size, budget and direction (``study``: springback.claims.Study)."""
    rows = []
    for key, cube in study.cubes.items():
        sft = (*key[:4], "sft", *key[5:])
        if not is_arm(key[4]) or key[-1] != "main" or sft not in study.cubes:
            continue
        arm, ref = study.stats(key)[0], study.stats(sft)[0]
        label = {"task": key[0], "world": key[1], "size": key[2], "pretrain_tokens": key[3],
                 "algo": key[4], "direction": key[5], "n_runs": cube.runs}
        detail = cost_detail(checkpoints, key, sft, summarise(arm["lift"][:, -1])[0],
                             summarise(ref["lift"][:, -1])[0])
        for name in M1_STATS:
            rows.append(claim_row("M1", STATEMENTS["M1"], name, 0.0, label,
                                  ref[name][:, -1] - arm[name][:, -1], detail=detail))
        rows.append(claim_row("M1", STATEMENTS["M1"], "return_slowdown", 0.0, label,
                              return_slowdown(cube, study.cubes[sft], study.draws),
                              detail=detail))
        for n in SURVIVAL_AT:
            if n <= cube.n_neg.max():
                rows.append(claim_row(
                    "M2", STATEMENTS["M2"], f"survival_{n}", 0.0, label,
                    surviving(cube, study.draws, n) - surviving(study.cubes[sft], study.draws, n),
                    detail=detail))
    return rows
