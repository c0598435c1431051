"""Bad input fails loudly and harmlessly: a one-line error naming the culprit (key, file or path),
a non-zero exit, and no result that existed before modified.

Config errors are checked by dry runs of a temporary copy of the workflow (cheap); job-time errors
by real jobs of the smoke study that fail on their first read of a corrupt input.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

from smoke import ENV, SNAKEMAKE, copy_runnable, copy_workflow  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
ARCH = {"hidden": 48, "layers": 2, "heads": 2, "intermediate": 96}


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (a file itself, if ``root`` is one)."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def assert_unmodified(before: dict[str, str], root: Path) -> None:
    after = digest(root)
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert not changed, f"pre-existing result files modified or removed: {changed[:5]}"


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("springback: ")]


def assert_names(line: str, culprits: tuple[str, ...]) -> None:
    for culprit in culprits:
        assert culprit in line, f"{culprit!r} not named in: {line}"


# ===================================================================== config errors (dry runs)


def put(dotted: str, value) -> Callable[[dict], None]:
    """A config edit: set the (dotted) key to value."""

    def edit(cfg: dict) -> None:
        *parents, last = dotted.split(".")
        node = cfg
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def edits(*steps: Callable[[dict], None]) -> Callable[[dict], None]:
    return lambda cfg: [step(cfg) for step in steps]


CONFIG_CASES = {
    "unknown top-level key": (put("colour", "blue"), ("colour",)),
    "unknown nested key": (put("world.n_films", 3), ("world", "n_films")),
    "wrong type (string for an integer)": (put("world.task_pool", "many"), ("world.task_pool",)),
    "negative size": (put("models.s.hidden", -48), ("models.s.hidden",)),
    "zero batch size": (put("rebound.batch_size", 0), ("rebound.batch_size",)),
    "probability above 1": (put("world.cue_fidelity", 1.5), ("world.cue_fidelity",)),
    "n_neg not increasing": (put("rebound.n_neg", [0, 16, 8, 40]), ("rebound.n_neg",)),
    "n_neg not starting at 0": (edits(put("rebound.n_neg", [8, 16, 24, 40]),
                                      put("evaluate.text_at", [16, 40])), ("rebound.n_neg",)),
    "n_neg not a multiple of the batch size": (put("rebound.n_neg", [0, 8, 12, 16, 40]),
                                               ("rebound.n_neg", "12", "rebound.batch_size")),
    "n_pos not a multiple of the batch size": (put("rebound.n_pos", [20, 40]),
                                               ("rebound.n_pos", "20", "rebound.batch_size")),
    "n_pos beyond task_pool": (put("rebound.n_pos", [24, 400]), ("rebound.n_pos", "task_pool")),
    "text_at off the n_neg grid": (put("evaluate.text_at", [0, 20]),
                                   ("evaluate.text_at", "20", "rebound.n_neg")),
    "unknown task": (put("rebound.tasks", ["sentiment", "humour"]), ("rebound.tasks", "humour")),
    "unknown direction": (put("rebound.directions", ["sideways"]),
                          ("rebound.directions", "sideways")),
    "unknown loss": (put("rebound.loss", "everything"), ("rebound.loss", "everything")),
    "base size not in pretrain.sizes": (put("rebound.bases", [{"size": "l", "tokens": 0}]),
                                        ("rebound.bases[0].size", "'l'")),
    "base tokens not on the ladder": (put("rebound.bases", [{"size": "s", "tokens": 12345}]),
                                      ("rebound.bases[0].tokens", "12345")),
    "mitigation on a rebound base": (put("mitigation.tokens", 60000),
                                     ("mitigation.tokens", "s @ 60000")),
    "unknown base role": (put("rebound.bases", [{"size": "s", "tokens": 0, "role": "decoy"}]),
                          ("rebound.bases.0.role", "decoy")),
    "no main base": (put("rebound.bases", [{"size": "s", "tokens": 0, "role": "random_init"}]),
                     ("rebound.bases", "role main")),
    "control role used twice": (put("rebound.bases", [
        {"size": "s", "tokens": 60000}, {"size": "s", "tokens": 0, "role": "random_init"},
        {"size": "s", "tokens": 30000, "role": "random_init"}]),
        ("rebound.bases[1].role", "'random_init'", "twice")),
    "mirror base without mirror seeds": (put("worlds.mirror.seeds", []),
                                         ("rebound.bases[3].world", "worlds.mirror.seeds")),
    "world prior not a number": (put("worlds.prior1", {"seeds": [0], "prior": "high"}),
                                 ("worlds.prior1.prior", "high")),
    "world with an unknown key": (put("worlds.prior1", {"seeds": [0], "shift": 1.0}),
                                  ("worlds.prior1", "shift")),
    "world named like a task folder": (put("worlds.safety", {"seeds": [0], "prior": 1.0}),
                                       ("worlds.safety", "reserved")),
    "control lr for an unknown role": (put("rebound.control_lr", {"decoy": {"s": 0.001}}),
                                       ("rebound.control_lr", "decoy")),
    "empty pretraining seeds": (put("pretrain.seeds", []), ("pretrain.seeds",)),
    "heads not dividing hidden": (put("models.s.heads", 5), ("models.s.heads", "models.s.hidden")),
    "size without a token budget": (edits(put("models.t", ARCH), put("pretrain.sizes", ["s", "t"])),
                                    ("pretrain.tokens", "'t'")),
    "empty seeds list": (put("rebound.seeds", []), ("rebound.seeds",)),
    "bad study name (slash)": (put("study", "smoke/../../etc"), ("study",)),
    "unknown model size in pretrain.sizes": (put("pretrain.sizes", ["s", "zz"]),
                                             ("pretrain.sizes", "'zz'")),
    "all-zero genre mix": (put("world.genre_mix", {"prose": 0, "review": 0, "dialogue": 0,
                                                   "instruction": 0}), ("world.genre_mix",)),
    "negative token budget": (put("pretrain.tokens.s", -1), ("pretrain.tokens.s",)),
    "zero n_pos": (put("rebound.n_pos", [0, 16]), ("rebound.n_pos",)),
    "zero temperature": (put("evaluate.temperature", 0), ("evaluate.temperature",)),
    "band past half the lift": (put("claims.band", 0.6), ("claims.band",)),
    "unknown claims metric": (put("claims.metric", "vibes"), ("claims.metric", "vibes")),
    "model name with a dash": (put("models", {"s-1": ARCH}), ("models", "s-1")),
    "released pair in toy mode": (put("pairs", {"chat": {"base": {"id": "org/b"}, "aligned": {
        "id": "org/b-chat"}, "tasks": ["safety"]}}), ("config key pairs:", "chat", "hub mode")),
    "released pair without its aligned model": (put("pairs", {"chat": {
        "base": {"id": "org/b"}, "tasks": ["safety"]}}), ("pairs.chat", "aligned")),
}


@pytest.fixture(scope="module")
def dry_workdir(tmp_path_factory) -> Path:
    """A workflow copy with a finished-looking results folder (that no dry run may touch)."""
    workdir = copy_runnable(tmp_path_factory.mktemp("dry"))
    results = workdir / "results" / "smoke"
    (results / "tables").mkdir(parents=True)
    (results / "claims.csv").write_text("claim,value\nC2,0.5\n")
    (results / "tables" / "checkpoints.csv").write_text("task,score\nsentiment,0.5\n")
    return workdir


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_stops_with_one_line(case, dry_workdir, tmp_path):
    edit, culprits = CONFIG_CASES[case]
    cfg = copy.deepcopy(SMOKE)
    edit(cfg)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    before = digest(dry_workdir / "results")
    proc = subprocess.run([SNAKEMAKE, "-n", "--cores", "2", "--configfile", str(bad)],
                          cwd=dry_workdir, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("springback: config key"), lines[0]
    assert_names(lines[0], culprits)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert_unmodified(before, dry_workdir / "results")


def test_results_path_that_is_a_file_stops_the_run(tmp_path):
    workdir = copy_runnable(tmp_path / "wf")
    (workdir / "results").mkdir()
    (workdir / "results" / "smoke").write_text("not a folder\n")
    before = digest(workdir / "results")
    proc = subprocess.run([SNAKEMAKE, "--cores", "1", "--configfile", "config/smoke.yaml"],
                          cwd=workdir, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    assert_names(lines[0], ("results/smoke", "is a file"))
    assert_unmodified(before, workdir / "results")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: permission bits do not stop writes (the results "
                           "path that is a file covers an unusable results folder)")
def test_read_only_results_folder_stops_the_run(tmp_path):
    workdir = copy_runnable(tmp_path / "wf")
    results = workdir / "results" / "smoke"
    results.mkdir(parents=True)
    (results / "claims.csv").write_text("claim\n")
    before = digest(workdir / "results")
    results.chmod(0o555)
    try:
        proc = subprocess.run([SNAKEMAKE, "--cores", "1", "--configfile", "config/smoke.yaml"],
                              cwd=workdir, env=ENV, capture_output=True, text=True, timeout=120)
    finally:
        results.chmod(0o755)
    assert proc.returncode != 0
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    assert_names(lines[0], ("results/smoke", "not writable"))
    assert_unmodified(before, workdir / "results")


# ============================================================ job-time errors (real smoke jobs)


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """The smoke study's world, tokenizer and the pretraining ladder of the main world's first
    seed (no fine-tuning yet): everything the rebound job of its random-init base reads."""
    workdir = copy_runnable(tmp_path_factory.mktemp("staged"))
    proc = subprocess.run([SNAKEMAKE, PRETRAIN, "--cores", "2", "--configfile",
                           "config/smoke.yaml"], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not what it claims to be\n" * 4)


def drop_column(column: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        import pandas as pd

        pd.read_parquet(path).drop(columns=[column]).to_parquet(path)

    return edit


def bin_only(model_dir: Path) -> None:
    (model_dir / "model.safetensors").unlink()
    (model_dir / "pytorch_model.bin").write_bytes(b"\x80\x02pickled weights")


WORLD = "results/smoke/world"
PRETRAIN = "results/smoke/base/main/s/pseed-0"
BASE0 = f"{PRETRAIN}/tokens-0"
TOKENIZER = "results/smoke/tokenizer"
REBOUND = "results/smoke/rebound/main/s/pseed-0/tokens-0/metrics.csv"  # the random-init base
REBOUND_LOG = "rebound/main/s/pseed-0/tokens-0.log"
JOB_CASES = {
    # case: (file or folder to break, how, target, log of the failing job, culprits named)
    "corrupt world table": (f"{WORLD}/pretrain.parquet", garbage, TOKENIZER, "tokenizer.log",
                            ("ValueError", f"{WORLD}/pretrain.parquet", "not a readable parquet")),
    "world table missing a column": (f"{WORLD}/pretrain.parquet", drop_column("text"), TOKENIZER,
                                     "tokenizer.log", (f"{WORLD}/pretrain.parquet", "'text'")),
    "task table missing a column": (f"{WORLD}/sentiment/align.parquet", drop_column("completion"),
                                    REBOUND, REBOUND_LOG,
                                    (f"{WORLD}/sentiment/align.parquet", "'completion'")),
    "corrupt base weights": (f"{BASE0}/model.safetensors", garbage, REBOUND, REBOUND_LOG,
                             ("ValueError", f"model weights {BASE0}/model.safetensors",
                              "unreadable")),
    "base without safetensors": (BASE0, bin_only, REBOUND, REBOUND_LOG,
                                 ("FileNotFoundError", BASE0, "pytorch_model.bin",
                                  "safetensors only")),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(JOB_CASES))
def test_bad_input_fails_its_job_with_one_line(case, staged, tmp_path):
    culprit, breaks, target, log, names = JOB_CASES[case]
    workdir = tmp_path / "wf"
    shutil.copytree(staged, workdir, symlinks=True)
    if target == TOKENIZER:  # the first job that reads the world: undo it (output, log, benchmark)
        shutil.rmtree(workdir / TOKENIZER)
        for made in ("logs/tokenizer.log", "benchmarks/tokenizer.tsv"):
            (workdir / "results" / "smoke" / made).unlink()
    breaks(workdir / culprit)
    results = workdir / "results"
    before = digest(results)
    proc = subprocess.run([SNAKEMAKE, target, "--cores", "1", "--configfile", "config/smoke.yaml"],
                          cwd=workdir, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert f"localrule {target.split('/')[2]}:" in proc.stderr, "the wrong job ran"
    log_lines = (results / "smoke" / "logs" / log).read_text().splitlines()
    assert log_lines and log_lines[-1].startswith("springback: error: "), log_lines[-20:]
    assert_names(log_lines[-1], names)
    assert log_lines[-1] in error_lines(proc.stderr), "the error line is not on the console"
    assert_unmodified(before, results)


# ====================================================== load_model on bad model directories


LOADER = """\
import sys
from springback.runtime import start
start(sys.argv[1])
from springback.models import load_model
load_model(sys.argv[2])
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from springback import models

    model = models.build_llama(32, hidden=8, layers=1, heads=2, intermediate=16, context=16,
                               seed=0, bos_id=1, eos_id=2, pad_id=0)
    path = tmp_path_factory.mktemp("model") / "tokens-0"
    models.save_model(model, path, {"seed": 0})
    return path


def missing(model_dir: Path) -> None:
    shutil.rmtree(model_dir)


def truncated(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])


MODEL_CASES = {
    "missing model directory": (missing, ("FileNotFoundError", "model directory",
                                          "does not exist")),
    "corrupt model.safetensors": (lambda d: garbage(d / "model.safetensors"),
                                  ("ValueError", "model weights", "model.safetensors",
                                   "unreadable")),
    "truncated model.safetensors": (truncated, ("ValueError", "model.safetensors", "unreadable")),
    "only pytorch_model.bin": (bin_only, ("FileNotFoundError", "pytorch_model.bin",
                                          "safetensors only")),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_load_model_refuses_bad_directories(case, tiny_model, tmp_path):
    breaks, names = MODEL_CASES[case]
    model_dir = tmp_path / "results" / "m" / "tokens-0"
    shutil.copytree(tiny_model, model_dir)
    breaks(model_dir)
    before = digest(tmp_path / "results")
    script, log = tmp_path / "load.py", tmp_path / "load.log"
    script.write_text(LOADER)
    proc = subprocess.run([sys.executable, str(script), str(log), str(model_dir)], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = log.read_text().splitlines()[-1]
    assert last.startswith("springback: error: "), last
    assert_names(last, (str(model_dir), *names))
    assert proc.stderr.strip().splitlines()[-1] == last
    assert_unmodified(before, tmp_path / "results")
