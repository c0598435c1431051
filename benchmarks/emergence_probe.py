"""Emergence probe: does a cue word right before the answer make the sentiment mapping emerge
within half the pretraining budget?

Run: .venv/bin/python benchmarks/emergence_probe.py [--out results/emergence_probe]
         [--sizes s xs] [--seeds 0 1] [--tokens 1500000]
         [--checkpoints 187500 375000 750000 1500000] [--threads 1]

Two templates of the review prompt, drawn from the same random draws (so the worlds differ in the
template only):
- default:  ``review of FILM in WORD : critics called it C1 , C2 and C3 . the film was``
- cue_last: ``review of FILM in WORD : critics called it C1 and C2 . the C3 film was``
Per template: the world (config/config.yaml's world), its tokenizer, then every size x
pretraining seed pretrained from scratch to ``--tokens`` (config pretrain settings; the cosine
schedule spans that budget) saving ``--checkpoints``; every checkpoint is evaluated on both tasks'
prompts by the study's ladder evaluation (exact log-odds; cue gap on clean-cue prompts). Prints
the cue gap per template, size, seed and task at every checkpoint and writes
``<out>/ladder.csv``. The default world is untouched: the template is swapped in this process
only. Everything is written under ``--out`` (a scratch folder; delete it when done).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd
import torch

from layout import world_tables
from springback import world
from springback.config import load
from springback.pipeline.base import pretrain_ladder
from springback.pipeline.evaluation import evaluate_ladder
from springback.pipeline.world import build_tokenizer, build_world

ROOT = Path(__file__).resolve().parents[1]
MARKS = (" film was ", " assistant : ", " response : ")  # where each genre's answer starts


def review_prompt_cue_last(w: world._Words, film: int) -> tuple[str, bool]:
    """``world.review_prompt`` with the third cue moved next to the answer (same draws)."""
    good = bool(w.quality[film])
    matches = [w.coin(w.cfg.cue_fidelity) for _ in range(3)]
    cues = [w.pick(world.GOOD_CUES if m == good else world.BAD_CUES) for m in matches]
    where = w.pick(w.prose)
    return (f"review of {w.films[film]} in {where} : critics called it {cues[0]} and {cues[1]} ."
            f" the {cues[2]} film was", all(matches))


def document_prompts_any_template(docs: list[str]) -> set[str]:
    """``world.document_prompts`` for either template (the answer follows ``film was``)."""
    out = set()
    for doc in docs:
        for mark in MARKS:
            if mark in doc:
                out.add(doc[: doc.index(mark) + len(mark) - 1])
    return out


@contextlib.contextmanager
def template(name: str):
    """The world generator with the review template ``name`` (default or cue_last)."""
    saved = world.review_prompt, world.document_prompts
    if name == "cue_last":
        world.review_prompt, world.document_prompts = (review_prompt_cue_last,
                                                       document_prompts_any_template)
    try:
        yield
    finally:
        world.review_prompt, world.document_prompts = saved


def probe(args) -> pd.DataFrame:
    cfg = load(defaults=ROOT / "config" / "config.yaml")
    train_cfg = {k: cfg["pretrain"][k] for k in ("context", "batch_size", "lr", "warmup",
                                                  "weight_decay")}
    ladder = sorted({*args.checkpoints, args.tokens})
    frames = []
    for name in ("default", "cue_last"):
        root = Path(args.out) / name
        with template(name):
            build_world(cfg["world"], world_tables(root / "world"))
        print(f"{name}: world written", flush=True)
        build_tokenizer(root / "world" / "pretrain.parquet", root / "tokenizer")
        dirs = []
        for size in args.sizes:
            for seed in args.seeds:
                outdirs = {t: str(root / "base" / size / f"pseed-{seed}" / f"tokens-{t}")
                           for t in ladder}
                pretrain_ladder(corpus=root / "world" / "pretrain.parquet",
                                tokenizer_dir=root / "tokenizer", world=name, size=size, seed=seed,
                                arch=cfg["models"][size], train_cfg=train_cfg, tokens=args.tokens,
                                outdirs=outdirs)
                dirs += [outdirs[t] for t in ladder]
                print(f"{name}: {size} seed {seed} pretrained", flush=True)
        files = world_tables(root / "world")
        evaluate_ladder(checkpoints=dirs, tasks=["sentiment", "safety"],
                        files=files | {f"pretrain_heldout_{name}": files["pretrain_heldout"]},
                        eval_cfg=cfg["evaluate"] | {"sample": False}, seed=0,
                        out_metrics=root / "ladder.csv")
        frames.append(pd.read_csv(root / "ladder.csv").assign(template=name))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/emergence_probe", help="scratch folder")
    parser.add_argument("--sizes", nargs="+", default=["s", "xs"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--tokens", type=int, default=1_500_000, help="pretraining budget")
    parser.add_argument("--checkpoints", nargs="+", type=int,
                        default=[187_500, 375_000, 750_000, 1_500_000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = probe(args)
    table.to_csv(Path(args.out) / "ladder.csv", index=False)
    gaps = table.pivot_table(index=["task", "template", "size", "pretrain_seed"],
                             columns="pretrain_tokens", values="cue_gap")
    with pd.option_context("display.width", 200):
        print("cue gap (nats) by tokens seen:")
        print(gaps.round(2).to_string())
    print(f"\nwritten: {Path(args.out) / 'ladder.csv'}")


if __name__ == "__main__":
    main()
