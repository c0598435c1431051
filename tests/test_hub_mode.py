"""Hub mode end to end, offline: the real DAG against a fake hub of tiny local models, datasets
in the hub datasets' own schemas, and tiny judge models (tests/fakehub.py)."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml

import fakehub
from test_workflow import ENV, SNAKEMAKE, copy_workflow


def hub_config(fake: dict) -> dict:
    base = str(fake["base"])
    return {
        "mode": "hub", "study": "hubtest",
        "hub": {
            "models": {"tiny_a": {"id": base, "tokens": 1000},
                       "tiny_b": {"id": base, "tokens": 2000}},
            "datasets": {
                "sentiment": {"source": {"path": str(fake["imdb"]), "split": "train"},
                              "mapping": {"contexts": ["good", "bad"], "prompt_words": 4,
                                          "completion_words": 8}},
                "safety": {"source": {"path": str(fake["beavertails"]), "split": "30k_train"}},
            },
            "pretrain_text": {"source": str(fake["pretrain_txt"]), "n_docs": 20},
            "judges": {
                "sentiment": {"kind": "classifier", "id": str(fake["classifier"]),
                              "target_label": "POSITIVE",
                              "probe": {"suffix": " overall it was", "target": [" great", " wonderful"],
                                        "contrary": [" awful", " terrible"]}},
                "safety": {"kind": "reward", "id": str(fake["reward"]), "sign": -1.0,
                           "threshold": 0.0,
                           "probe": {"suffix": "", "target": [" sorry"],
                                     "contrary": [" sure", " happy"]}},
            },
            "device": "cpu", "dtype": "float32",
        },
        "world": {"task_pool": 10, "task_heldout": 3, "prompts": 8},
        "rebound": {"tasks": ["sentiment", "safety"],
                    "bases": [{"size": "tiny_a", "tokens": 1000}],
                    "directions": ["forward", "reversed"], "seeds": [1, 2],
                    "n_pos": [4, 8], "n_neg": [0, 2, 4, 8], "batch_size": 2,
                    "job": "run", "ensemble": False},  # one job per run, as on a GPU cluster
        "claims": {"metric": "score", "beyond": 0.05},
        "evaluate": {"max_new_tokens": 4, "bootstrap": 50, "context": 64, "batch_size": 8,
                     "sample": True, "text_at": None},
    }


@pytest.fixture(scope="module")
def hub_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubmode")
    fake = fakehub.write_all(root / "fakehub")
    (root / "wf").mkdir()
    workdir = copy_workflow(root / "wf")
    (workdir / "config" / "hubtest.yaml").write_text(yaml.safe_dump(hub_config(fake)))
    env = {**ENV, "HF_DATASETS_CACHE": str(root / "datasets-cache")}
    proc = subprocess.run([SNAKEMAKE, "--cores", "2", "--configfile", "config/hubtest.yaml"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results" / "hubtest"


@pytest.mark.slow
def test_hub_mode_runs_the_same_dag(hub_study):
    table = pd.read_csv(hub_study / "tables" / "checkpoints.csv")
    rebound = table[table["algo"] == "sft"]
    assert len(rebound) == 2 * 2 * 2 * 3 * 4  # tasks x directions x seeds x (1 + n_pos) x n_neg
    assert rebound["score"].between(0, 1).all()
    # the probes give exact log-odds and a cue gap (context = the review's label / harmfulness)
    assert rebound["p_target"].between(0, 1).all() and rebound["logodds"].notna().all()
    assert rebound["cue_gap"].notna().all()
    assert (rebound["bpb_pretrain"] > 0).all()
    base = rebound[(rebound["n_pos"] == 0) & (rebound["n_neg"] == 0)]
    assert (base["kl_to_base"].abs() < 1e-6).all()
    assert (rebound["world"] == "hub").all() and (rebound["pretrain_seed"] == 0).all()
    ladder = table[table["algo"] == "none"]
    assert sorted(ladder["pretrain_tokens"].unique()) == [1000, 2000]
    base = hub_study / "rebound" / "hub" / "tiny_a" / "pseed-0" / "tokens-1000"
    runs = sorted(p.name for p in base.iterdir() if (p / "metrics.csv").is_file())
    assert len(runs) == 2 * 2 * 2 and "run-sentiment-forward-seed1" in runs  # one job per run
    assert all((base / r / "prompts.parquet").is_file() for r in runs)
    prompts = pd.read_parquet(hub_study / "tables" / "prompts.parquet")
    assert prompts["logodds"].notna().all() and prompts["score"].between(0, 1).all()


@pytest.mark.slow
def test_hub_mode_claims_use_the_judged_score(hub_study):
    claims = pd.read_csv(hub_study / "claims.csv")
    assert {"C2", "C3", "C8"} <= set(claims["claim"])
    assert set(claims["verdict"]) <= {"supported", "refuted", "inconclusive", "undetermined"}
    assert (claims["control"] == "none").all()  # hub mode has no random-init or mirror control
    assert claims["control_value"].isna().all()
    assert (claims["attributable"] == "undetermined").all()  # nothing to attribute against


@pytest.mark.slow
def test_hub_models_carry_provenance(hub_study):
    import json

    base = hub_study / "base" / "hub" / "tiny_a" / "pseed-0" / "tokens-1000"
    prov = json.loads((base / "provenance.json").read_text())
    assert prov["size"] == "tiny_a" and prov["tokens"] == 1000 and prov["n_params"] > 0
    assert (hub_study / "judges" / "safety" / "provenance.json").is_file()


def test_hub_dry_run_lists_the_paper_grid_with_gpus(tmp_path):
    from test_workflow import ROOT

    proc = subprocess.run([SNAKEMAKE, "-n", "--configfile", "config/hub.yaml", "--cores", "4",
                           "--profile", "profiles/slurm", "--workflow-profile", "none"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # one GPU job per run: 8 bases x 2 tasks x 2 directions x 3 fine-tuning seeds
    assert "fetch_base" in out and out.count("rule rebound:") == 8 * 2 * 2 * 3
    for job in out.split("rule rebound:")[1:]:  # the first resources line is the job's own
        resources = next(line for line in job.splitlines() if line.strip().startswith("resources:"))
        assert "gpu=1" in resources.replace(",", " ").split(), resources
