"""One rebound job at 1 thread, run after run vs all runs as one batched ensemble
(``rebound.ensemble``). The job is a finished study's s base (pretraining seed 0, its last
budget), both tasks and directions, two fine-tuning seeds (8 runs), the study's regime and
evaluation on a reduced grid. Each mode runs in its own 1-thread process; the time spent
evaluating checkpoints (the same work in both modes) is reported apart from the total.

Run after a study: .venv/bin/python benchmarks/rebound_ensemble.py [results/toy] [repeats] [grid]
(grid: JSON overriding n_pos, n_neg, text_at, seeds). The machine may be shared: compare figures of one invocation, and repeat if noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_POS, N_NEG, TEXT_AT, SEEDS = [80, 160], [0, 16, 32, 64, 96], [0, 96], [1, 2]

RUN = """
import json, sys, time, torch
torch.set_num_threads(1)
from pathlib import Path
sys.path.insert(0, "benchmarks")
from layout import world_files
from springback import runs
from springback.config import load
from springback.pipeline import rebound as R
cfg = load()
root, out, ensemble = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
grid = json.loads(sys.argv[4])
base = sorted((root / "base" / "main" / "s" / "pseed-0").glob("tokens-*"), key=lambda p: int(p.name[7:]))[-1]
spent = [0.0]
call = runs.Recorder.__call__
def timed(self, model, key):
    start = time.perf_counter()
    call(self, model, key)
    spent[0] += time.perf_counter() - start
runs.Recorder.__call__ = timed
start = time.perf_counter()
R.rebound(base_dir=base, files=world_files(root), tasks=["sentiment", "safety"],
          directions=["forward", "reversed"], seeds=grid["seeds"], n_pos=grid["n_pos"],
          n_neg=grid["n_neg"], train={k: cfg["rebound"][k] for k in ("lr", "batch_size", "loss")},
          eval_cfg={**cfg["evaluate"], "text_at": grid["text_at"]},
          keep="none", out_metrics=out / "m.csv", out_prompts=out / "p.parquet",
          out_documents=out / "d.parquet", out_models=out / "models", ensemble=ensemble)
print(json.dumps({"wall": time.perf_counter() - start, "eval": spent[0], "base": str(base)}))
"""


def job(study: Path, ensemble: bool, grid: dict) -> dict:
    """Seconds of one rebound job in a fresh 1-thread process (imports and loading excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        env_threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-c", RUN, str(study), tmp, str(int(ensemble)),
                               json.dumps(grid)], capture_output=True, text=True, check=True,
                              env={**__import__("os").environ, **env_threads})
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    study = Path(sys.argv[1] if len(sys.argv) > 1 else "results/toy")
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    grid = {"n_pos": N_POS, "n_neg": N_NEG, "text_at": TEXT_AT, "seeds": SEEDS}
    grid |= json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    print(f"{2 * 2 * len(grid['seeds'])} runs, n_pos {grid['n_pos']}, n_neg {grid['n_neg']}, "
          f"text_at {grid['text_at']}, 1 thread")
    for r in range(repeats):
        seq, ens = job(study, False, grid), job(study, True, grid)
        if r == 0:
            print(f"base: {seq['base']}")
        for name, t in (("run after run", seq), ("ensemble", ens)):
            print(f"  {name:13s}: {t['wall']:6.1f} s total, {t['eval']:6.1f} s evaluating, "
                  f"{t['wall'] - t['eval']:6.1f} s training and the rest")
        print(f"  speed-up: job {seq['wall'] / ens['wall']:.2f}x, training "
              f"{(seq['wall'] - seq['eval']) / (ens['wall'] - ens['eval']):.2f}x")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s in all)")
