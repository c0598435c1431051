"""Reliability of the smoke study: deterministic, offline, and resumable after a hard kill.

Two runs of the smoke study: the session's shared clean run (conftest.py) and one with the
network blocked in every Python process that is killed (SIGKILL to its whole process group) while
it fine-tunes, then resumed (still offline) with --rerun-incomplete. Both must give byte-identical
tables/checkpoints.csv, tables/prompts.parquet and claims.csv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from smoke import ENV, SMOKE, copy_runnable, run_smoke

OUTPUTS = ("tables/checkpoints.csv", "tables/prompts.parquet", "claims.csv")

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


def outputs(workdir: Path) -> dict[str, bytes]:
    return {name: (workdir / "results" / "smoke" / name).read_bytes() for name in OUTPUTS}


def model_dirs(study: Path) -> list[Path]:
    """Every (non-temporary) model directory: the base ladders and the kept rebound checkpoints."""
    found = [*study.glob("base/*/*/pseed-*/tokens-*"), *study.glob("rebound/**/q2-*")]
    return [p for p in found if p.is_dir() and not p.name.startswith(".")]


def incomplete_models(study: Path) -> list[Path]:
    return [p for p in model_dirs(study)
            if not ((p / "model.safetensors").is_file() and (p / "provenance.json").is_file())]


def offline_env(tmp_path_factory) -> tuple[dict, Path]:
    """An environment whose Python processes refuse every socket connection; (env, net log)."""
    site = tmp_path_factory.mktemp("netblock")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    netlog = site / "net.log"
    pythonpath = os.pathsep.join(p for p in (str(site), ENV.get("PYTHONPATH")) if p)
    return {**ENV, "PYTHONPATH": pythonpath, "SPRINGBACK_NETBLOCK_LOG": str(netlog)}, netlog


def wait_for_training(workdir: Path, proc: subprocess.Popen, timeout: float = 900) -> None:
    """Until a rebound job has saved its first kept checkpoint (it is training the next ones)."""
    rebound = workdir / "results" / "smoke" / "rebound"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study ended before a rebound job was seen"
        if rebound.is_dir() and any(rebound.glob("**/q2-*")):
            return
        time.sleep(0.2)
    raise AssertionError("no rebound checkpoint appeared in time")


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
    """The smoke study offline, killed with SIGKILL while fine-tuning, then resumed offline."""
    workdir = copy_runnable(tmp_path_factory.mktemp("killed")).resolve()
    env, netlog = offline_env(tmp_path_factory)
    start = time.monotonic()
    with open(workdir / "killed.out", "w") as out:
        proc = subprocess.Popen(SMOKE, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
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
             "n_models": len(model_dirs(study)), "netlog": netlog}
    resumed = run_smoke(workdir, "--rerun-incomplete", env=env)
    if resumed.returncode != 0 and "cannot be locked" in resumed.stderr:
        state["unlocked"] = True  # SIGKILL leaves Snakemake's lock behind
        unlock = run_smoke(workdir, "--unlock", env=env)
        assert unlock.returncode == 0, unlock.stderr[-2000:]
        resumed = run_smoke(workdir, "--rerun-incomplete", env=env)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    print(f"killed after {killed_after:.0f} s, {state['n_models']} model dirs saved; temporary dirs "
          f"left: {state['temporary']}; stale lock removed with --unlock: {state['unlocked']}")
    return state


@pytest.mark.slow
def test_offline_run_makes_no_connection(killed_run):
    log = killed_run["netlog"].read_text().splitlines()
    loaded = [line for line in log if " loaded " in line]
    assert any("snakemake" in line for line in loaded), "sitecustomize not loaded by Snakemake"
    assert any("rebound.py" in line for line in loaded), "sitecustomize not loaded by the jobs"
    assert not [line for line in log if " blocked " in line], "connections were attempted"


@pytest.mark.slow
def test_kill_leaves_no_half_written_model(killed_run):
    assert not killed_run["survivors"], f"jobs outlived the kill: {killed_run['survivors']}"
    assert not killed_run["incomplete"], f"incomplete model directories: {killed_run['incomplete']}"


@pytest.mark.slow
def test_killed_offline_resumed_run_is_identical_to_a_clean_run(smoke_study, killed_run):
    study = killed_run["workdir"] / "results" / "smoke"
    assert not incomplete_models(study)
    assert not list(study.rglob(".q*")), "temporary model directories left behind"
    resumed, clean = outputs(killed_run["workdir"]), outputs(smoke_study.parents[1])
    for name in OUTPUTS:
        assert resumed[name] == clean[name], f"{name} differs after kill and offline resume"
