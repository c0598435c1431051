"""Many tiny models at once: springback.ensemble against the single-model loops of train.py.

Fine-tuning: runs per second, a run = STEPS steps of batch 8 on ~30-token examples (each run its
own data, all from one base, as the rebound stage's runs are), one at a time with
``train.finetune`` vs ``finetune_ensemble`` with 4/12/24 members (stacking included).
Pretraining: share of the measured fp32 matmul peak (model FLOPs = 6 x params x tokens +
attention, as benchmarks/throughput.py) for one model with ``train.pretrain`` vs three seeds with
``pretrain_ensemble``, batch 32 x 128. Every figure is the best of --repeats (the machine may be
shared: expect +-30 % between runs; the compared jobs take turns so all see the same load).

Run: .venv/bin/python benchmarks/ensemble.py [--threads 2] [--repeats 3] [--steps 10]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch

from throughput import BATCH, CONTEXT, SIZES, build, matmul_peak, model_flops_per_token

FT_BATCH, PAD = 8, 0  # fine-tuning batch size (the study's) and pad id of throughput.build
PRETRAIN_STEPS = 6  # steps of batch 32 x 128 per pretraining measurement
MEMBERS = (4, 12, 24)  # ensemble sizes of the fine-tuning comparison


def best_times(repeats: int, jobs: dict) -> dict[str, float]:
    """Smallest wall time of each job over ``repeats`` rounds; the jobs take turns within a round
    so that all of them see the same spells of load on a shared machine."""
    times = {k: float("inf") for k in jobs}
    for _ in range(repeats):
        for k, fn in jobs.items():
            start = time.perf_counter()
            fn()
            times[k] = min(times[k], time.perf_counter() - start)
    return times


def ft_data(runs: int, steps: int, seed: int = 0) -> list[list[tuple[list[int], list[int]]]]:
    """Per run, steps x 8 examples: BOS + 15-24 prompt tokens, 5-10 completion tokens + EOS."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda lo, hi: torch.randint(4, 600, (int(torch.randint(lo, hi, (1,), generator=g)),),  # noqa: E731
                                        generator=g).tolist()
    return [[([1] + rand(15, 25), rand(5, 11) + [2]) for _ in range(steps * FT_BATCH)]
            for _ in range(runs)]


def finetune_jobs(base, steps: int) -> dict[int, tuple[int, callable]]:
    """members -> (runs, job): 0 = four runs one by one with train.finetune, else one ensemble."""
    from springback.ensemble import Ensemble, finetune_ensemble
    from springback.train import finetune

    kw = dict(save_at=[steps * FT_BATCH], batch_size=FT_BATCH, lr=1e-4, seed=0, pad_id=PAD)
    data = ft_data(24, steps)
    jobs = {0: (4, lambda: [finetune(copy.deepcopy(base), d, save=lambda m, n: None, **kw)
                            for d in data[:4]])}
    for m in MEMBERS:
        jobs[m] = (m, lambda m=m: finetune_ensemble(Ensemble.from_models([base] * m), data[:m],
                                                    save=lambda e, i, n: None, **kw))
    return jobs


def pretrain_jobs(arch: dict) -> dict[int, tuple[int, callable]]:
    """members -> (tokens, job): 0 = train.pretrain on one model, 3 = pretrain_ensemble, 3 seeds."""
    from springback.ensemble import Ensemble, pretrain_ensemble
    from springback.models import build_llama
    from springback.train import pretrain

    tokens = PRETRAIN_STEPS * BATCH * CONTEXT
    blocks = torch.randint(4, 600, (PRETRAIN_STEPS * BATCH, CONTEXT))
    kw = dict(tokens=tokens, save_at=[], batch_size=BATCH, lr=1e-3, warmup=1, weight_decay=0.1)
    seeds = [0, 1, 2]

    def ensemble():
        models = [build_llama(600, **arch, context=CONTEXT, seed=s, bos_id=1, eos_id=2, pad_id=0)
                  for s in seeds]
        pretrain_ensemble(Ensemble.from_models(models), [blocks] * 3, seeds=seeds, **kw,
                          save=lambda e, i, n: None)
    alone = lambda: pretrain(build(arch), blocks, seed=0, save=lambda m, n: None, **kw)  # noqa: E731
    return {0: (tokens, alone), 3: (3 * tokens, ensemble)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="fine-tuning steps per run")
    parser.add_argument("--sizes", default="s", help="fine-tuning sizes (comma-separated)")
    parser.add_argument("--no-pretrain", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = max(matmul_peak() for _ in range(args.repeats))
    print(f"{args.threads} threads, best of {args.repeats}; matmul peak {peak:.0f} GFLOP/s (fp32)")
    print(f"\nfine-tuning, a run = {args.steps} steps x batch {FT_BATCH} (~30-token examples)")
    print(f"{'size':>4} {'how':>12} {'runs/s':>8} {'speed-up':>8}")
    for size in args.sizes.split(","):
        jobs = finetune_jobs(build(SIZES[size]), args.steps)
        times = best_times(args.repeats, {m: fn for m, (_, fn) in jobs.items()})
        rates = {m: jobs[m][0] / times[m] for m in jobs}
        for m, rate in rates.items():
            how = "one by one" if m == 0 else f"ensemble {m}"
            print(f"{size:>4} {how:>12} {rate:>8.1f} {rate / rates[0]:>8.2f}")
    if args.no_pretrain:
        return
    print(f"\npretraining, batch {BATCH} x {CONTEXT}, {PRETRAIN_STEPS} steps")
    print(f"{'size':>4} {'how':>12} {'tok/s':>8} {'MFU':>6}")
    for size in ("xs", "s"):
        arch, jobs = SIZES[size], pretrain_jobs(SIZES[size])
        flops = model_flops_per_token(build(arch), arch)
        times = best_times(args.repeats, {m: fn for m, (_, fn) in jobs.items()})
        for m, (tokens, _) in jobs.items():
            rate = tokens / times[m]
            how = "alone" if m == 0 else f"ensemble {m}"
            print(f"{size:>4} {how:>12} {rate:>8.0f} {100 * rate * flops / 1e9 / peak:>5.0f}%")


if __name__ == "__main__":
    main()
