"""The compute floor of a finished toy study: the model FLOPs its pretraining and rebound jobs
performed, counted by torch's own FlopCounterMode on the study's real models, data and grids, set
against the machine's measured fp32 matmul peak and the jobs' measured seconds.

The floor is a lower bound on wall time: it counts matmul and attention FLOPs only (no norms,
activations, optimiser, Python), and it assumes every core at its peak all the time. Per stage:
- pretraining: tokens of every pretraining job x FLOPs per token of one training step
  (batch 32 x 128, forward + backward);
- rebound training: examples each run trains on (phase 1 up to the largest n_pos, then phase 2
  up to the largest n_neg from every snapshot and the base) x FLOPs per example of one
  forward + backward on the task's real examples (``train.collate``, the study's loss) through
  ``springback.ensemble``, as the rebound jobs train (lm_head at labelled positions only);
- rebound evaluation: the checkpoints each job's metrics.csv holds x FLOPs of one behaviour
  evaluation, plus its text rows (bits/byte and KL) x FLOPs of the text metrics.
Other stages (algorithms, resistance, compression, ladder, report) are listed with their measured
seconds only.

Everything is read from the study folder (checkpoint provenance, metrics.csv and its provenance,
the world), so it applies to any finished toy study.

Run after a study: .venv/bin/python benchmarks/study_floor.py [results/toy] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import json

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from layout import world_files  # noqa: E402
from study_overhead import job_times  # noqa: E402
from throughput import matmul_peak  # noqa: E402

from springback import data, models  # noqa: E402
from springback.ensemble import Ensemble  # noqa: E402
from springback.evaluate import behaviour_probs, eval_set, set_base, text_metrics  # noqa: E402
from springback.tokenizer import special_ids  # noqa: E402
from springback.train import collate  # noqa: E402


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def largest(pretraining: Path) -> Path:
    """The largest-budget checkpoint of one pretraining job's ladder (``.../pseed-N``)."""
    return max(pretraining.glob("tokens-*"), key=lambda p: int(p.name[7:]))


def per_unit(study: Path, size: str, task: str, train: dict) -> dict[str, float]:
    """FLOPs per pretraining token, per fine-tuning example, per behaviour and text evaluation
    of the study's own main base of ``size`` (pretraining seed 0, its largest budget)."""
    path = largest(study / "base" / "main" / size / "pseed-0")
    tok, model = models.load_tokenizer(path), models.load_model(path)
    pad = special_ids(tok)["pad"]
    pre_cfg = models.read_provenance(path)["params"]["pretrain"]
    ctx, batch = pre_cfg["context"], pre_cfg["batch_size"]
    ids = torch.randint(4, model.config.vocab_size, (batch, ctx))
    pre = flops(lambda: model(input_ids=ids, labels=ids).loss.backward()) / (batch * ctx)
    files = world_files(study)
    tables = data.task_files(files, task)
    first, _ = data.phase_files(tables, "forward")
    bs = train["batch_size"]
    n = min(16 * bs, len(data.read_table(first, data.EXAMPLE_COLUMNS)) // bs * bs)
    examples = data.ordered_examples(tok, first, seed=1, phase=1, n=n)

    ens = Ensemble.from_models([model])  # the study's rebound jobs train through the ensemble

    def step(lo: int) -> None:
        batch = collate(examples[lo: lo + bs], pad, loss=train["loss"])
        ens.losses(*(t[None] for t in batch)).sum().backward()

    ft = flops(lambda: [step(lo) for lo in range(0, len(examples), bs)]) / len(examples)
    ev = eval_set(tok, task=task, tables=tables, pretrain_heldout=files["pretrain_heldout"],
                  eval_cfg={"max_new_tokens": 1, "temperature": 1.0, "batch_size": 64,
                            "context": ctx, "documents": {}})
    set_base(model, ev)  # the same weights: the cached reference costs what a base's would
    with torch.no_grad():
        text_metrics(model, ev)  # fills the base's cache, as a job's first checkpoint does
        beh = flops(lambda: behaviour_probs(model, ev))
        text = flops(lambda: text_metrics(model, ev))
    return {"pretrain_token": pre, "finetune_example": ft, "behaviour": beh, "text": text}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study", nargs="?", default="results/toy")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    study = Path(args.study)
    torch.set_num_threads(2)
    peak = max(matmul_peak() for _ in range(3)) * 1e9
    units: dict[tuple[str, str], dict] = {}

    def unit(size: str, task: str, train: dict) -> dict:
        if (size, task) not in units:
            units[size, task] = per_unit(study, size, task, train)
        return units[size, task]

    rows, jobs_metrics = [], sorted((study / "rebound").rglob("metrics.csv"))
    if not jobs_metrics:
        raise SystemExit(f"{study}: no rebound/**/metrics.csv (not a finished toy study)")
    train = json.loads(Path(f"{jobs_metrics[0]}.provenance.json").read_text())["params"]
    first_task = pd.read_csv(jobs_metrics[0])["task"].iloc[0]
    for job in sorted((study / "base").glob("*/*/pseed-*")):  # <world>/<size>/pseed-N
        tokens = models.read_provenance(largest(job))["tokens"]
        rows.append({"stage": "pretrain",
                     "flops": tokens * unit(job.parent.name, first_task, train)["pretrain_token"]})
    for metrics in jobs_metrics:
        frame = pd.read_csv(metrics)
        # examples a run trains on: phase 1 to the largest n_pos, then phase 2 to the largest
        # n_neg from every snapshot and from the base (n_pos = 0)
        n_pos, n_neg = sorted(frame["n_pos"].unique()), frame["n_neg"].max()
        per_run = max(n_pos) + len(n_pos) * n_neg
        for (size, task), part in frame.groupby(["size", "task"]):
            u = unit(size, task, train)
            n_runs = len(part.groupby(["direction", "seed"]))
            rows.append({"stage": "rebound training",
                         "flops": n_runs * per_run * u["finetune_example"]})
            rows.append({"stage": "rebound evaluation",
                         "flops": len(part) * u["behaviour"]
                         + int(part["bpb_pretrain"].notna().sum()) * u["text"]})
    floor = pd.DataFrame(rows).groupby("stage")["flops"].sum()
    floor["rebound (both)"] = floor.get("rebound training", 0) + floor.get("rebound evaluation", 0)
    floor["modelled total"] = floor["pretrain"] + floor["rebound (both)"]
    jobs = job_times(study)
    measured = jobs.groupby("rule")["seconds"].sum().rename({"base": "pretrain"})
    job_s = {"pretrain": measured.get("pretrain"), "rebound (both)": measured.get("rebound")}
    print(f"matmul peak (fp32, 2 threads): {peak / 1e9:.0f} GFLOP/s")
    print("FLOPs per unit (FlopCounterMode), per size and task:")
    for (size, task), u in sorted(units.items()):
        print(f"  {size:>2} {task:<10} pretrain token {u['pretrain_token'] / 1e6:.2f} M, "
              f"fine-tuning example {u['finetune_example'] / 1e6:.1f} M, behaviour evaluation "
              f"{u['behaviour'] / 1e9:.2f} G, text metrics {u['text'] / 1e9:.2f} G")
    # model jobs run one thread each, two at a time: a stage's wall share is job seconds / 2
    print(f"\n{'stage':<20} {'TFLOP':>7} {'floor s':>8} {'job s':>8} {'MFU':>5}")
    for stage, f in floor.items():
        line = f"{stage:<20} {f / 1e12:>7.2f} {f / peak:>8.1f}"
        if job_s.get(stage):
            line += f" {job_s[stage]:>8.0f} {100 * f / peak / (job_s[stage] / 2):>4.0f}%"
        print(line)
    others = measured.drop(labels=["pretrain", "rebound"], errors="ignore")
    print("\nnot modelled (job seconds): " + ", ".join(f"{k} {v:.0f}" for k, v in others.items()))
    total = floor["modelled total"]
    print(f"\nfloor of the modelled stages at 100 % of peak: {total / peak / 60:.1f} min; "
          f"at 50 %: {total / peak / 30:.1f} min; all jobs measured: {jobs['seconds'].sum():.0f} "
          "job-seconds")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "peak_flops": peak, "units": {f"{k[0]}/{k[1]}": v for k, v in units.items()},
            "flops": floor.to_dict(), "job_seconds": measured.to_dict()}, indent=1))

if __name__ == "__main__":
    main()
