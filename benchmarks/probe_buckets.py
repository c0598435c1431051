"""The behaviour probe in length-sorted batches (``evaluate.behaviour_probs``) against the probe
it replaced (every prompt left-padded to the longest, one forward), on a random-init s model at
1 thread: seconds per probe of 200 prompts of equal length (the toy tasks' prompts: 19 tokens)
and of varied length (8-128 tokens, as hub prompts vary), with the largest log-odds gap.

The two take turns, each first in every other round (the machine may be shared); medians
are printed.

Run: .venv/bin/python benchmarks/probe_buckets.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from springback import evaluate
from throughput import SIZES, VOCAB, build


@torch.no_grad()
def one_padded_batch(model, ev: evaluate.EvalSet) -> np.ndarray:
    """The log-odds of the probe before length buckets."""
    ids, mask = evaluate.padded(ev.prompt_ids, ev.pad_id, left=True)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logp = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                 logits_to_keep=1).logits[:, -1].float().log_softmax(-1)
    target = logp[:, ev.target_ids].logsumexp(-1)
    contrary = logp[:, ev.contrary_ids].logsumexp(-1)
    return (target - contrary).double().numpy()


def prompts(lengths: np.ndarray, seed: int = 0) -> evaluate.EvalSet:
    g = torch.Generator().manual_seed(seed)
    ids = [[1] + torch.randint(4, VOCAB, (int(n) - 1,), generator=g).tolist() for n in lengths]
    n = len(ids)
    return evaluate.EvalSet(prompt_ids=ids, contexts=np.zeros(n, bool), clean=np.ones(n, bool),
                            target_ids=[10, 11], contrary_ids=[12, 13], judge=None, texts={},
                            pad_id=0, eos_id=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = build(SIZES["s"]).eval()
    rng = np.random.default_rng(0)
    sets = {"equal (200 x 19)": prompts(np.full(200, 19)),
            "varied (200, 8-128)": prompts(rng.integers(8, 129, 200))}
    print(f"s model, 1 thread, medians of {args.rounds} interleaved rounds")
    for name, ev in sets.items():
        fns = {"one batch": lambda: one_padded_batch(model, ev),
               "buckets": lambda: evaluate.behaviour_probs(model, ev)[2]}
        gap = np.abs(fns["one batch"]() - fns["buckets"]()).max()
        times = {k: [] for k in fns}
        for r in range(args.rounds):
            for k in (list(fns) if r % 2 else list(fns)[::-1]):  # ABBA: neither always first
                start = time.perf_counter()
                fns[k]()
                times[k].append(time.perf_counter() - start)
        old, new = (statistics.median(times[k]) for k in fns)
        print(f"{name:>20}: one batch {1e3 * old:.1f} ms, buckets {1e3 * new:.1f} ms "
              f"({old / new:.2f}x), batches {len(evaluate.length_batches(ev.prompt_ids, ev.probe_tokens))}, "
              f"largest log-odds gap {gap:.1e}")


if __name__ == "__main__":
    main()
