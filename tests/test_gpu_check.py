"""The GPU check (benchmarks/gpu_check.py, gpu_check.sh) runs end to end on CPU with a tiny model,
so that a lent accelerator's minutes are not spent finding a typo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
SHELL = REPO / "benchmarks" / "gpu_check.sh"


def test_gpu_check_tiny_cpu_writes_both_rows(tmp_path):
    pytest.importorskip("peft", reason="the LoRA row needs peft (pip install -e '.[hub]')")
    out = tmp_path / "x.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--steps", "2",
                           "--warmup", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = {r["mode"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"lora", "full"}
    for row in rows.values():
        assert row["tokens_per_s"] > 0
        assert row["mfu"] is None  # no peak on CPU unless --peak-tflops is given
    assert 0 < rows["lora"]["n_lora"] < rows["full"]["n_total"] // 4
    assert rows["lora"]["flops_per_token_model"] < rows["full"]["flops_per_token_model"]
    assert "lora" in proc.stdout and "full" in proc.stdout  # the printed table


STUB_PYTHON = """#!/usr/bin/env bash
# records its arguments, one call a line; exits 3 when an argument equals $FAIL_ON
printf '%s\\n' "$*" >>"$CALLS"
for a in "$@"; do [[ -n ${FAIL_ON:-} && $a == "$FAIL_ON" ]] && exit 3; done
exit 0
"""


def run_sh(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str], Path]:
    """gpu_check.sh in its CPU variant with Python and nvidia-smi stubbed (seconds: no model,
    no study): (the process, the stub's calls, the output folder)."""
    bash = shutil.which("bash")
    if bash is None or shutil.which("timeout") is None:
        pytest.skip("no bash / coreutils timeout")
    stubs, out, calls = tmp_path / "stubs", tmp_path / "out", tmp_path / "calls.txt"
    stubs.mkdir()
    for name, text in (("python", STUB_PYTHON), ("nvidia-smi", "#!/bin/sh\necho stub\n")):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    proc = subprocess.run([bash, str(SHELL)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}",
                                            "PYTHON": str(stubs / "python"), "DEVICE": "cpu",
                                            "OUT": str(out), "CALLS": str(calls), **env})
    return proc, calls.read_text().splitlines() if calls.exists() else [], out


STEPS = ["nvidia-smi", "versions", "gpu_check", "device-tests", "study-smoke", "study-rebound"]


def test_gpu_check_sh_runs_every_step_of_its_cpu_variant(tmp_path):
    proc, calls, out = run_sh(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (out / "summary.txt").read_text().splitlines()
    assert [line.split()[0] for line in summary] == STEPS
    assert all(line.split()[1] == "ok" for line in summary), summary
    for name in ("nvidia-smi.txt", "versions.txt", "gpu_check.log", "device_tests.log",
                 "study_smoke.log", "study_rebound.log"):
        assert (out / name).stat().st_size > 0, name
    # on the CPU the benchmark runs the tiny model; the studies run on the CPU, then are timed
    assert f"benchmarks/gpu_check.py --device cpu --tiny --steps 2 --warmup 1 --out " \
           f"{out}/gpu_check.json" in calls
    assert "-m pytest -q -p no:cacheprovider tests/test_device.py tests/test_fast_paths.py" in calls
    studies = [c for c in calls if c.startswith("-m snakemake")]
    assert len(studies) == 2 and all("toy={device: cpu}" in c for c in studies)
    assert "--configfile config/smoke.yaml --config study=gpu_smoke" in studies[0]
    assert "benchmarks/study_overhead.py results/gpu_rebound" in calls


def test_gpu_check_sh_reports_a_failed_step_and_goes_on(tmp_path):
    proc, calls, out = run_sh(tmp_path, FAIL_ON="pytest")
    assert proc.returncode == 1
    outcome = {line.split()[0]: line.split()[1:3] for line in
               (out / "summary.txt").read_text().splitlines()}
    assert outcome["device-tests"] == ["FAILED", "rc=3"]
    assert outcome["study-rebound"][0] == "ok"  # the later steps still ran
