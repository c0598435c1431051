"""The competence screen of config/real.yaml: which LoRA learning rate moves the real model's
behaviour within the grid while it stays competent (the rule of springback.algorithms' screen).

For each learning rate, from the base (pretraining seed 0, fine-tuning seed 1):
- align: LoRA on D_a (positive review continuations) for 64 examples, read at 32 and 64:
  probe log-odds gained, cue gap, held-out D_p bits/byte rise (%);
- departure: LoRA on D_t (negative continuations) for 32 examples: held-out D_t bits/byte must
  fall (training on D_t makes D_t more predictable) and the log-odds must move toward negative.
Competent = D_p rises < 10 % and held-out D_t improves; the grid needs a lift of >= 1 nat by 64.

Run (after `snakemake --configfile config/real.yaml --until hub_data fetch_base`):
    .venv/bin/python benchmarks/real_screen.py [--lr 1e-4 3e-4 1e-3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from layout import checkpoint, world_files
from springback.adapters import Trainable
from springback.data import ordered_examples
from springback.evaluate import evaluate_checkpoint
from springback.runs import prepare
from springback.tokenizer import special_ids
from springback.train import finetune

STUDY = Path("results/real")
BASE = checkpoint(STUDY, "gemma3_270m", 6_000_000_000_000, world="hub")
FILES = world_files(STUDY, tasks=["sentiment"])
PROBE = {"kind": "probe", "probe": {"suffix": " ... Overall, the movie was",
                                    "target": [" good", " great", " excellent", " wonderful"],
                                    "contrary": [" bad", " terrible", " awful", " boring"]}}
ADAPTER = {"kind": "lora", "r": 8, "alpha": 16, "dropout": 0.0,
           "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    eval_cfg = {"max_new_tokens": 8, "temperature": 1.0, "sample": False, "context": 128,
                "text_at": None, "batch_size": 8, "documents": {}}
    tok, base, record = prepare(base_dir=BASE, files=FILES, tasks=["sentiment"],
                                pretrain_heldout=FILES["pretrain_heldout"], n_neg=[0],
                                eval_cfg=eval_cfg, judges={"sentiment": PROBE})
    ev = record.sets["sentiment"]
    pad = special_ids(tok)["pad"]
    pos = ordered_examples(tok, FILES["sentiment_align"], seed=1, phase=1, n=args.n)
    neg = ordered_examples(tok, FILES["sentiment_perturb"], seed=1, phase=2, n=args.n)
    trainable = Trainable(base, ADAPTER)
    ev.base = None  # no KL to base: the screen reads behaviour and code lengths only
    del ev.texts["align"]

    def read(model) -> dict:
        m, _ = evaluate_checkpoint(model, tok, ev, seed=1, text=True, sample=False)
        return {k: m[k] for k in ("logodds", "cue_gap", "bpb_pretrain", "bpb_perturb")}

    start = time.time()
    ref = read(trainable.fresh(1))
    print(f"base: {fmt(ref)}  ({time.time() - start:.0f} s)", flush=True)
    for lr in args.lr:
        for phase, data in (("align", pos), ("departure", neg[: args.n // 2])):
            model = trainable.fresh(1)
            t0 = time.time()
            finetune(model, data, save_at=sorted({len(data) // 2, len(data)}), batch_size=8, lr=lr, seed=1,
                     pad_id=pad, loss="completion",
                     save=lambda m, n: print(f"lr {lr:g} {phase} {n}: {fmt(read(m), ref)}",
                                             flush=True))
            print(f"  ({time.time() - t0:.0f} s)", flush=True)


def fmt(m: dict, ref: dict | None = None) -> str:
    out = " ".join(f"{k} {v:.3f}" for k, v in m.items())
    if ref:
        out += (f" | dlogodds {m['logodds'] - ref['logodds']:+.2f}"
                f" D_p {100 * (m['bpb_pretrain'] / ref['bpb_pretrain'] - 1):+.1f}%"
                f" D_t {100 * (m['bpb_perturb'] / ref['bpb_perturb'] - 1):+.1f}%")
    return out


if __name__ == "__main__":
    main()
