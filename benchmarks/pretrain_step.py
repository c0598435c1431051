"""Pretraining throughput of ``train.pretrain`` (fused loss, fused AdamW) against the loop it
replaced (HF's ``model(input_ids, labels=ids).loss``, for-loop AdamW), 1 thread, batch 32 x 128,
vocabulary 600, per toy size: tokens/s and the share of the 1-thread fp32 matmul peak (model
FLOPs as benchmarks/throughput.py counts them).

The matmul peak and the two loops take turns within every round (the loops each first in every
other round), so all see the same spells of load on a shared machine; medians are printed.

Run: .venv/bin/python benchmarks/pretrain_step.py [--rounds 15] [--steps 4] [--sizes xs,s,m]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from throughput import BATCH, CONTEXT, SIZES, VOCAB, build, matmul_peak, model_flops_per_token


def old_loop(model, blocks: torch.Tensor, steps: int) -> None:
    """The pretraining step before the fused loss (lr schedule and data order left out)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    model.train()
    for step in range(steps):
        x = blocks[step * BATCH: (step + 1) * BATCH]
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()


def new_loop(model, blocks: torch.Tensor, steps: int) -> None:
    from springback.train import pretrain

    pretrain(model, blocks, tokens=steps * BATCH * CONTEXT, save_at=[], save=lambda m, n: None,
             batch_size=BATCH, lr=1e-3, warmup=1, weight_decay=0.1, seed=0)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=4, help="steps per timed call")
    parser.add_argument("--sizes", default="xs,s,m")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokens = args.steps * BATCH * CONTEXT
    blocks = torch.randint(4, VOCAB, (args.steps * BATCH, CONTEXT))
    print(f"1 thread, batch {BATCH} x {CONTEXT}, {args.steps} steps per call, medians of "
          f"{args.rounds} interleaved rounds")
    print(f"{'size':>4} {'loop':>4} {'tok/s':>8} {'% peak':>7} {'speed-up':>8}")
    for size in args.sizes.split(","):
        arch = SIZES[size]
        models = {"old": build(arch), "new": build(arch)}
        loops = {"old": old_loop, "new": new_loop}
        flops = model_flops_per_token(models["old"], arch)
        for name in loops:  # warm-up
            loops[name](models[name], blocks, 1)
        times, peaks = {k: [] for k in loops}, []
        for r in range(args.rounds):
            peaks.append(matmul_peak())
            for name in (list(loops) if r % 2 else list(loops)[::-1]):  # ABBA
                times[name].append(seconds(lambda: loops[name](models[name], blocks, args.steps)))
        peak = statistics.median(peaks)
        rates = {k: tokens / statistics.median(v) for k, v in times.items()}
        for name, rate in rates.items():
            print(f"{size:>4} {name:>4} {rate:>8.0f} {100 * rate * flops / 1e9 / peak:>6.0f}% "
                  f"{rate / rates['old']:>7.2f}x")
        print(f"     (1-thread matmul peak, median: {peak:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
