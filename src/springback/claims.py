"""The claims table: per claim of the paper, what was measured, a 95 % CI, and a verdict.

Measurements use, by default (``claims.metric``), the exact target probability ``p_target`` (mean
over prompts of P(target behaviour | prompt)): the behaviour the judge scores, without sampling
noise. Hub mode, whose tasks have no exact target probability, uses the judged ``score``.

Uncertainty: a two-level bootstrap: each replicate resamples seeds, then prompts within each seed,
jointly for every curve of a condition (so differences between curves keep their pairing), and
recomputes the statistic on the replicate's mean curves. The CI is the percentile interval.

Verdict rule (``springback.stats.verdict``): *supported* if the CI lies entirely on the paper's side
of the null, *refuted* if entirely on the other side, else *inconclusive*. ``attributable`` is True
only if the effect's CI lies entirely beyond the same statistic's CI on the random-init control
(``springback.stats.attributable``): an effect the untrained model shows equally is fine-tuning
geometry, not elasticity from pretraining.

Two-phase fits are made on the linear n_neg axis, as the paper reads its curves ("a fast drop for
the first negatives, then a slow one"); on a log axis a plain exponential decay would already look
two-phased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from springback.stats import attributable, crossing_point, seed_bootstrap, verdict

STATEMENTS = {
    "C2": "Two-phase rebound: the score falls fast for the first perturbation examples, then slowly.",
    "C3": "More alignment data springs back faster: a faster early drop and fewer examples to "
          "return to the base level.",
    "C8": "Bidirectional: aligning on the contrary data first, then perturbing with the target "
          "data, shows the same two-phase rebound.",
}


@dataclass
class Cube:
    """p_target of every checkpoint of one (task, base, direction): [n_pos, seed, n_neg, prompt]."""

    values: np.ndarray
    n_pos: np.ndarray
    n_neg: np.ndarray
    sign: float  # +1 if the perturbation raises the target behaviour (reversed), -1 if it lowers it


def make_cube(prompts: pd.DataFrame, metric: str = "p_target") -> Cube:
    """Reshape the per-prompt rows of one condition into a complete 4-d array."""
    frame = prompts.sort_values(["n_pos", "seed", "n_neg", "prompt"])
    shape = [frame[c].nunique() for c in ("n_pos", "seed", "n_neg", "prompt")]
    if int(np.prod(shape)) != len(frame):
        raise ValueError(f"incomplete grid of checkpoints for {metric}: {shape} vs {len(frame)} rows")
    direction = frame["direction"].iloc[0]
    return Cube(frame[metric].to_numpy(float).reshape(shape), np.sort(frame["n_pos"].unique()),
                np.sort(frame["n_neg"].unique()), 1.0 if direction == "reversed" else -1.0)


def replicate_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Mean curves [replicate, n_pos, n_neg]; replicate 0 is the point estimate."""
    rng = np.random.default_rng(seed)
    _, n_seeds, _, n_prompts = values.shape
    out = [values.mean(axis=(1, 3))]
    for _ in range(n_boot):
        seeds = rng.integers(n_seeds, size=n_seeds)
        picks = rng.integers(n_prompts, size=(n_seeds, n_prompts))
        sample = values[:, seeds][:, np.arange(n_seeds)[:, None], :, picks]  # [seed, prompt, pos, neg]
        out.append(sample.mean(axis=(0, 1)))
    return np.stack(out)


def hinge_slopes(x: np.ndarray, curves: np.ndarray, n_grid: int = 100) -> np.ndarray:
    """Least-squares continuous hinge per curve (rows of ``curves``): [slope1, slope2, breakpoint]."""
    grid = np.linspace(x.min(), x.max(), n_grid + 2)[1:-1]
    best_sse = np.full(len(curves), np.inf)
    best = np.zeros((len(curves), 3))
    for c in grid:
        design = np.column_stack([np.ones_like(x), x, np.maximum(x - c, 0.0)])
        coef, *_ = np.linalg.lstsq(design, curves.T, rcond=None)
        sse = ((design @ coef - curves.T) ** 2).sum(axis=0)
        better = sse < best_sse
        best_sse[better] = sse[better]
        best[better] = np.column_stack([coef[1], coef[1] + coef[2], np.full(len(curves), c)])[better]
    return best


# --- statistics of replicate mean curves Y[replicate, n_pos, n_neg] (n_pos row 0 = departure
# control, column 0 = the aligned model before perturbation); each returns one value per replicate.

def phase_contrast(cube: Cube, y: np.ndarray) -> np.ndarray:
    """(early slope - late slope) of the deepest alignment, in the perturbation's direction,
    per 100 examples: > 0 when the first phase is steeper."""
    slopes = hinge_slopes(cube.n_neg.astype(float), y[:, -1])
    return cube.sign * (slopes[:, 0] - slopes[:, 1]) * 100


def early_rate(cube: Cube, y: np.ndarray, row: int, window: int) -> np.ndarray:
    """Movement toward the perturbation per 100 examples over the first ``window`` examples."""
    k = max(int(np.searchsorted(cube.n_neg, window, side="right")) - 1, 1)
    return cube.sign * (y[:, row, k] - y[:, row, 0]) / cube.n_neg[k] * 100


def return_count(cube: Cube, y: np.ndarray, row: int) -> np.ndarray:
    """Perturbation examples until the curve reaches the base level (interpolated; NaN if never)."""
    direction = "up" if cube.sign > 0 else "down"
    x = cube.n_neg.astype(float)
    return np.array([crossing_point(x, rep[row], rep[0, 0], direction=direction) for rep in y])


def early_drop_gain(cube: Cube, y: np.ndarray, window: int) -> np.ndarray:
    """Early rate of the largest n_pos minus that of the smallest (> 0: more data, faster)."""
    return early_rate(cube, y, -1, window) - early_rate(cube, y, 1, window)


def return_saving(cube: Cube, y: np.ndarray) -> np.ndarray:
    """Examples to return for the smallest n_pos minus for the largest (> 0: more data, fewer)."""
    return return_count(cube, y, 1) - return_count(cube, y, -1)


def bootstrap_stat(cube: Cube, fn: Callable[[Cube, np.ndarray], np.ndarray], *, n_boot: int,
                   seed: int) -> tuple[float, float, float]:
    """(point value, CI low, CI high) of fn over two-level bootstrap replicates; the CI is NaN
    when fewer than half of the replicates give a finite value (e.g. the curve never returns)."""
    vals = fn(cube, replicate_means(cube.values, n_boot, seed))
    boot = vals[1:][np.isfinite(vals[1:])]
    if boot.size < 0.5 * n_boot:
        return float(vals[0]), np.nan, np.nan
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(vals[0]), float(low), float(high)


# --- tables -----------------------------------------------------------------------------------

def cubes(prompts: pd.DataFrame, metric: str = "p_target") -> dict[tuple, Cube]:
    """A cube per (task, size, pretrain_tokens, direction)."""
    keys = ["task", "size", "pretrain_tokens", "direction"]
    return {key: make_cube(frame, metric) for key, frame in prompts.groupby(keys)}


def claim_specs(window: int) -> list[tuple[str, str, str, Callable]]:
    """(claim, direction, statistic name, statistic) of every claim row; the paper expects > 0."""
    return [
        ("C2", "forward", "phase_contrast_per_100", phase_contrast),
        ("C3", "forward", "early_drop_gain_per_100",
         lambda c, y: early_drop_gain(c, y, window)),
        ("C3", "forward", "return_saving_examples", return_saving),
        ("C8", "reversed", "phase_contrast_per_100", phase_contrast),
    ]


def claim_row(claim: str, stat: str, key: tuple, effect: tuple, control: tuple | None,
              n: int) -> dict:
    task, size, tokens, direction = key
    value, low, high = effect
    c_value, c_low, c_high = control if control else (np.nan, np.nan, np.nan)
    return {"claim": claim, "statement": STATEMENTS[claim], "task": task, "size": size,
            "pretrain_tokens": tokens, "direction": direction, "statistic": stat,
            "value": value, "ci_low": low, "ci_high": high, "n": n,
            "verdict": verdict(low, high, null=0.0, expected="greater"),
            "control_value": c_value, "control_ci_low": c_low, "control_ci_high": c_high,
            "attributable": attributable(low, high, c_low, c_high, expected="greater")}


def claims_table(prompts: pd.DataFrame, *, window: int, n_boot: int, seed: int = 0,
                 metric: str = "p_target") -> pd.DataFrame:
    """C2, C3, C8 rows for every pretrained base, each beside its random-init control (hub mode
    has no random-init base: control columns are empty and nothing is attributable)."""
    all_cubes = cubes(prompts, metric)
    rows = []
    for claim, direction, stat, fn in claim_specs(window):
        for key, cube in all_cubes.items():
            if key[3] != direction or key[2] == 0:
                continue
            control = all_cubes.get((key[0], key[1], 0, direction))
            effect = bootstrap_stat(cube, fn, n_boot=n_boot, seed=seed)
            ctrl = bootstrap_stat(control, fn, n_boot=n_boot, seed=seed) if control else None
            n = cube.values.shape[1] * cube.values.shape[3]
            rows.append(claim_row(claim, stat, key, effect, ctrl, n))
    return pd.DataFrame(rows)


def elasticity_table(prompts: pd.DataFrame, *, n_boot: int, seed: int = 0,
                     metric: str = "p_target") -> pd.DataFrame:
    """Per aligned model: alignment lift, elasticity (share of the lift lost at the first
    perturbation grid point) and examples to return to the base level, each with a 95 % CI."""
    stats = {
        "lift": lambda c, y, r: -c.sign * (y[:, r, 0] - y[:, 0, 0]),
        "elasticity": lambda c, y, r: (y[:, r, 0] - y[:, r, 1]) / (y[:, r, 0] - y[:, 0, 0]),
        "return_examples": lambda c, y, r: return_count(c, y, r),
    }
    rows = []
    for key, cube in cubes(prompts, metric).items():
        for r, n_pos in enumerate(cube.n_pos):
            if n_pos == 0:
                continue
            row = dict(zip(["task", "size", "pretrain_tokens", "direction"], key), n_pos=n_pos)
            for name, fn in stats.items():
                value, low, high = bootstrap_stat(cube, lambda c, y: fn(c, y, r), n_boot=n_boot,
                                                  seed=seed)
                row.update({name: value, f"{name}_low": low, f"{name}_high": high})
            rows.append(row)
    return pd.DataFrame(rows)


def seed_curves(checkpoints: pd.DataFrame, metric: str) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """Per (task, size, pretrain_tokens, direction, n_pos): n_neg grid and [seed, n_neg] values."""
    rebound = checkpoints[checkpoints["algo"] != "none"]
    keys = ["task", "size", "pretrain_tokens", "direction", "n_pos"]
    out = {}
    for key, frame in rebound.groupby(keys):
        wide = frame.pivot_table(index="seed", columns="n_neg", values=metric)
        if wide.size:  # a metric that is undefined here (e.g. the cue gap in hub mode) is all NaN
            out[key] = (wide.columns.to_numpy(float), wide.to_numpy(float))
    return out


def kl_table(checkpoints: pd.DataFrame, *, epsilon: float, n_boot: int) -> pd.DataFrame:
    """The paper's Table 3: KL to base right after alignment, and the perturbation examples that
    bring the mean KL below ``epsilon`` (linear interpolation between grid points; NaN if the
    grid never gets there), each with a 95 % CI over seeds."""
    rows = []
    for key, (x, kl) in seed_curves(checkpoints, "kl_to_base").items():
        if key[4] == 0:
            continue
        after = seed_bootstrap(kl[:, 0], np.mean, n_boot=n_boot)
        below = seed_bootstrap(kl, lambda a: crossing_point(x, a.mean(0), epsilon), n_boot=n_boot)
        rows.append({**dict(zip(["task", "size", "pretrain_tokens", "direction", "n_pos"], key)),
                     "kl_aligned": after[0], "kl_aligned_low": after[1],
                     "kl_aligned_high": after[2], "epsilon": epsilon, "n_to_epsilon": below[0],
                     "n_to_epsilon_low": below[1], "n_to_epsilon_high": below[2]})
    return pd.DataFrame(rows)


MIN_CUE_GAP = 1.0  # nats: below this the base does not follow the context, recovery is undefined


def recovery_table(checkpoints: pd.DataFrame, *, n_boot: int) -> pd.DataFrame:
    """Context following coming back: the peak, over the perturbation, of the cue gap as a share
    of the base model's, and the n_neg where the mean curve peaks (CI over seeds)."""
    curves = seed_curves(checkpoints, "cue_gap")
    rows = []
    for key, (x, gap) in curves.items():
        base = curves.get((*key[:4], 0))
        if key[4] == 0 or base is None:
            continue
        base_gap = base[1][:, 0].mean()
        if abs(base_gap) < MIN_CUE_GAP:  # the base never learned the mapping: nothing to recover
            peak = (np.nan, np.nan, np.nan)
        else:
            peak = seed_bootstrap(gap, lambda a: np.max(a.mean(0)[1:]) / base_gap, n_boot=n_boot)
        rows.append({**dict(zip(["task", "size", "pretrain_tokens", "direction", "n_pos"], key)),
                     "base_cue_gap": base_gap, "aligned_cue_gap": gap[:, 0].mean(),
                     "peak_recovery": peak[0], "peak_recovery_low": peak[1],
                     "peak_recovery_high": peak[2],
                     "peak_at_n_neg": x[1:][int(np.argmax(gap.mean(0)[1:]))]})
    return pd.DataFrame(rows)


def write_claims(*, checkpoints: str, metrics: list[str], prompts: list[str], window: int,
                 epsilon: float, n_boot: int, out: dict[str, str],
                 metric: str = "p_target") -> None:
    """Write claims.csv and the elasticity, KL-rebound and recovery tables."""
    from springback.tables import prompt_table

    per_prompt = prompt_table(prompts, metrics)
    table = pd.read_csv(checkpoints)
    claims_table(per_prompt, window=window, n_boot=n_boot, metric=metric).to_csv(
        out["claims"], index=False)
    elasticity_table(per_prompt, n_boot=n_boot, metric=metric).to_csv(out["elasticity"],
                                                                       index=False)
    kl_table(table, epsilon=epsilon, n_boot=n_boot).to_csv(out["kl"], index=False)
    recovery_table(table, n_boot=n_boot).to_csv(out["recovery"], index=False)
