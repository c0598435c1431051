"""Control calibration screen: the learning rate at which a control moves as far as the main base.

Run: .venv/bin/python benchmarks/control_screen.py [--study results/toy] [--out results/control_screen.csv]

On a finished study's bases (read-only; pretraining seeds ``--pseeds``, default 0), the departure
arm of the rebound protocol (the base perturbed directly on D_t, forward direction, both tasks,
one fine-tuning seed) of
- the random-init base (tokens 0) of every size of ``--sizes`` at each lr of ``--random-lrs``,
- the pre-emergence base (the config's pre_emergence control) at each lr of ``--pre-lrs``,
- the main pretrained base of each of those sizes (``size.tokens``) at rebound.lr, the reference.
Each runs through ``springback.pipeline.rebound.rebound`` (the study's own code: same examples,
same order, same regime besides lr) with n_pos = one batch (the function needs an alignment
grid; only the departure rows, n_pos = 0, are read). Per base, lr, task and pretraining seed it
reports the mean log-odds displacement L(n) - L(0) after ``--points`` examples, the main base's
(same size and pretraining seed) at the same n, their ratio (control / main: 1 = as plastic), and
competence: the change (%) of held-out D_t bits/byte over the departure (must be < 0 while
training on D_t), with D_p's beside it. Then per control, size and lr, the ratio at ``--match``
examples of the displacements averaged over tasks and pretraining seeds (and per task), and the
lr whose ratio lies within +-25 % of 1, competent in every run, closest to 1 (in log terms).
Prints both tables and writes the first as CSV (the second next to it, ``*_choice.csv``).
Bases missing from the study (e.g. a size pretrained with fewer seeds) are skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import pandas as pd
import torch

from layout import checkpoint, world_files
from springback.config import load
from springback.pipeline.rebound import rebound

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.25  # a control matches when its displacement is within +-25 % of the main base's


def departure(study: Path, cfg: dict, *, size: str, tokens: int, lr: float, pseed: int,
              seed: int, points: list[int]) -> pd.DataFrame:
    """Departure rows (n_pos 0, forward) of one base at one lr: task, n_neg, logodds, bits/byte."""
    batch = cfg["rebound"]["batch_size"]
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "metrics.csv"
        rebound(base_dir=checkpoint(study, size, tokens, pseed),
                files=world_files(study), tasks=cfg["rebound"]["tasks"],
                directions=["forward"], seeds=[seed], n_pos=[batch], n_neg=[0, *points],
                train={"lr": lr, "batch_size": batch, "loss": cfg["rebound"]["loss"]},
                eval_cfg={**cfg["evaluate"], "sample": False, "text_at": [0, max(points)]},
                keep="none", out_metrics=metrics, out_prompts=Path(tmp) / "prompts.parquet",
                out_documents=Path(tmp) / "documents.parquet", out_models=Path(tmp) / "models",
                ensemble=True)
        frame = pd.read_csv(metrics)
    return frame[frame["n_pos"] == 0][["task", "n_neg", "logodds", "bpb_perturb", "bpb_pretrain"]]


def summarise(rows: pd.DataFrame, points: list[int]) -> pd.DataFrame:
    """One row per task: L(0), the displacement at every point, D_t and D_p bits/byte change (%)
    from the first to the last point."""
    out = []
    for task, frame in rows.groupby("task"):
        at = frame.set_index("n_neg")
        row = {"task": task, "L0": at.loc[0, "logodds"]}
        row |= {f"d{n}": at.loc[n, "logodds"] - at.loc[0, "logodds"] for n in points}
        for col, name in (("bpb_perturb", "dDt_pct"), ("bpb_pretrain", "dDp_pct")):
            row[name] = 100 * (at.loc[max(points), col] / at.loc[0, col] - 1)
        out.append(row)
    return pd.DataFrame(out)


def screen(args) -> pd.DataFrame:
    cfg, study = load(defaults=ROOT / "config" / "config.yaml"), Path(args.study)
    pre = next(b for b in cfg["rebound"]["bases"] if b["role"] == "pre_emergence")
    main_tokens = args.main_tokens or cfg["size"]["tokens"]
    runs = [("main", s, main_tokens, cfg["rebound"]["lr"]) for s in args.sizes]
    runs += [("random_init", s, 0, lr) for s in args.sizes for lr in args.random_lrs]
    runs += [("pre_emergence", pre["size"], args.pre_tokens or pre["tokens"], lr)
             for lr in args.pre_lrs]
    frames = []
    for (role, size, tokens, lr), pseed in ((r, p) for r in runs for p in args.pseeds):
        if not checkpoint(study, size, tokens, pseed).is_dir():
            print(f"skipped (no base): {role} {size} @ {tokens} tokens, pseed {pseed}")
            continue
        rows = departure(study, cfg, size=size, tokens=tokens, lr=lr, pseed=pseed,
                         seed=args.seed, points=args.points)
        frames.append(summarise(rows, args.points).assign(role=role, size=size, tokens=tokens,
                                                          lr=lr, pretrain_seed=pseed))
        print(f"done: {role} {size} @ {tokens} tokens, lr {lr:g}, pseed {pseed}", flush=True)
    table = pd.concat(frames, ignore_index=True)
    main = table[table["role"] == "main"].set_index(["size", "pretrain_seed", "task"])
    for n in args.points:
        table[f"main_d{n}"] = [main.loc[k, f"d{n}"] for k in zip(
            table["size"], table["pretrain_seed"], table["task"])]
        table[f"ratio{n}"] = table[f"d{n}"] / table[f"main_d{n}"]
    table["competent"] = table["dDt_pct"] < 0
    first = ["role", "size", "tokens", "lr", "pretrain_seed", "task", "L0"]
    return table[first + [c for c in table.columns if c not in first]]


def choose(table: pd.DataFrame, match: int) -> pd.DataFrame:
    """Per control role, size and lr: the ratio at ``match`` examples of the displacement
    averaged over tasks and pretraining seeds to the main bases' (and per task), whether every
    run is competent and the ratio within +-25 % of 1, and the chosen lr (matched, competent,
    closest to 1 in log terms)."""
    d, ref, rows = f"d{match}", f"main_d{match}", []
    for (role, size, lr), frame in table[table["role"] != "main"].groupby(["role", "size", "lr"]):
        row = {"role": role, "size": size, "lr": lr, "ratio": frame[d].mean() / frame[ref].mean()}
        row |= {f"ratio_{t}": g[d].mean() / g[ref].mean() for t, g in frame.groupby("task")}
        rows.append(row | {"competent": bool(frame["competent"].all())})
    out = pd.DataFrame(rows)
    out["matched"] = (out["ratio"] - 1).abs() <= TOLERANCE
    out["chosen"] = False
    for _, frame in out[out["matched"] & out["competent"]].groupby(["role", "size"]):
        out.loc[frame["ratio"].map(lambda r: abs(math.log(r))).idxmin(), "chosen"] = True
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="results/toy", help="finished study folder (read-only)")
    parser.add_argument("--out", default="results/control_screen.csv", help="CSV written")
    parser.add_argument("--sizes", nargs="+", default=["xs", "s", "m"])
    parser.add_argument("--random-lrs", nargs="+", type=float, default=[1e-3, 2e-3, 3e-3, 5e-3])
    parser.add_argument("--pre-lrs", nargs="+", type=float, default=[1e-4, 3e-4, 1e-3])
    parser.add_argument("--points", nargs="+", type=int, default=[32, 64, 128],
                        help="examples (multiples of rebound.batch_size) the moves are read at")
    parser.add_argument("--match", type=int, default=64, help="the point the lr is chosen at")
    parser.add_argument("--main-tokens", type=int, help="main bases' tokens (default size.tokens)")
    parser.add_argument("--pre-tokens", type=int,
                        help="pre-emergence base's tokens (default: its rebound.bases entry)")
    parser.add_argument("--pseeds", nargs="+", type=int, default=[0], help="pretraining seeds")
    parser.add_argument("--seed", type=int, default=1, help="fine-tuning seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = screen(args)
    choice = choose(table, args.match)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    choice.to_csv(out.with_name(f"{out.stem}_choice.csv"), index=False)
    lr = {"lr": lambda x: f"{x:g}"}
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.round(3).assign(lr=table["lr"]).to_string(index=False, formatters=lr))
        print(f"\nratio at {args.match} examples, displacements averaged over tasks and "
              "pretraining seeds (chosen: within +-25 %, competent, closest to 1):")
        print(choice.round(3).assign(lr=choice["lr"]).to_string(index=False, formatters=lr))
    print(f"\nwritten: {out} and {out.with_name(f'{out.stem}_choice.csv')}")


if __name__ == "__main__":
    main()
