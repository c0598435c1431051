"""Cost and competence of the five alignment algorithms (springback.algorithms) on the s model.

Run: .venv/bin/python benchmarks/algorithms.py [--steps 12] [--repeats 3]  (speed table)
     .venv/bin/python benchmarks/algorithms.py --screen [--n 256]            (competence screen)

Speed: seconds per optimiser step and examples/s of each algorithm at batch 8 (one example = a
pair / an episode group, see the module docstring), best of ``--repeats`` runs of ``--steps``
steps each, trainer construction excluded (it is reported apart as setup). The plain SFT loop is
the yardstick. Competence screen: phase 1 of a forward run (align on D_a from the pretrained base)
per algorithm, task and learning rate; exact behaviour log-odds on the task's evaluation prompts
at every save point, and held-out D_p bits/byte, coverage (mass on the behaviour words) and the
judged score of sampled continuations at the end. Both read the study's toy base and world
(results/toy, read-only) and write nothing.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import pandas as pd
import torch

from layout import checkpoint, world_files
from springback import algorithms, data, models
from springback.config import load

BASE = checkpoint("results/toy", "s", 3_000_000)
FILES = world_files("results/toy")
BATCH = 8


def phase_frames(task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return tuple(data.read_table(FILES[f"{task}_{name}"], data.EXAMPLE_COLUMNS)
                 for name in ("align", "perturb"))


def speed(base, tok, algorithm: str, frames, *, steps: int, repeats: int) -> dict:
    """Best-of-``repeats`` seconds per step of ``steps`` steps (the time between the first and
    the last save call, so trainer setup and reference log-probs are counted apart)."""
    best, setup = float("inf"), float("inf")
    for r in range(repeats):
        stamps = {}
        start = time.perf_counter()
        algorithms.train_phase(copy.deepcopy(base), tok, algorithm, *frames, task="safety",
                               toward_target=True, save_at=[BATCH, BATCH * steps],
                               save=lambda m, n: stamps.__setitem__(n, time.perf_counter()),
                               batch_size=BATCH, seed=r)
        best = min(best, (stamps[BATCH * steps] - stamps[BATCH]) / (steps - 1))
        setup = min(setup, stamps[BATCH] - start - best)
    return {"algorithm": algorithm, "s_per_step": best, "examples_per_s": BATCH / best,
            "setup_s": setup}


def screen_run(base, tok, algorithm: str, task: str, lr: float, n: int, ev,
               options: dict | None = None) -> dict:
    """One phase-1 run: log-odds at every save point, text metrics and judged score at the end."""
    from springback.evaluate import behaviour_probs, evaluate_checkpoint

    lo = {}
    final = {}

    def save(m, k):
        lo[k] = float(behaviour_probs(m, ev)[2].mean())
        if k == n:
            final.update(evaluate_checkpoint(m, tok, ev, seed=0)[0])

    points = [0, 16, 32, 64, 128, 256, 512]
    algorithms.train_phase(copy.deepcopy(base), tok, algorithm, *phase_frames(task), task=task,
                           toward_target=True, save_at=[p for p in points if p <= n], save=save,
                           batch_size=BATCH, seed=1, lr=lr, options=options)
    return {"algorithm": algorithm, "task": task, "lr": f"{lr:.0e}", "options": options or "",
            **{f"lo_{k}": v for k, v in lo.items()},
            **{k: final[k] for k in ("bpb_pretrain", "bpb_align", "coverage", "score")}}


# the grid: every algorithm at three learning rates, and a larger beta for the preference losses
GRID = [(a, lr, None) for a in algorithms.ALGORITHMS for lr in (3e-5, 1e-4, 3e-4)] + [
    ("dpo", 1e-4, {"beta": 0.5}), ("kto", 1e-4, {"beta": 0.5}), ("simpo", 1e-4, {"beta": 10.0})]


def screen(base, tok, n: int, grid=GRID) -> pd.DataFrame:
    from springback.evaluate import eval_set, evaluate_checkpoint

    rows, eval_cfg = [], load()["evaluate"]  # the default study's evaluation settings
    for task in ("sentiment", "safety"):
        ev = eval_set(tok, task=task, tables=data.task_files(FILES, task),
                      pretrain_heldout=FILES["pretrain_heldout"], eval_cfg=eval_cfg)
        ref = evaluate_checkpoint(base, tok, ev, seed=0)[0]
        rows.append({"algorithm": "base", "task": task, "lo_0": ref["logodds"],
                     **{k: ref[k] for k in ("bpb_pretrain", "bpb_align", "coverage", "score")}})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
        for algorithm, lr, options in grid:
            rows.append(screen_run(base, tok, algorithm, task, lr, n, ev, options))
            print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--screen", action="store_true")
    parser.add_argument("--n", type=int, default=256, help="screen: examples of phase 1")
    parser.add_argument("--base", default=BASE, help="base model directory (with tokenizer)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tok, base = models.load_tokenizer(args.base), models.load_model(args.base)
    if args.screen:
        table = screen(base, tok, args.n)
    else:
        frames = phase_frames("safety")
        table = pd.DataFrame([speed(base, tok, a, frames, steps=args.steps,
                                    repeats=args.repeats) for a in algorithms.ALGORITHMS])
        table["vs_sft_loop"] = table["s_per_step"] / table["s_per_step"].iloc[0]
    print(f"\n{args.base}, batch {BATCH}, {args.threads} threads (machine shared: +-30 % noise)")
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
