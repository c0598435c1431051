"""Hub mode end to end, offline: the real DAG against a fake hub of tiny local models, datasets
in the hub datasets' own schemas, and tiny judge models (tests/fakehub.py); the same study reads
the elasticity report card of a tiny released pair (the fake base and a copy of it fine-tuned
toward positive verdicts)."""

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
            "sizes": {"pool": 10, "heldout": 3, "prompts": 8}, "seed": 0,
            "device": "cpu", "dtype": "float32",
        },
        "rebound": {"tasks": ["sentiment", "safety"],
                    "bases": [{"size": "tiny_a", "tokens": 1000}],
                    "directions": ["forward", "reversed"], "seeds": [1, 2],
                    "n_pos": [4, 8], "n_neg": [0, 2, 4, 8], "batch_size": 2,
                    "job": "run", "ensemble": False},  # one job per run, as on a GPU cluster
        "claims": {"metric": "score"},
        "pairs": {"tiny_chat": {"base": {"id": base}, "aligned": {"id": str(fake["aligned"])},
                                "tasks": ["sentiment"]}},  # seeds: rebound.seeds
        "evaluate": {"max_new_tokens": 4, "bootstrap": 50, "context": 64, "batch_size": 8,
                     "sample": True, "text_at": None},
    }


@pytest.fixture(scope="module")
def hub_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubmode")
    fake = fakehub.write_all(root / "fakehub")
    fake["aligned"] = fakehub.write_aligned_model(root / "fakehub", fake["base"])
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


@pytest.mark.slow
def test_pair_card_reads_the_released_model_against_its_base(hub_study):
    from springback.pairs import STATISTICS

    root = hub_study / "pairs" / "tiny_chat"
    card = pd.read_csv(root / "card.csv")
    assert list(card["statistic"]) == list(STATISTICS)  # every statistic of its one task
    assert (card["task"] == "sentiment").all() and (card["metric"] == "score").all()
    assert card["reading"].str.len().gt(20).all()
    jobs = pd.concat([pd.read_csv(root / "sentiment" / f"seed-{s}" / "metrics.csv")
                      for s in (1, 2)])
    assert len(jobs) == 2 * 2 * 4  # seeds x arms x n_neg
    start = jobs[jobs["n_neg"] == 0].set_index(["aligned", "seed"])
    # the fixture aligned the released model toward positive verdicts: it starts above the base
    assert (start.loc["released", "logodds"] > start.loc["none", "logodds"] + 1.0).all()
    assert (start.loc["none", "kl_to_base"].abs() < 1e-6).all()  # KL is to the pair's base
    assert (start.loc["released", "kl_to_base"] > 0).all()
    curves = pd.read_csv(root / "curves.csv")
    assert set(curves["aligned"]) == {"none", "released"} and len(curves) == 2 * 4
    assert (root / "card.png").stat().st_size > 0 and (root / "card.pdf").stat().st_size > 0
    for model in ("base", "aligned"):
        assert (root / "models" / model / "provenance.json").is_file()


@pytest.mark.slow
def test_pair_card_has_its_report_page(hub_study):
    workdir = hub_study.parent.parent
    proc = subprocess.run([SNAKEMAKE, "--cores", "1", "--configfile", "config/hubtest.yaml",
                           "--report", "report.html"], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    # category Pairs, subcategory the pair: its card and figure, the caption naming the pair
    assert '"Pairs": {"tiny_chat": ["results/hubtest/pairs/tiny_chat/card.csv"' in html
    assert "results/hubtest/pairs/tiny_chat/card.png" in html
    assert "released pair <strong>tiny_chat</strong>" in html


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


@pytest.mark.parametrize("hub, gpu", [({"gpus": 2}, "gpu=2"), ({"device": "cpu"}, "gpu=0")])
def test_hub_jobs_ask_for_hub_gpus_and_none_on_cpu(tmp_path, hub, gpu):
    import yaml

    from test_workflow import ROOT

    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"hub": hub, "rebound": {"bases": [
        {"size": "qwen15_0_5b", "tokens": 3000000000000}]}}))
    proc = subprocess.run([SNAKEMAKE, "-n", "--configfile", "config/hub.yaml", str(extra),
                           "--cores", "4", "--profile", "profiles/slurm", "--workflow-profile",
                           "none"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    jobs = out.split("rule rebound:")[1:]
    assert len(jobs) == 2 * 2 * 3
    for job in jobs:
        resources = next(line for line in job.splitlines() if line.strip().startswith("resources:"))
        assert gpu in resources.replace(",", " ").split(), resources


def test_hub_pairs_example_dry_run_lists_one_gpu_job_per_pair_task_seed(tmp_path):
    from test_workflow import ROOT

    text = (ROOT / "config" / "hub.yaml").read_text()
    example = text[text.index("# pairs:"):].splitlines()  # the commented example, uncommented
    (tmp_path / "pairs.yaml").write_text("\n".join(line[2:] for line in example) + "\n")
    proc = subprocess.run([SNAKEMAKE, "pairs", "-n", "--cores", "4", "--profile", "profiles/slurm",
                           "--workflow-profile", "none", "--configfile", "config/hub.yaml",
                           str(tmp_path / "pairs.yaml")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # 3 pairs (base and aligned fetched), safety x 3 seeds each, no rebound job
    assert out.count("rule fetch_pair:") == 6 and out.count("rule pair_card:") == 3
    assert out.count("rule pair:") == 3 * 3 and "rule rebound:" not in out
    for job in out.split("rule pair:")[1:]:
        resources = next(line for line in job.splitlines() if line.strip().startswith("resources:"))
        assert "gpu=1" in resources.replace(",", " ").split(), resources
