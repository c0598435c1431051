"""The smoke study killed mid-run and resumed, offline (tests/test_reliability.py), from the
unpacked reproducibility archive when the tree is committed (tests/test_archive.py reads the same
run): one session fixture, ``killed_run``, registered in conftest.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from smoke import ENV, SMOKE, copy_runnable, run_smoke

# What the tests compare: the outputs of the main base's rebound jobs (both pretraining seeds), the
# jobs the kill interrupts; the aggregated tables are functions of such files (the clean smoke run
# checks them), and building only these keeps the second run to world, tokenizer, two pretraining
# and two rebound jobs.
JOBS = [f"rebound/main/s/pseed-{p}/tokens-60000" for p in (0, 1)]
OUTPUTS = [f"{job}/{name}" for job in JOBS for name in ("metrics.csv", "prompts.parquet")]
TARGETS = [f"results/smoke/{name}" for name in OUTPUTS]

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
def killed_run(tmp_path_factory, unpacked_archive) -> dict:
    """The smoke study offline, killed with SIGKILL while fine-tuning, then resumed offline; run
    from the unpacked reproducibility archive (its own src first on the path) when the tree is
    committed, else from a copy of the working tree."""
    env, netlog = offline_env(tmp_path_factory)
    if unpacked_archive is None:
        workdir = copy_runnable(tmp_path_factory.mktemp("killed")).resolve()
    else:
        workdir = unpacked_archive[0].resolve()
        env["PYTHONPATH"] = os.pathsep.join([str(workdir / "src"), env["PYTHONPATH"]])
    start = time.monotonic()
    with open(workdir / "killed.out", "w") as out:
        # targets before the options: --configfile takes every word that follows it
        proc = subprocess.Popen([SMOKE[0], *TARGETS, *SMOKE[1:]], cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
    resumed = run_smoke(workdir, "--rerun-incomplete", *TARGETS, env=env)
    if resumed.returncode != 0 and "cannot be locked" in resumed.stderr:
        state["unlocked"] = True  # SIGKILL leaves Snakemake's lock behind
        unlock = run_smoke(workdir, "--unlock", env=env)
        assert unlock.returncode == 0, unlock.stderr[-2000:]
        resumed = run_smoke(workdir, "--rerun-incomplete", *TARGETS, env=env)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    print(f"killed after {killed_after:.0f} s, {state['n_models']} model dirs saved; temporary dirs "
          f"left: {state['temporary']}; stale lock removed with --unlock: {state['unlocked']}")
    return state
