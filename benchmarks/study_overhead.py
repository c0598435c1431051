"""Where a study's wall time goes: per stage, Snakemake's `benchmark:` seconds, and the share of
process start-up (interpreter + imports, measured by re-running each job type's imports) in the
total; given the run's Snakemake output (``--log``), also each stage's span of wall-clock time
(first job started, last job finished, minutes from the run's start).
Run after a study: .venv/bin/python benchmarks/study_overhead.py [results/toy] [--log FILE]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

# What each rule's script imports before it can work (its start-up), by rule.
IMPORTS = {
    "torch": "import springback.runtime, torch, transformers; from transformers import "
             "LlamaForCausalLM, PreTrainedTokenizerFast; import springback.runs, "
             "springback.pipeline.rebound, springback.evaluate",
    "data": "import springback.runtime, datasets, pandas, springback.world, springback.data",
    "plot": "import springback.runtime, pandas, plotnine, springback.plots, springback.claims",
}
KIND = {"world": "data", "tokenizer": "data", "aggregate": "plot", "figures": "plot",
        "table_figures": "plot", "claims": "plot", "manifest": "plot"}


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


STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
DONE = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def stage_spans(log: str) -> pd.DataFrame:
    """Per rule of a Snakemake run's output: jobs, first start and last finish (seconds from the
    first job's start), read from the ``[date]`` stamps Snakemake prints before each event."""
    stamp, pending, events = None, None, []
    for line in log.splitlines():
        if m := STAMP.match(line):
            stamp = pd.Timestamp(time.strftime("%Y-%m-%d %H:%M:%S",
                                               time.strptime(m[1], "%a %b %d %H:%M:%S %Y")))
        elif m := START.match(line):
            pending = m[1]
        elif (m := JOBID.match(line)) and pending:
            events.append({"rule": pending, "job": int(m[1]), "start": stamp})
            pending = None
        elif m := DONE.match(line):
            events.append({"rule": m[2], "job": int(m[1]), "end": stamp})
    frame = pd.DataFrame(events)
    t0 = frame["start"].min()
    spans = frame.groupby("rule").agg(jobs=("start", "count"), first=("start", "min"),
                                      last=("end", "max"))
    spans["first"] = (spans["first"] - t0).dt.total_seconds()
    spans["last"] = (spans["last"] - t0).dt.total_seconds()
    return spans.sort_values("first")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study", nargs="?", default="results/toy")
    parser.add_argument("--log", help="the run's Snakemake output, for each stage's span")
    args = parser.parse_args()
    study = Path(args.study)
    if args.log:
        spans = stage_spans(Path(args.log).read_text())
        print("stage spans (seconds from the first job's start):")
        print(spans.to_string())
        print(f"wall time from first start to last finish: {spans['last'].max():.0f} s\n")
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
