"""Reliability of the smoke study: deterministic, offline, and resumable after a hard kill.

Three runs of the smoke study in temporary copies of the workflow (session-scoped, shared):
a clean run, a clean run with the network blocked in every Python process, and a run killed
(SIGKILL to its whole process group) while it fine-tunes, then resumed with --rerun-incomplete.
All three must give byte-identical tables/checkpoints.csv and claims.csv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_bad_input import ENV, copy_runnable
from test_workflow import SNAKEMAKE

SMOKE = [SNAKEMAKE, "--cores", "2", "--configfile", "config/smoke.yaml"]
OUTPUTS = ("tables/checkpoints.csv", "claims.csv")
RUN_TIMEOUT = 1800

# Imported by every Python process that has this folder on PYTHONPATH (Snakemake and each of its
# script jobs): records that it was loaded, and refuses (and records) every outgoing connection.
SITECUSTOMIZE = '''\
import os, socket, sys

_LOG = os.environ["SPRINGBACK_NETBLOCK_LOG"]


def _note(line):
    with open(_LOG, "a") as handle:
        handle.write(f"{os.getpid()} {line}\\n")


def _blocked(*args, **kwargs):
    _note(f"blocked {args[1:] if args and isinstance(args[0], socket.socket) else args}")
    raise OSError("network blocked by test")


socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked
socket.create_connection = _blocked
socket.getaddrinfo = _blocked
_note(f"loaded {' '.join(sys.argv[:2])}")
'''


def run_study(workdir: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SMOKE, *extra], cwd=workdir, env=env or ENV, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)


def outputs(workdir: Path) -> dict[str, bytes]:
    return {name: (workdir / "results" / "smoke" / name).read_bytes() for name in OUTPUTS}


def model_dirs(study: Path) -> list[Path]:
    """Every (non-temporary) model directory: base ladder, aligned and perturbed checkpoints."""
    found = [*study.glob("base/*/tokens-*"), *study.glob("align/**/q1-*"),
             *study.glob("perturb/**/q2-*")]
    return [p for p in found if p.is_dir() and not p.name.startswith(".")]


def incomplete_models(study: Path) -> list[Path]:
    return [p for p in model_dirs(study)
            if not ((p / "model.safetensors").is_file() and (p / "provenance.json").is_file())]


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> Path:
    """The smoke study from scratch, uninterrupted."""
    workdir = copy_runnable(tmp_path_factory.mktemp("clean"))
    start = time.monotonic()
    proc = run_study(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"clean smoke run: {time.monotonic() - start:.0f} s")
    return workdir


@pytest.fixture(scope="session")
def offline_run(tmp_path_factory) -> tuple[Path, Path]:
    """The smoke study from scratch with every socket connection refused; (workdir, net log)."""
    workdir = copy_runnable(tmp_path_factory.mktemp("offline"))
    site = tmp_path_factory.mktemp("netblock")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    netlog = site / "net.log"
    pythonpath = os.pathsep.join(p for p in (str(site), ENV.get("PYTHONPATH")) if p)
    env = {**ENV, "PYTHONPATH": pythonpath, "SPRINGBACK_NETBLOCK_LOG": str(netlog)}
    proc = run_study(workdir, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir, netlog


def wait_for_training(workdir: Path, proc: subprocess.Popen, timeout: float = 900) -> None:
    """Until the perturb job has saved its first checkpoint (it is training the next ones)."""
    perturb = workdir / "results" / "smoke" / "perturb"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study ended before a perturb job was seen"
        if perturb.is_dir() and any(perturb.glob("**/q2-*")):
            return
        time.sleep(0.2)
    raise AssertionError("no perturb checkpoint appeared in time")


def processes_in(workdir: Path) -> list[int]:
    """pids of live processes whose working directory is ``workdir``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == workdir:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="session")
def killed_run(tmp_path_factory) -> dict:
    """The smoke study killed with SIGKILL while fine-tuning, then resumed."""
    workdir = copy_runnable(tmp_path_factory.mktemp("killed")).resolve()
    start = time.monotonic()
    with open(workdir / "killed.out", "w") as out:
        proc = subprocess.Popen(SMOKE, cwd=workdir, env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_for_training(workdir, proc)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    killed_after = time.monotonic() - start
    time.sleep(1)
    survivors = processes_in(workdir)
    study = workdir / "results" / "smoke"
    state = {"workdir": workdir, "survivors": survivors, "incomplete": incomplete_models(study),
             "temporary": sorted(p.name for p in study.rglob(".q*")), "unlocked": False,
             "n_models": len(model_dirs(study))}
    resumed = run_study(workdir, "--rerun-incomplete")
    if resumed.returncode != 0 and "cannot be locked" in resumed.stderr:
        state["unlocked"] = True  # SIGKILL leaves Snakemake's lock behind
        unlock = run_study(workdir, "--unlock")
        assert unlock.returncode == 0, unlock.stderr[-2000:]
        resumed = run_study(workdir, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    print(f"killed after {killed_after:.0f} s, {state['n_models']} model dirs saved; temporary dirs "
          f"left: {state['temporary']}; stale lock removed with --unlock: {state['unlocked']}")
    return state


@pytest.mark.slow
def test_offline_run_is_identical_to_a_clean_run(clean_run, offline_run):
    workdir, netlog = offline_run
    log = netlog.read_text().splitlines()
    loaded = [line for line in log if " loaded " in line]
    assert any("snakemake" in line for line in loaded), "sitecustomize not loaded by Snakemake"
    assert any("perturb.py" in line for line in loaded), "sitecustomize not loaded by the jobs"
    assert not [line for line in log if " blocked " in line], "connections were attempted"
    clean, offline = outputs(clean_run), outputs(workdir)
    for name in OUTPUTS:
        assert clean[name] == offline[name], f"{name} differs between two clean runs"


@pytest.mark.slow
def test_kill_leaves_no_half_written_model(killed_run):
    assert not killed_run["survivors"], f"jobs outlived the kill: {killed_run['survivors']}"
    assert not killed_run["incomplete"], f"incomplete model directories: {killed_run['incomplete']}"


@pytest.mark.slow
def test_resume_after_kill_matches_a_clean_run(clean_run, killed_run):
    study = killed_run["workdir"] / "results" / "smoke"
    assert not incomplete_models(study)
    assert not list(study.rglob(".q*")), "temporary model directories left behind"
    resumed, clean = outputs(killed_run["workdir"]), outputs(clean_run)
    for name in OUTPUTS:
        assert resumed[name] == clean[name], f"{name} differs after kill and resume"
