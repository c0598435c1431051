"""Runs workflows through a real single-node Slurm cluster started by .ci/slurm.sh.

Enabled when running as root on a machine with apt-get (the fixture installs
Slurm + munge with apt and the Snakemake slurm executor plugin with pip), or
when SPRINGBACK_SLURM=1; SPRINGBACK_SLURM=0 always skips. Deselect with
`pytest -m "not slurm"`. The cluster is always stopped at the end of the module
unless SPRINGBACK_SLURM_KEEP=1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM_SH = REPO / ".ci" / "slurm.sh"
PROFILE = REPO / "profiles" / "slurm"
SMOKE_CONFIG = REPO / "config" / "smoke.yaml"
TIMEOUT = int(os.environ.get("SPRINGBACK_SLURM_TEST_TIMEOUT", "600"))  # per snakemake run
SMOKE_TIMEOUT = int(os.environ.get("SPRINGBACK_SLURM_SMOKE_TIMEOUT", "2400"))


def _enabled() -> tuple[bool, str]:
    flag = os.environ.get("SPRINGBACK_SLURM")
    if flag == "0":
        return False, "SPRINGBACK_SLURM=0"
    if flag == "1":
        return True, ""
    if os.geteuid() != 0:
        return False, "needs root to install and start a local Slurm cluster (or set SPRINGBACK_SLURM=1)"
    if shutil.which("apt-get") is None:
        return False, "needs apt-get to install Slurm + munge (or set SPRINGBACK_SLURM=1)"
    return True, ""


_ON, _WHY = _enabled()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not _ON, reason=f"local Slurm tests skipped: {_WHY}"),
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        VENV=sys.prefix,
        SLURM_CONF=str(Path(os.environ.get("SPRINGBACK_SLURM_DIR", "/tmp/springback-slurm")) / "etc" / "slurm.conf"),
    )
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _slurm_sh(cmd: str, timeout: int) -> str:
    p = subprocess.run(
        ["bash", str(SLURM_SH), cmd],
        cwd=REPO,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = p.stdout + p.stderr
    print(out, end="")
    if p.returncode != 0:
        raise RuntimeError(f".ci/slurm.sh {cmd} failed (rc={p.returncode}):\n{out}")
    return out


def run_snakemake(args: list[str], cwd: Path, log: Path, timeout: int = TIMEOUT) -> str:
    """Run snakemake, output to `log`; on timeout stop it with SIGINT (on SIGTERM
    Snakemake waits for running jobs forever), then fail."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    with open(log, "w") as fh:
        fh.write(f"$ cd {cwd} && {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"snakemake timed out after {timeout} s (stopped with SIGINT); log {log}:\n{_tail(log)}")
    text = log.read_text()
    assert rc == 0, f"snakemake failed (rc={rc}); log {log}:\n{_tail(log)}"
    return text


def _tail(log: Path, n: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="module")
def slurm_cluster():
    try:
        _slurm_sh("install", timeout=900)
        _slurm_sh("up", timeout=300)
        yield
    finally:
        if os.environ.get("SPRINGBACK_SLURM_KEEP") != "1":
            _slurm_sh("down", timeout=180)


SNAKEFILE = r"""
rule all:
    input: "gpu.txt"

rule prep:
    output: "prep.txt"
    shell: "echo SLURM_JOB_ID=${{SLURM_JOB_ID:-none}} > {output}"

rule gpu:
    input: "prep.txt"
    output: "gpu.txt"
    resources: gpu=1
    shell:
        "echo SLURM_JOB_ID=${{SLURM_JOB_ID:-none}} > {output}; "
        "echo CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-unset}} >> {output}"
"""


def _vars(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().split())


def test_two_rules_through_sbatch(slurm_cluster, tmp_path, record_property):
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text(SNAKEFILE)
    log = tmp_path / "snakemake.log"
    text = run_snakemake(
        ["--profile", str(PROFILE), "--verbose", "--slurm-keep-successful-logs"],
        cwd=wf,
        log=log,
    )

    # every job went through sbatch ...
    sbatch = [line for line in text.splitlines() if line.startswith("sbatch call:")]
    rules = sorted(re.search(r"--comment (\S+)", line).group(1) for line in sbatch)
    assert rules == ["rule_gpu", "rule_prep"], f"expected one sbatch per rule, got {rules}\n{_tail(log)}"
    for rule in ("rule_prep", "rule_gpu"):
        logs = list((wf / ".snakemake" / "slurm_logs" / rule).glob("*.log"))
        assert logs, f"no Slurm job log under .snakemake/slurm_logs/{rule}"
    # ... and really ran inside a Slurm job
    prep, gpu = _vars(wf / "prep.txt"), _vars(wf / "gpu.txt")
    assert prep["SLURM_JOB_ID"].isdigit() and gpu["SLURM_JOB_ID"].isdigit(), (prep, gpu)
    # the GPU rule was given the (fake) GPU
    assert gpu["CUDA_VISIBLE_DEVICES"] not in ("", "unset"), gpu

    gpu_line = next(line for line in sbatch if "--comment rule_gpu" in line)
    assert re.search(r"\s--gpus=1(\s|$)", gpu_line.split(" --wrap=")[0]), gpu_line
    assert "--gres" not in gpu_line.split(" --wrap=")[0], gpu_line
    record_property("sbatch_gpu_line", gpu_line)
    print(f"\nGPU rule: {gpu_line}")


@pytest.mark.slow
def test_smoke_study_through_slurm(slurm_cluster, smoke_study, tmp_path):
    """The smoke study's rebound experiment on its main base (pretraining seed 0) through
    sbatch gives the same checkpoint rows as the session's local run of the whole smoke study
    (the controls', the other seed's and the other experiments' jobs are the same rules and
    scripts; running them through Slurm too would double the suite's longest test)."""
    import time

    import pandas as pd

    study = "smoke_slurm"
    slurm_logs = REPO / ".snakemake" / "slurm_logs"
    t0 = time.time()
    shutil.rmtree(REPO / "results" / study, ignore_errors=True)
    main_only = tmp_path / "main_only.yaml"
    # one pretraining seed: every rule of the main base still goes through sbatch once
    main_only.write_text("rebound:\n  bases:\n    - {size: s, tokens: 60000}\n"
                         "pretrain:\n  seeds: [0]\n")
    run_snakemake(
        ["--cores", "2", "--profile", "profiles/slurm", "--configfile", "config/smoke.yaml",
         str(main_only), "--config", f"study={study}", "experiments=[rebound]", "--",
         f"results/{study}/tables/checkpoints.csv"],  # the table compared: no claims, figures
        cwd=REPO,
        log=tmp_path / f"{study}.log",
        timeout=SMOKE_TIMEOUT,
    )
    csv = REPO / "results" / study / "tables" / "checkpoints.csv"
    assert csv.exists(), f"{csv} was not produced"
    new_logs = [p for p in slurm_logs.rglob("*.log") if p.stat().st_mtime >= t0] if slurm_logs.exists() else []
    assert new_logs, "the smoke_slurm run left no job log under .snakemake/slurm_logs: nothing went through sbatch"

    def canon(path: Path, name: str) -> "pd.DataFrame":
        df = pd.read_csv(path)
        for col in df.columns[df.dtypes == object]:  # the study name may appear in cells
            df[col] = df[col].map(lambda v: v.replace(name, "<study>") if isinstance(v, str) else v)
        df = df[sorted(df.columns)]
        return df.sort_values(list(df.columns)).reset_index(drop=True)

    a = canon(csv, study)
    b = canon(smoke_study / "tables" / "checkpoints.csv", "smoke")
    keys = ["role", "world", "size", "pretrain_seed", "pretrain_tokens", "algo", "task",
            "direction"]
    assert set(a["algo"]) == {"sft", "none"} and len(a) > 0
    mine = b.merge(a[keys].drop_duplicates(), on=keys)  # the local rows of the same runs
    mine = mine[sorted(mine.columns)].sort_values(list(mine.columns)).reset_index(drop=True)
    assert len(mine) == len(a)
    pd.testing.assert_frame_equal(a, mine, check_exact=False, rtol=1e-6, atol=1e-6)
    shutil.rmtree(REPO / "results" / study, ignore_errors=True)
