"""Training-step throughput of a Qwen1.5-0.5B-shaped model at random init, for a GPU check:
a LoRA step and a full fine-tuning step, in tokens/s, seconds per step, peak memory and MFU.

Run:  python3 benchmarks/gpu_check.py [--device cuda] [--out gpu_check.json]
Test: .venv/bin/python benchmarks/gpu_check.py --device cpu --tiny --steps 2 --warmup 1

Both steps run under torch.autocast(bf16) with activation checkpointing on every layer, on one
fixed batch of random token ids (labels = inputs, the model's own shifted next-token loss):
- lora: base weights frozen in bf16; peft LoRA r=16 on q/k/v/o (adapters kept in fp32 by peft);
  AdamW over the adapters alone.
- full: fp32 master weights, bf16 compute through autocast (mixed precision); AdamW over all.

FLOPs per trained token (PaLM appendix B convention; no halving for the causal mask):
  N    = weights that multiply activations: every nn.Linear weight, the LM head included (tied or
         not); not the embedding lookup, norms or biases.
  attn = 12 * layers * seq * hidden   (QK^T and AV: 2 * 2 * s * d forward per layer, x3 with backward)
  full : 6N + attn                     (forward 2N, backward 2N for inputs + 2N for weights)
  lora : 4N + 6N_lora + attn           (frozen weights get no weight gradient)
  6N   : 6N + attn for both modes      (the usual convention; overstates LoRA by ~2N)
  hfu  : model FLOPs + 2N(+2N_lora) + attn/3, the forward that checkpointing recomputes
MFU = model FLOPs/token x tokens/s / peak; peak = --peak-tflops (default 989 on cuda: H100/H200
SXM dense bf16 by the datasheet; a large bf16 GEMM reaches ~790 on an H200, so ~80% MFU is the
practical ceiling).
On CPU MFU is n/a unless --peak-tflops is given.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
H200_BF16_DENSE_TFLOPS = 989.0  # datasheet dense bf16 (no sparsity) of the H100/H200 SXM


def qwen15_05b_config():
    """Qwen/Qwen1.5-0.5B's config.json, built in code (no network). Checked against copies of that
    file on the hub: 24 layers, hidden 1024, MLP 2816, 16 heads with 16 KV heads (no GQA), vocab
    151936, 32768 positions, rope theta 1e6, RMSNorm eps 1e-6, QKV bias (Qwen2 always has it),
    and tie_word_embeddings *true* (464 M parameters; untied would be 620 M)."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=151936, hidden_size=1024, intermediate_size=2816, num_hidden_layers=24,
        num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=32768,
        rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        tie_word_embeddings=True, use_sliding_window=False, sliding_window=32768,
        max_window_layers=21, hidden_act="silu", use_cache=False,
        bos_token_id=151643, eos_token_id=151643)


def tiny_config():
    """A two-layer Qwen2 that trains a step in well under a second on one CPU core."""
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                       tie_word_embeddings=True, use_cache=False)


def load_config(args: argparse.Namespace):
    """The model config: --tiny, a local config.json (file or directory), or Qwen1.5-0.5B's."""
    if args.tiny:
        return tiny_config()
    if args.model_config:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(args.model_config)
        config.use_cache = False
        return config
    return qwen15_05b_config()


def build(config, *, dtype: torch.dtype, device: torch.device, attn: str, seed: int):
    """A causal LM at random init, built directly on ``device``, with activation checkpointing."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with device:
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.2x
    if enable is not None:
        enable({"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train()


def n_matmul(model) -> int:
    """Weights that multiply activations: every nn.Linear weight (LM head included)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def n_total(model) -> int:
    """Distinct parameters (a tied embedding/head counted once)."""
    return sum(p.numel() for p in model.parameters())


def setup_full(config, device: torch.device, args):
    """fp32 master weights trained by AdamW; bf16 comes from autocast."""
    model = build(config, dtype=torch.float32, device=device, attn=args.attn, seed=args.seed)
    counts = {"n_total": n_total(model), "n_matmul": n_matmul(model), "n_lora": 0}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5,  # lr: irrelevant to speed, keeps loss sane
                            fused=device.type == "cuda")
    return model, opt, counts


def setup_lora(config, device: torch.device, args):
    """Frozen bf16 base with peft LoRA adapters (r=16, alpha=32) on q/k/v/o, trained by AdamW."""
    from peft import LoraConfig, get_peft_model

    base = build(config, dtype=torch.bfloat16, device=device, attn=args.attn, seed=args.seed)
    counts = {"n_total": n_total(base), "n_matmul": n_matmul(base)}
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS,
                      task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)  # autocast_adapter_dtype=True: adapters in fp32
    trainable = [p for p in model.parameters() if p.requires_grad]
    counts["n_lora"] = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-4, fused=device.type == "cuda")
    return model, opt, counts


SETUPS = {"lora": setup_lora, "full": setup_full}


def flops_per_token(mode: str, counts: dict, config, seq: int) -> dict[str, float]:
    """Model, 6N-convention and hardware (with the recomputed forward) FLOPs per token."""
    n, n_lora = counts["n_matmul"], counts["n_lora"]
    attn = 12 * config.num_hidden_layers * seq * config.hidden_size
    model = (6 * n if mode == "full" else 4 * n + 6 * n_lora) + attn
    return {"model": model, "six_n": 6 * n + attn,
            "hardware": model + 2 * n + 2 * n_lora + attn / 3}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model, opt, ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One optimiser step of next-token loss under bf16 autocast; returns the (detached) loss."""
    with torch.autocast(device.type, dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def time_steps(model, opt, ids, device: torch.device, *, warmup: int, steps: int):
    """Per-step wall seconds of ``steps`` steps after ``warmup`` untimed ones, and the losses."""
    losses, seconds = [], []
    for _ in range(warmup):
        losses.append(train_step(model, opt, ids, device))
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        losses.append(train_step(model, opt, ids, device))
        sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds, [float(x) for x in losses]


def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    """Peak allocated memory since the last reset (weights, optimiser state and activations)."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def measure(mode: str, config, device: torch.device, args) -> dict:
    """Build the ``mode`` model, time its steps and return one result row."""
    reset_memory(device)
    model, opt, counts = SETUPS[mode](config, device, args)
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), generator=gen).to(device)
    seconds, losses = time_steps(model, opt, ids, device, warmup=args.warmup, steps=args.steps)
    row = {"mode": mode, **counts, "batch": args.batch, "seq": args.seq, "steps": args.steps,
           "step_s_median": statistics.median(seconds), "step_s_mean": statistics.fmean(seconds),
           "tokens_per_s": args.batch * args.seq * len(seconds) / sum(seconds),
           "peak_mem_gib": peak_gib(device), "loss_first": losses[0], "loss_last": losses[-1]}
    row.update(utilisation(row, flops_per_token(mode, counts, config, args.seq), args.peak_tflops))
    del model, opt
    reset_memory(device)
    return row


def utilisation(row: dict, flops: dict[str, float], peak_tflops: float | None) -> dict:
    """Achieved model TFLOP/s, and MFU / MFU(6N) / HFU against the peak (None without one)."""
    rate = row["tokens_per_s"]
    out = {f"flops_per_token_{k}": v for k, v in flops.items()}
    out["model_tflops"] = flops["model"] * rate / 1e12
    for key, name in (("model", "mfu"), ("six_n", "mfu_6n"), ("hardware", "hfu")):
        out[name] = flops[key] * rate / (peak_tflops * 1e12) if peak_tflops else None
    return out


def environment(device: torch.device, config, args) -> dict:
    """Versions, device and settings that the numbers depend on."""
    import transformers

    try:
        import peft
        peft_version = peft.__version__
    except ImportError:
        peft_version = None
    cuda = device.type == "cuda"
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "transformers":
            transformers.__version__, "peft": peft_version, "python": sys.version.split()[0],
            "device": torch.cuda.get_device_name(device) if cuda else "cpu",
            "peak_tflops": args.peak_tflops, "attn": args.attn, "seed": args.seed,
            "config": {k: getattr(config, k) for k in (
                "model_type", "vocab_size", "hidden_size", "intermediate_size",
                "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "tie_word_embeddings")},
            "flops": "full 6N+attn; lora 4N+6N_lora+attn; attn=12*L*seq*hidden; "
                     "N=nn.Linear weights incl. LM head; hfu adds the recomputed forward"}


def fmt(value, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


def table(rows: list[dict]) -> str:
    """The rows as a fixed-width text table."""
    head = (f"{'mode':<5} {'params':>8} {'trained':>8} {'tok/s':>10} {'step s':>8} "
            f"{'peak GiB':>8} {'TFLOP/s':>8} {'MFU':>6} {'MFU(6N)':>7} {'HFU':>6} {'loss first>last':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        trained = r["n_lora"] or r["n_total"]
        lines.append(
            f"{r['mode']:<5} {r['n_total'] / 1e6:>7.2f}M {trained / 1e6:>7.2f}M "
            f"{r['tokens_per_s']:>10.0f} {r['step_s_median']:>8.4f} "
            f"{fmt(r['peak_mem_gib'], '.2f'):>8} {r['model_tflops']:>8.2f} "
            f"{fmt(r['mfu'], '.1%'):>6} {fmt(r['mfu_6n'], '.1%'):>7} {fmt(r['hfu'], '.1%'):>6} "
            f"{r['loss_first']:>8.3f}>{r['loss_last']:<6.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--model-config", help="local config.json or model directory "
                   "(default: Qwen1.5-0.5B's config, built in code)")
    p.add_argument("--tiny", action="store_true",
                   help="a 2-layer model, and batch 2 x seq 64 unless given: a CPU test in seconds")
    p.add_argument("--seq", type=int, help="tokens per sequence (default 512; 64 with --tiny)")
    p.add_argument("--batch", type=int, help="sequences per step (default 8; 2 with --tiny)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (kernels, allocator)")
    p.add_argument("--modes", default="lora,full", help="comma-separated subset of lora,full")
    p.add_argument("--attn", default="sdpa", help="attention implementation (sdpa, eager, ...)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help=f"peak bf16 TFLOP/s for MFU (default {H200_BF16_DENSE_TFLOPS:g} on cuda, "
                        "none on cpu)")
    p.add_argument("--seed", type=int, default=0, help="init and data seed")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    args.seq = args.seq or (64 if args.tiny else 512)
    args.batch = args.batch or (2 if args.tiny else 8)
    if args.peak_tflops is None and args.device.startswith("cuda"):
        args.peak_tflops = H200_BF16_DENSE_TFLOPS
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device} but torch {torch.__version__} sees no CUDA device",
              file=sys.stderr)
        return 2
    config = load_config(args)
    env = environment(device, config, args)
    print(json.dumps(env, indent=1), flush=True)
    rows = [measure(mode, config, device, args) for mode in args.modes.split(",")]
    print(table(rows), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    finite = all(math.isfinite(r["loss_last"]) for r in rows)
    if not finite:
        print("gpu_check: a loss is not finite", file=sys.stderr)
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
