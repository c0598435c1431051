"""Seconds per checkpoint evaluation of an s-size model, as the rebound job does it in memory:
behaviour only (exact log-odds of 200 prompts, cue gap) and with the text metrics (bits/byte of
held-out D_p, D_a, D_t per document, response-only bits and KL to base), at 1 and 2 threads;
the best of 3 rounds of 20 calls (the machine may be shared).

Run after a study: .venv/bin/python benchmarks/evaluation.py [results/toy]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from layout import world_files
from springback import data, models
from springback.config import load
from springback.evaluate import eval_set, evaluate_checkpoint, set_base


def seconds_per_call(fn, reps: int = 20, rounds: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def main() -> None:
    study = Path(sys.argv[1] if len(sys.argv) > 1 else "results/toy")
    cfg = load()
    base_dir = sorted((study / "base" / "main" / "s").glob("pseed-0/tokens-*"),
                      key=lambda p: int(p.name[7:]))[-1]
    tok, base = models.load_tokenizer(base_dir), models.load_model(base_dir)
    model = models.load_model(base_dir)
    files = world_files(study)
    ev = eval_set(tok, task="sentiment", tables=data.task_files(files, "sentiment"),
                  pretrain_heldout=files["pretrain_heldout"], eval_cfg=cfg["evaluate"])
    set_base(base, ev)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for text in (False, True):
            s = seconds_per_call(lambda: evaluate_checkpoint(model, tok, ev, seed=1, text=text,
                                                             sample=False))
            print(f"{threads} thread(s), {'behaviour + text' if text else 'behaviour only'}: "
                  f"{s:.3f} s per checkpoint")


if __name__ == "__main__":
    main()
