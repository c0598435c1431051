"""Rebound runs per second on 2 cores: one 2-thread process vs two 1-thread processes at once
(why toy model jobs declare one thread). Each process runs one rebound run (sentiment, forward,
one seed, the study's n_pos and n_neg grids and regime) on a finished study's first main base.

Run after a study: .venv/bin/python benchmarks/rebound_threads.py [results/toy]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
from pathlib import Path
sys.path.insert(0, "benchmarks")
from layout import world_files
from springback.config import load
from springback.pipeline.rebound import rebound
cfg = load()
root, out = Path(sys.argv[2]), Path(sys.argv[3])
base = sorted((root / "base" / "main" / "s").glob("pseed-*/tokens-*"), key=lambda p: int(p.name[7:]))[-1]
rebound(base_dir=base, files=world_files(root), tasks=["sentiment"], directions=["forward"],
        seeds=[1], n_pos=cfg["rebound"]["n_pos"], n_neg=cfg["rebound"]["n_neg"],
        train={k: cfg["rebound"][k] for k in ("lr", "batch_size", "loss")},
        eval_cfg=cfg["evaluate"], keep="none", out_metrics=out / "m.csv",
        out_prompts=out / "p.parquet", out_documents=out / "d.parquet", out_models=out / "models")
"""


def run(threads: int, copies: int, study: Path) -> float:
    """Wall seconds for ``copies`` processes of ``threads`` threads each, started together."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / str(i) for i in range(copies)]
        for o in outs:
            o.mkdir()
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", RUN, str(threads), str(study), str(o)])
                 for o in outs]
        assert all(p.wait() == 0 for p in procs)
        return time.perf_counter() - start


def main() -> None:
    study = Path(sys.argv[1] if len(sys.argv) > 1 else "results/toy")
    one = run(2, 1, study)
    two = run(1, 2, study)
    print(f"one 2-thread process: {one:.1f} s per run")
    print(f"two 1-thread processes at once: {two:.1f} s for 2 runs ({two / 2:.1f} s per run)")
    print(f"runs per second, 1-thread pairs vs 2 threads: {one / (two / 2):.2f}x")


if __name__ == "__main__":
    main()
