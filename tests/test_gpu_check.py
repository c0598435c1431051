"""The GPU check (benchmarks/gpu_check.py, gpu_check.sh) runs end to end on CPU with a tiny model,
so that a lent accelerator's minutes are not spent finding a typo."""

from __future__ import annotations

import json
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


def test_gpu_check_sh_parses():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    proc = subprocess.run([bash, "-n", str(SHELL)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
