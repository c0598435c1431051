"""Training throughput of each training path on the toy model sizes, in tokens/s and as a share
of this machine's measured fp32 matmul peak (model FLOPs = 6 x parameters x tokens, plus the
attention score/value products 6 x layers x context x hidden per token).

Run: .venv/bin/python benchmarks/throughput.py [--steps 30] [--threads 2]
Paths: springback's plain loop (pretraining, batch 32 x 128), the HF Trainer and TRL's
SFTTrainer (same batches; bf16 and activation checkpointing off, as on this CPU they are slower).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch
from springback.config import load

SIZES = load()["models"]
VOCAB, CONTEXT, BATCH = 600, 128, 32


def matmul_peak(n: int = 1024, reps: int = 20) -> float:
    """Measured fp32 matmul GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def model_flops_per_token(model, arch: dict) -> float:
    n = sum(p.numel() for p in model.parameters())
    return 6 * n + 6 * arch["layers"] * CONTEXT * arch["hidden"]


def build(arch: dict):
    from springback.models import build_llama

    return build_llama(VOCAB, **arch, context=CONTEXT, seed=0, bos_id=1, eos_id=2, pad_id=0)


def plain_loop(arch: dict, steps: int) -> float:
    from springback.train import pretrain

    model = build(arch)
    blocks = torch.randint(4, VOCAB, (steps * BATCH, CONTEXT))
    tokens = steps * BATCH * CONTEXT
    start = time.perf_counter()
    pretrain(model, blocks, tokens=tokens, save_at=[], save=lambda m, n: None, batch_size=BATCH,
             lr=1e-3, warmup=1, weight_decay=0.0, seed=0)
    return tokens / (time.perf_counter() - start)


def hf_trainer(arch: dict, steps: int, trl: bool) -> float:
    from datasets import Dataset

    ids = torch.randint(4, VOCAB, (steps * BATCH, CONTEXT)).tolist()
    common = dict(output_dir="/tmp/springback-bench", per_device_train_batch_size=BATCH,
                  max_steps=steps, learning_rate=1e-3, logging_steps=10**6, save_strategy="no",
                  report_to=[], bf16=False, use_cpu=True, dataloader_num_workers=0,
                  disable_tqdm=True)
    model = build(arch)
    if trl:
        from trl import SFTConfig, SFTTrainer

        data = Dataset.from_dict({"input_ids": ids})
        args = SFTConfig(**common, max_length=CONTEXT, packing=False,
                         activation_checkpointing=False, dataset_kwargs={"skip_prepare_dataset": True})
        trainer = SFTTrainer(model=model, args=args, train_dataset=data,
                             processing_class=_tokenizer())
    else:
        from transformers import Trainer, TrainingArguments

        data = Dataset.from_dict({"input_ids": ids, "labels": ids})
        trainer = Trainer(model=model, args=TrainingArguments(**common), train_dataset=data)
    start = time.perf_counter()
    trainer.train()
    return steps * BATCH * CONTEXT / (time.perf_counter() - start)


def _tokenizer():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(VOCAB)}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, "w3")),
                                   pad_token="w0", bos_token="w1", eos_token="w2", unk_token="w3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paths", default="plain,hf,trl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(f"matmul peak (fp32, {args.threads} threads): {peak:.0f} GFLOP/s")
    print(f"{'size':>4} {'params':>8} {'path':>6} {'tok/s':>8} {'% peak':>7}")
    runners = {"plain": plain_loop, "hf": lambda a, s: hf_trainer(a, s, trl=False),
               "trl": lambda a, s: hf_trainer(a, s, trl=True)}
    for size, arch in SIZES.items():
        flops = model_flops_per_token(build(arch), arch)
        n = sum(p.numel() for p in build(arch).parameters())
        for path in args.paths.split(","):
            rate = runners[path](arch, args.steps)
            print(f"{size:>4} {n:>8} {path:>6} {rate:>8.0f} {100 * rate * flops / 1e9 / peak:>6.0f}%")


if __name__ == "__main__":
    main()
