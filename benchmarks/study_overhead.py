"""Where a study's wall time goes: per stage, Snakemake's `benchmark:` seconds, and the share of
process start-up (interpreter + imports, measured by re-running each job type's imports) in the
total. Run after a study: .venv/bin/python benchmarks/study_overhead.py [results/toy]
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

# What each rule's script imports before it can work (its start-up), by rule.
IMPORTS = {
    "torch": "import springback.runtime, torch, transformers; from transformers import "
             "LlamaForCausalLM, PreTrainedTokenizerFast; import springback.pipeline.rebound, "
             "springback.evaluate, springback.pipeline.evaluation",
    "data": "import springback.runtime, datasets, pandas, springback.world, springback.data",
    "plot": "import springback.runtime, pandas, plotnine, springback.plots, springback.claims",
}
KIND = {"world": "data", "tokenizer": "data", "aggregate": "plot", "figures": "plot",
        "claims": "plot", "manifest": "plot"}


def startup_seconds(statement: str, reps: int = 2) -> float:
    """Median-ish wall time of a fresh interpreter running ``statement`` (warm file cache)."""
    times = []
    for _ in range(reps + 1):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def job_times(study: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted((study / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(study / "benchmarks").parts[0].removesuffix(".tsv")
        rows.append({"rule": rule, "seconds": float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])})
    return pd.DataFrame(rows)


def main() -> None:
    study = Path(sys.argv[1] if len(sys.argv) > 1 else "results/toy")
    jobs = job_times(study)
    jobs["rule"] = jobs["rule"].replace({"base": "pretrain", "evaluate": "evaluate"})
    per_stage = jobs.groupby("rule")["seconds"].agg(["count", "sum"])
    print(per_stage.round(1).to_string())
    total = jobs["seconds"].sum()
    startup = {kind: startup_seconds(stmt) for kind, stmt in IMPORTS.items()}
    kinds = Counter(KIND.get(r, "torch") for r in jobs["rule"])
    overhead = sum(startup[k] * n for k, n in kinds.items())
    print(f"jobs: {len(jobs)}; sum of job wall times: {total:.0f} s")
    print("start-up per job (s): " + ", ".join(f"{k} {v:.1f}" for k, v in startup.items()))
    print(f"start-up share of job time: {100 * overhead / total:.1f} % ({overhead:.0f} s)")


if __name__ == "__main__":
    main()
