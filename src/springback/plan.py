"""Size a hub study before submitting it: GPU-hours, GPU jobs, peak GPU memory and disk of its
rebound jobs, from the config alone (nothing is downloaded or loaded).

    python -m springback.plan config/hub.yaml [MORE.yaml ...] [--json plan.json] [--mfu 0.3 ...]

The files overlay config/config.yaml as Snakemake's ``--configfile`` does, through the loader the
workflow uses (springback.config.load: schema defaults, every check), so the plan reads the
config the workflow would. One rebound run (springback.runs.run) aligns on max(n_pos)
examples, perturbs from the base and from every n_pos snapshot on max(n_neg) examples, and
evaluates every n_neg checkpoint: probe log-odds on the prompts, bits/byte and KL on held-out
text where ``evaluate.text_at`` says, sampled continuations and their judge when
``evaluate.sample``.

Every number is an ESTIMATE from a throughput model; its assumptions are the fields of
:class:`Assumptions` (each a CLI option, all printed with the plan) and the constants below:

- N counts the weights every token multiplies: the decoder layers and the output head
  (vocabulary x hidden), not the embedding lookup. Attention-score FLOPs (sequences of ~100
  tokens) and padding are not counted.
- Training: 6N FLOPs per token with every weight trained, 4N with LoRA (the frozen base needs no
  weight gradients), +2N with activation checkpointing (the forward pass again), at
  ``mfu`` x ``gpu_tflops``, plus ``step_overhead_s`` per optimiser step (a batch of a few
  hundred tokens is launch- and trainer-bound).
- Evaluation forward passes: 2N FLOPs per token at ``eval_mfu``.
- Sampling is memory-bound: one decode step per new token per batch of ``evaluate.batch_size``
  prompts, each step reading every weight once (weight bytes / ``hbm_tbps``), but no faster
  than ``decode_layer_ms`` per layer (eager ``generate`` at small batch is launch-bound).
- Judges: 2 x their parameters per judged token, in their own dtype (float32 unless the judge
  spec sets ``dtype``: ``fp32_tflops``, no tensor cores).
- Tokens per example: sentiment (prompt_words + completion_words) x ``tokens_per_word`` + BOS and
  EOS; safety an assumed ``safety_tokens``.
- Each job pays ``job_overhead_min`` (loading the model and judge, tokenising the sets).

Released pairs (``pairs:``): one GPU job per pair x task x seed, each perturbing two arms (the
base and the released model) along n_neg from their own start, nothing kept; the job holds the
reference base beside the trained arm (one more copy of the weights), and the released model's
weights (and the base's, unless it is a study base) are fetched.

Not counted: the CPU jobs (hub_data, fetches, tables, figures, report) and the regime screen.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from springback import config
from springback.adapters import check_spec
from springback.config import ConfigError, pair_spec
from springback.evaluate import CACHE_LIMIT
from springback.experiments import study_bases
from springback.hubdata import sentiment_words
from springback.judge import load_sequence_model
from springback.runs import job_runs, kept, text_points

ADAPTER_BYTES = 4        # peft keeps the LoRA adapter in float32 (trained and saved)
ADAM_STATES = 2          # AdamW's m and v per trained parameter, in the parameter's dtype
TRAIN_LOGIT_BYTES = 10   # per training logit: bf16 logits, their fp32 upcast and fp32 gradient
EVAL_LOGIT_BYTES = 12    # per evaluation logit: bf16 logits + masked copy, fp32 upcast, log-softmax
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
SUMMED = ("runs", "jobs", "train_tokens", "eval_tokens", "sampled_tokens", "judged_tokens",
          "gpu_hours", "weights_gb", "checkpoints_gb", "disk_gb")


class PlanError(ValueError):
    """The plan cannot be made; the message is one line naming the cause."""


def _a(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Assumptions:
    """The throughput model's knobs; each is a CLI option (``--gpu-tflops`` ...)."""

    gpu_tflops: float = _a(989.0, "dense bf16 TFLOP/s of one GPU (H100/H200 SXM)")
    mfu: float = _a(0.35, "model FLOPs utilisation of training")
    eval_mfu: float = _a(0.25, "model FLOPs utilisation of evaluation forward passes and judges")
    fp32_tflops: float = _a(67.0, "float32 TFLOP/s without tensor cores (float32 judges)")
    hbm_tbps: float = _a(4.8, "HBM bandwidth in TB/s (H200; H100 SXM 3.35): sampling speed")
    gpu_gb: float = _a(141.0, "GPU memory in GB (H200; H100 80): peaks above it are flagged")
    decode_layer_ms: float = _a(0.7, "floor of a decode step, ms per layer (kernel launches)")
    step_overhead_s: float = _a(0.1, "seconds per optimiser step beyond its FLOPs (launches)")
    job_overhead_min: float = _a(5.0, "minutes per job: model and judge load, evaluation sets")
    tokens_per_word: float = _a(1.35, "tokens per English word (sentiment examples)")
    safety_tokens: float = _a(120.0, "tokens per safety example, prompt + response (assumed)")
    safety_prompt_tokens: float = _a(25.0, "tokens per safety prompt, template included (assumed)")
    doc_tokens: float = _a(500.0, "tokens per held-out pretraining document (C4: ~2 k characters)")
    stored_bytes: float = _a(2.0, "bytes per parameter of fetched weights (bf16 safetensors)")
    memory_overhead_gb: float = _a(2.0, "GB per job of CUDA context and allocator slack")


@dataclass(frozen=True)
class Arch:
    """A gated-MLP decoder's shape (Llama, Gemma, Qwen2)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    head_dim: int = 0          # 0: hidden // heads
    tied: bool = False         # the output head shares the input embedding
    tokenizer_mb: float = 0.0  # tokenizer files written with every kept checkpoint (approx.)


LLAMA2_7B = Arch(4096, 32, 32, 32, 11008, 32000, tokenizer_mb=2.4)
TINYLLAMA = Arch(2048, 22, 32, 4, 5632, 32000, tokenizer_mb=2.4)
ARCHITECTURES = {  # by hub id; a local folder's config.json is read instead
    "meta-llama/Llama-2-7b-hf": LLAMA2_7B,
    "google/gemma-2b": Arch(2048, 18, 8, 1, 16384, 256000, head_dim=256, tied=True,
                            tokenizer_mb=21.7),
    "Qwen/Qwen1.5-0.5B": Arch(1024, 24, 16, 16, 2816, 151936, tokenizer_mb=11.5),  # 620 M stored
    "Qwen/Qwen1.5-4B": Arch(2560, 40, 20, 20, 6912, 151936, tokenizer_mb=11.5),
    "Qwen/Qwen1.5-7B": Arch(4096, 32, 32, 32, 11008, 151936, tokenizer_mb=11.5),
    "TinyLlama/TinyLlama-1.1B-intermediate-step-480k-1T": TINYLLAMA,
    "TinyLlama/TinyLlama-1.1B-intermediate-step-955k-token-2T": TINYLLAMA,
    "TinyLlama/TinyLlama-1.1B-intermediate-step-1195k-token-2.5T": TINYLLAMA,
}
JUDGE_PARAMS = {  # by hub id
    "siebert/sentiment-roberta-large-english": 355_000_000,  # RoBERTa-large
    "PKU-Alignment/beaver-7b-v1.0-cost": 6_607_000_000,      # Llama-7B body + a scalar head
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt")


# --- the config ---------------------------------------------------------------------------


def hub_config(paths: list[str | Path], defaults: str | Path = config.DEFAULTS) -> dict:
    """The study config of ``defaults`` overlaid with ``paths`` (springback.config.load), which
    must be a hub-mode study."""
    cfg = config.load(paths, defaults=defaults)
    if cfg["mode"] != "hub":
        raise PlanError("the plan sizes hub-mode studies (mode: hub, e.g. config/hub.yaml); "
                        "toy studies run on CPU")
    return cfg


# --- shapes and parameter counts ----------------------------------------------------------


def architecture(model_id: str, name: str) -> Arch:
    """The shape of a base: a known hub id, or the config.json of a local model folder."""
    if model_id in ARCHITECTURES:
        return ARCHITECTURES[model_id]
    folder = Path(model_id).expanduser()
    if (folder / "config.json").is_file():
        return arch_from_config(folder)
    raise PlanError(f"hub.models.{name}.id: no architecture known for {model_id!r} (known: "
                    f"{', '.join(ARCHITECTURES)}); add it to springback.plan.ARCHITECTURES or "
                    "point the id at a local model folder")


def arch_from_config(folder: Path) -> Arch:
    c = json.loads((folder / "config.json").read_text())
    tokenizer = sum((folder / f).stat().st_size for f in TOKENIZER_FILES if (folder / f).is_file())
    return Arch(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"],
                c.get("num_key_value_heads") or c["num_attention_heads"], c["intermediate_size"],
                c["vocab_size"], head_dim=c.get("head_dim") or 0,
                tied=bool(c.get("tie_word_embeddings", False)), tokenizer_mb=tokenizer / 1e6)


def module_shapes(arch: Arch) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of every linear module of one decoder layer."""
    hd = arch.head_dim or arch.hidden // arch.heads
    q, kv, h, i = arch.heads * hd, arch.kv_heads * hd, arch.hidden, arch.intermediate
    return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def compute_params(arch: Arch) -> int:
    """N of the FLOP counts: every decoder layer (linear modules, two norms), the final norm
    and the head."""
    layer = sum(a * b for a, b in module_shapes(arch).values()) + 2 * arch.hidden
    return arch.layers * layer + arch.hidden + arch.vocab * arch.hidden


def total_params(arch: Arch) -> int:
    """Stored parameters: N plus the input embedding unless it is the head's."""
    return compute_params(arch) + (0 if arch.tied else arch.vocab * arch.hidden)


def lora_params(arch: Arch, r: int, targets: list[str]) -> int:
    """Adapter parameters: r x (d_in + d_out) per target module, summed over layers."""
    shapes = module_shapes(arch)
    unknown = [t for t in targets if t not in shapes]
    if unknown:
        raise PlanError(f"rebound.adapter.targets: {unknown} are not modules the plan knows "
                        f"({', '.join(shapes)})")
    return arch.layers * sum(r * sum(shapes[t]) for t in targets)


def judge_spec(cfg: dict, task: str) -> dict | None:
    """The task's judge when sampled continuations are judged by a model (else None)."""
    spec = cfg["hub"]["judges"].get(task, {"kind": "exact"})
    return spec if cfg["evaluate"]["sample"] and spec["kind"] != "exact" else None


def judge_params(cfg: dict, task: str) -> int:
    spec = judge_spec(cfg, task)
    if spec is None:
        return 0
    if spec["id"] not in JUDGE_PARAMS:
        raise PlanError(f"hub.judges.{task}.id: no parameter count known for {spec['id']!r}; "
                        "add it to springback.plan.JUDGE_PARAMS")
    return JUDGE_PARAMS[spec["id"]]


def judge_dtype(cfg: dict, task: str) -> str:
    """The judge's dtype: its spec's, else springback.judge's default (float32)."""
    default = inspect.signature(load_sequence_model).parameters["dtype"].default
    return (judge_spec(cfg, task) or {}).get("dtype", default)


@dataclass(frozen=True)
class TaskShape:
    example: float  # tokens per training / held-out example (BOS + prompt + completion + EOS)
    probe: float    # tokens per probe input (BOS + prompt + probe suffix)
    prompt: float   # tokens per sampling prompt (BOS + prompt)
    judged: float   # tokens per judged text (the sampled continuation)


def task_shape(cfg: dict, task: str, a: Assumptions) -> TaskShape:
    mapping = cfg["hub"]["datasets"][task]["mapping"]
    if task == "sentiment":  # the words springback.hubdata.adapt_sentiment cuts a review into
        prompt_words, completion_words = sentiment_words(mapping)
        prompt = prompt_words * a.tokens_per_word
        example = prompt + completion_words * a.tokens_per_word + 2
    else:
        prompt, words = a.safety_prompt_tokens, mapping.get("completion_words")
        example = prompt + words * a.tokens_per_word + 2 if words else a.safety_tokens
    probe = cfg["hub"]["judges"].get(task, {}).get("probe")
    suffix = len(probe["suffix"].split()) * a.tokens_per_word if probe else 0.0
    return TaskShape(example, 1 + prompt + suffix, 1 + prompt, cfg["evaluate"]["max_new_tokens"])


@dataclass(frozen=True)
class Grid:
    """What one run does, counted from the rebound grids."""

    examples: int          # training examples: alignment + every perturbation
    steps: int             # optimiser steps
    checkpoints: int       # checkpoints evaluated (probe, samples)
    text_checkpoints: int  # of which with bits/byte + KL on held-out text
    kept: int              # checkpoints written to disk
    snapshots: int         # alignment snapshots held at once (base + every n_pos)


def run_grid(cfg: dict, *, pair_arm: bool = False) -> Grid:
    """A rebound run; ``pair_arm``: one arm of a released pair (no alignment, perturbed along
    n_neg from its own start, nothing kept)."""
    rb, text_at = cfg["rebound"], cfg["evaluate"]["text_at"]
    n_pos = [] if pair_arm else rb["n_pos"]
    starts = 1 + len(n_pos)  # perturbed from the base and from every n_pos snapshot
    examples = max(n_pos, default=0) + starts * max(rb["n_neg"])
    text = text_points(rb["n_neg"], text_at)
    keep = 0 if pair_arm else sum(kept(rb["keep"], n) for n in rb["n_neg"])
    return Grid(examples, examples // rb["batch_size"], starts * len(rb["n_neg"]),
                starts * len(text), starts * keep, starts)


# --- time ---------------------------------------------------------------------------------


def train_seconds(cfg: dict, arch: Arch, shape: TaskShape, g: Grid, a: Assumptions) -> float:
    rb, n = cfg["rebound"], compute_params(arch)
    per_token = (4 if rb["adapter"]["kind"] == "lora" else 6) * n + 2 * n * rb["checkpointing"]
    flops = g.examples * shape.example * per_token
    return flops / (a.gpu_tflops * 1e12 * a.mfu) + g.steps * a.step_overhead_s


def eval_tokens(cfg: dict, arch: Arch, shape: TaskShape, g: Grid, a: Assumptions) -> float:
    """Forward tokens of a run's evaluation: probes and sampling prompts at every checkpoint;
    held-out pretraining text and D_a / D_t held out (twice when the base's log-probs for KL
    are too large to cache, springback.evaluate.CACHE_LIMIT) where text is measured."""
    sizes = cfg["hub"]["sizes"]
    prompts, heldout = sizes["prompts"], sizes["heldout"] * shape.example
    passes = 1 if heldout * arch.vocab <= CACHE_LIMIT else 2
    text = cfg["hub"]["pretrain_text"]["n_docs"] * a.doc_tokens + 2 * heldout * passes
    per_checkpoint = prompts * (shape.probe + shape.prompt * cfg["evaluate"]["sample"])
    return g.checkpoints * per_checkpoint + g.text_checkpoints * text


def sample_seconds(cfg: dict, arch: Arch, g: Grid, a: Assumptions) -> float:
    """Memory-bound decoding (every step of every prompt batch reads every weight once), with
    a launch-bound floor per step."""
    ev = cfg["evaluate"]
    if not ev["sample"]:
        return 0.0
    batches = math.ceil(cfg["hub"]["sizes"]["prompts"] / ev["batch_size"])
    step = max(total_params(arch) * DTYPE_BYTES[cfg["hub"]["dtype"]] / (a.hbm_tbps * 1e12),
               arch.layers * a.decode_layer_ms / 1e3)
    return g.checkpoints * batches * ev["max_new_tokens"] * step


def judge_seconds(cfg: dict, task: str, judged: float, a: Assumptions) -> float:
    tflops = a.fp32_tflops if judge_dtype(cfg, task) == "float32" else a.gpu_tflops
    return judged * 2 * judge_params(cfg, task) / (tflops * 1e12 * a.eval_mfu)


def run_cost(cfg: dict, arch: Arch, task: str, g: Grid, a: Assumptions) -> dict:
    """One run of ``task``: its tokens, seconds by part and peak GPU memory."""
    shape = task_shape(cfg, task, a)
    fwd = eval_tokens(cfg, arch, shape, g, a)
    sampled = g.checkpoints * cfg["hub"]["sizes"]["prompts"] * cfg["evaluate"]["max_new_tokens"] * \
        cfg["evaluate"]["sample"]
    judged = sampled if judge_spec(cfg, task) else 0
    seconds = {"train": train_seconds(cfg, arch, shape, g, a),
               "eval": fwd * 2 * compute_params(arch) / (a.gpu_tflops * 1e12 * a.eval_mfu),
               "sample": sample_seconds(cfg, arch, g, a),
               "judge": judge_seconds(cfg, task, judged, a)}
    return {"task": task, "tokens_per_example": shape.example,
            "train_tokens": g.examples * shape.example, "eval_tokens": fwd,
            "sampled_tokens": sampled, "judged_tokens": judged,
            "hours": {k: v / 3600 for k, v in seconds.items()},
            "peak_gb": peak_memory_gb(cfg, arch, task, shape, g, a)}


# --- memory and disk ----------------------------------------------------------------------


def adapter_spec(cfg: dict) -> dict:
    """rebound.adapter with springback.adapters' defaults (LoRA r, alpha, targets)."""
    return check_spec(cfg["rebound"]["adapter"])


def adapter_params(cfg: dict, arch: Arch) -> int:
    """Trained parameters: the LoRA adapter's, or every weight."""
    spec = adapter_spec(cfg)
    if spec["kind"] == "full":
        return total_params(arch)
    return lora_params(arch, spec["r"], spec["targets"])


def training_state_bytes(cfg: dict, arch: Arch, g: Grid) -> float:
    """Beyond the resident base: LoRA, the fp32 adapter, its gradient, AdamW's states and the
    alignment snapshots; full, the trained copy, its reset copy (adapters.Trainable), the
    snapshots, gradients and AdamW states, all in the base's dtype."""
    trained = adapter_params(cfg, arch)
    if cfg["rebound"]["adapter"]["kind"] == "lora":
        return trained * ADAPTER_BYTES * (2 + ADAM_STATES + g.snapshots)
    return trained * DTYPE_BYTES[cfg["hub"]["dtype"]] * (2 + g.snapshots + 1 + ADAM_STATES)


def activation_bytes(cfg: dict, arch: Arch, shape: TaskShape) -> float:
    """The larger of a training step's activations and an evaluation batch's logits. Per token
    and layer ~16 x hidden + 8 x intermediate bytes (bf16; fused attention keeps no scores);
    with checkpointing only each layer's input is kept, and one layer is recomputed."""
    rb, ev = cfg["rebound"], cfg["evaluate"]
    tokens = rb["batch_size"] * shape.example
    layer = tokens * (16 * arch.hidden + 8 * arch.intermediate)
    kept = arch.layers * tokens * 2 * arch.hidden + layer if rb["checkpointing"] \
        else arch.layers * layer
    train = kept + tokens * arch.vocab * TRAIN_LOGIT_BYTES
    evaluate = ev["batch_size"] * (ev["context"] - 1) * arch.vocab * EVAL_LOGIT_BYTES
    return max(train, evaluate)


def peak_memory_gb(cfg: dict, arch: Arch, task: str, shape: TaskShape, g: Grid,
                   a: Assumptions) -> float:
    weights = total_params(arch) * DTYPE_BYTES[cfg["hub"]["dtype"]]
    judge = judge_params(cfg, task) * DTYPE_BYTES[judge_dtype(cfg, task)]
    state = training_state_bytes(cfg, arch, g)
    return (weights + state + activation_bytes(cfg, arch, shape) + judge) / 1e9 \
        + a.memory_overhead_gb


def checkpoint_bytes(cfg: dict, arch: Arch) -> float:
    """One kept checkpoint: the fp32 adapter (LoRA) or every weight in the base's dtype, plus
    the tokenizer files saved beside it."""
    lora = cfg["rebound"]["adapter"]["kind"] == "lora"
    per_param = ADAPTER_BYTES if lora else DTYPE_BYTES[cfg["hub"]["dtype"]]
    weights = adapter_params(cfg, arch) * per_param
    return weights + arch.tokenizer_mb * 1e6


# --- the plan -----------------------------------------------------------------------------


def base_row(cfg: dict, base: dict, a: Assumptions) -> dict:
    """One base: its runs (task x direction x seed x pretraining seed), jobs, tokens, hours,
    peak memory and disk."""
    rb, model = cfg["rebound"], cfg["hub"]["models"][base["size"]]
    arch, g = architecture(model["id"], base["size"]), run_grid(cfg)
    by_task = {t: run_cost(cfg, arch, t, g, a) for t in rb["tasks"]}
    costs = [by_task[t] for t, _, _ in job_runs(rb["tasks"], base["directions"], rb["seeds"])]
    costs *= len(base["pretrain_seeds"])
    run_hours = [sum(c["hours"].values()) for c in costs]
    jobs = len(costs) if rb["job"] == "run" else len(base["pretrain_seeds"])
    overhead = a.job_overhead_min / 60
    weights_gb = total_params(arch) * a.stored_bytes / 1e9
    checkpoints_gb = len(costs) * g.kept * checkpoint_bytes(cfg, arch) / 1e9
    return {
        "base": base["size"], "id": model["id"], "params": total_params(arch),
        "trained_params": adapter_params(cfg, arch), "runs": len(costs), "jobs": jobs,
        "steps_per_run": g.steps, "checkpoints_per_run": g.checkpoints,
        "text_checkpoints_per_run": g.text_checkpoints, "kept_per_run": g.kept,
        **{k: sum(c[k] for c in costs) for k in
           ("train_tokens", "eval_tokens", "sampled_tokens", "judged_tokens")},
        "hours_per_job": (max(run_hours) if rb["job"] == "run" else sum(run_hours) / jobs)
        + overhead,
        "gpu_hours": sum(run_hours) + jobs * overhead,
        "peak_gb": max(c["peak_gb"] for c in by_task.values()),
        "weights_gb": weights_gb, "checkpoints_gb": checkpoints_gb,
        "disk_gb": weights_gb + checkpoints_gb, "per_task": by_task,
    }


def pair_row(cfg: dict, name: str, study_ids: set[str], a: Assumptions) -> dict:
    """One released pair: its jobs (task x seed, two arms each), tokens, hours, peak memory
    (the reference base beside the trained arm) and disk (the fetched models)."""
    spec, g = pair_spec(cfg, name), run_grid(cfg, pair_arm=True)
    arch = architecture(spec["base"]["id"], f"pairs.{name}.base")
    reference_gb = total_params(arch) * DTYPE_BYTES[cfg["hub"]["dtype"]] / 1e9
    by_task = {}
    for t in spec["tasks"]:
        cost = run_cost(cfg, arch, t, g, a)
        by_task[t] = {**cost, "peak_gb": cost["peak_gb"] + reference_gb}
    arms = [by_task[t] for t in spec["tasks"] for _ in spec["seeds"] for _ in range(2)]
    job_hours = {t: 2 * sum(c["hours"].values()) for t, c in by_task.items()}
    jobs, overhead = len(arms) // 2, a.job_overhead_min / 60
    fetched = 1 + (spec["base"]["id"] not in study_ids)
    weights_gb = fetched * total_params(arch) * a.stored_bytes / 1e9
    return {
        "base": f"pair {name}", "id": spec["aligned"]["id"], "params": total_params(arch),
        "trained_params": adapter_params(cfg, arch), "runs": len(arms), "jobs": jobs,
        "steps_per_run": g.steps, "checkpoints_per_run": g.checkpoints,
        "text_checkpoints_per_run": g.text_checkpoints, "kept_per_run": g.kept,
        **{k: sum(c[k] for c in arms) for k in
           ("train_tokens", "eval_tokens", "sampled_tokens", "judged_tokens")},
        "hours_per_job": max(job_hours.values()) + overhead,
        "gpu_hours": sum(sum(c["hours"].values()) for c in arms) + jobs * overhead,
        "peak_gb": max(c["peak_gb"] for c in by_task.values()),
        "weights_gb": weights_gb, "checkpoints_gb": 0.0, "disk_gb": weights_gb,
        "per_task": by_task,
    }


def judges_gb(cfg: dict, a: Assumptions) -> float:
    """Fetched judge models (one per task whose samples a model judges)."""
    return sum(judge_params(cfg, t) for t in cfg["rebound"]["tasks"]) * a.stored_bytes / 1e9


def make_plan(cfg: dict, a: Assumptions | None = None) -> dict:
    """Rows per base of the study (hub mode: the rebound bases), per released pair, and their
    totals."""
    a = a or Assumptions()
    bases = study_bases(cfg)
    rows = [base_row(cfg, b, a) for b in bases]
    study_ids = {cfg["hub"]["models"][b["size"]]["id"] for b in bases}
    rows += [pair_row(cfg, name, study_ids, a) for name in cfg["pairs"]]
    totals = {k: sum(r[k] for r in rows) for k in SUMMED}
    totals |= {k: max(r[k] for r in rows) for k in ("hours_per_job", "peak_gb")}
    totals |= {"judges_gb": judges_gb(cfg, a)}
    totals["disk_with_judges_gb"] = totals["disk_gb"] + totals["judges_gb"]
    return {"study": cfg["study"], "assumptions": dataclasses.asdict(a), "rows": rows,
            "totals": totals, "grid": dataclasses.asdict(run_grid(cfg))}


# --- output -------------------------------------------------------------------------------

COLUMNS = (  # (header, key, format)
    ("base", "base", "{}"), ("params", "params", "{:.2f}B"), ("runs", "runs", "{}"),
    ("jobs", "jobs", "{}"), ("steps/run", "steps_per_run", "{}"),
    ("ckpts/run", "checkpoints_per_run", "{}"), ("train Mtok", "train_tokens", "{:.0f}"),
    ("eval Mtok", "eval_tokens", "{:.0f}"), ("sampled Mtok", "sampled_tokens", "{:.1f}"),
    ("h/job", "hours_per_job", "{:.1f}"), ("GPU-h", "gpu_hours", "{:.0f}"),
    ("peak GB", "peak_gb", "{:.0f}"), ("weights GB", "weights_gb", "{:.1f}"),
    ("ckpts GB", "checkpoints_gb", "{:.1f}"),
)
SCALE = {"params": 1e9, "train_tokens": 1e6, "eval_tokens": 1e6, "sampled_tokens": 1e6}


def cells(row: dict, gpu_gb: float) -> list[str]:
    out = [fmt.format(row[key] / SCALE[key] if key in SCALE else row[key]) if key in row else ""
           for _, key, fmt in COLUMNS]
    if row.get("peak_gb", 0) > gpu_gb:
        out[[k for _, k, _ in COLUMNS].index("peak_gb")] += "!"
    return out


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


def assumption_lines(a: Assumptions) -> list[str]:
    return [f"  --{f.name.replace('_', '-')} {getattr(a, f.name):g}  ({f.metadata['help']})"
            for f in dataclasses.fields(a)]


def breakdown(plan: dict) -> str:
    """Hours of one run by part, per base and task."""
    rows = [["base", "task", "tok/example", "train h", "eval h", "sample h", "judge h", "peak GB"]]
    for r in plan["rows"]:
        for t, c in r["per_task"].items():
            h = c["hours"]
            rows.append([r["base"], t, f"{c['tokens_per_example']:.0f}",
                         *(f"{h[k]:.2f}" for k in ("train", "eval", "sample", "judge")),
                         f"{c['peak_gb']:.0f}"])
    return table(rows)


def render(plan: dict, cfg: dict, sources: list[str]) -> str:
    """The plan as text: what a run does, the assumptions, the table and its totals."""
    a, g, rb = Assumptions(**plan["assumptions"]), Grid(**plan["grid"]), cfg["rebound"]
    t = plan["totals"]
    spec = adapter_spec(cfg)
    kind = f"LoRA r {spec['r']} on {','.join(spec['targets'])}" if spec["kind"] == "lora" \
        else "every weight"
    header = [h for h, _, _ in COLUMNS]
    body = [header, *(cells(r, a.gpu_gb) for r in plan["rows"]),
            cells({**t, "base": "total"}, a.gpu_gb)]
    return "\n".join([
        f"springback plan (an ESTIMATE) of study {plan['study']!r}: {' + '.join(sources)}",
        f"rebound jobs (rebound.job {rb['job']}) and released pairs (a job per pair x task x "
        f"seed: two arms perturbed on {max(rb['n_neg'])} examples). One run aligns on "
        f"{max(rb['n_pos'])} "
        f"examples, then perturbs on {max(rb['n_neg'])} from each of {g.snapshots} starts",
        f"(the base and n_pos {rb['n_pos']}): {g.steps} steps of {rb['batch_size']}; "
        f"{g.checkpoints} checkpoints evaluated ({g.text_checkpoints} with bits/byte + KL), "
        f"{g.kept} kept;",
        f"trains {kind}, checkpointing {'on' if rb['checkpointing'] else 'off'}, sampling "
        f"{'on' if cfg['evaluate']['sample'] else 'off'}.",
        "assumptions (each a CLI option):", *assumption_lines(a), "",
        table(body), "",
        f"total: {t['gpu_hours']:.0f} GPU-hours in {t['jobs']} GPU jobs (longest "
        f"{t['hours_per_job']:.1f} h: the rule's Slurm runtime must cover it), peak "
        f"{t['peak_gb']:.0f} GB per GPU{' (! above --gpu-gb)' if t['peak_gb'] > a.gpu_gb else ''}; "
        f"disk {t['disk_gb']:.0f} GB (fetched bases {t['weights_gb']:.0f}, kept checkpoints "
        f"{t['checkpoints_gb']:.0f}) + judges {t['judges_gb']:.1f} GB",
        "", "one run by task (hours, without the job overhead):", breakdown(plan),
    ])


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m springback.plan",
                                description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("configs", nargs="+", help="config files overlaid on --defaults, in order")
    p.add_argument("--defaults", default=str(config.DEFAULTS),
                   help="the workflow's configfile (schema.yaml beside it)")
    p.add_argument("--json", metavar="PATH", help="also write the plan as JSON")
    for f in dataclasses.fields(Assumptions):
        p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=float,
                       default=f.default, help=f"{f.metadata['help']} (default {f.default:g})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    a = Assumptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Assumptions)})
    try:
        cfg = hub_config(args.configs, args.defaults)
        plan = make_plan(cfg, a)
    except (ConfigError, PlanError) as err:
        raise SystemExit(f"springback.plan: {err}") from None
    print(render(plan, cfg, [args.defaults, *args.configs]))
    if args.json:
        Path(args.json).write_text(json.dumps(plan, indent=1))
    return plan


if __name__ == "__main__":
    main()
