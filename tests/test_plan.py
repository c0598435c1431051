"""The hub study's plan (springback.plan): rows, totals, scaling, adapter sizes and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from springback import plan

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = ROOT / "config" / "config.yaml"
HUB = ROOT / "config" / "hub.yaml"


def hub_plan(tmp_path: Path, override: dict | None = None, **assumptions) -> dict:
    """The plan of config/hub.yaml, with ``override`` as one more config file on top."""
    files = [HUB]
    if override:
        files.append(tmp_path / "override.yaml")
        files[-1].write_text(yaml.safe_dump(override))
    cfg = plan.hub_config(files, DEFAULTS)
    return plan.make_plan(cfg, plan.Assumptions(**assumptions))


def error_line(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as err:
        plan.main([*argv, "--defaults", str(DEFAULTS)])
    return str(err.value)


def test_hub_plan_has_one_row_per_base(tmp_path):
    bases = [b["size"] for b in yaml.safe_load(HUB.read_text())["rebound"]["bases"]]
    p = hub_plan(tmp_path)
    assert [r["base"] for r in p["rows"]] == bases
    # 2 tasks x 2 directions x 3 seeds, one GPU job each (rebound.job: run)
    assert all(r["runs"] == r["jobs"] == 12 for r in p["rows"])
    assert all(r["gpu_hours"] > 0 and r["peak_gb"] > 0 for r in p["rows"])


def test_totals_are_sums_of_rows(tmp_path):
    p = hub_plan(tmp_path)
    for key in plan.SUMMED:
        assert p["totals"][key] == pytest.approx(sum(r[key] for r in p["rows"])), key
    assert p["totals"]["peak_gb"] == max(r["peak_gb"] for r in p["rows"])
    assert p["totals"]["disk_with_judges_gb"] == pytest.approx(
        p["totals"]["disk_gb"] + p["totals"]["judges_gb"])


def test_doubling_seeds_doubles_gpu_hours_and_jobs(tmp_path):
    three = hub_plan(tmp_path)["totals"]
    six = hub_plan(tmp_path, {"rebound": {"seeds": [1, 2, 3, 4, 5, 6]}})["totals"]
    assert six["jobs"] == 2 * three["jobs"]
    assert six["gpu_hours"] == pytest.approx(2 * three["gpu_hours"])
    assert six["hours_per_job"] == pytest.approx(three["hours_per_job"])


def test_slower_training_gpu_lengthens_training_only(tmp_path):
    fast, slow = hub_plan(tmp_path), hub_plan(tmp_path, mfu=0.175)
    run_fast = fast["rows"][0]["per_task"]["sentiment"]["hours"]
    run_slow = slow["rows"][0]["per_task"]["sentiment"]["hours"]
    assert run_slow["train"] > run_fast["train"]
    assert run_slow["eval"] == run_fast["eval"] and run_slow["sample"] == run_fast["sample"]


def test_lora_adapter_of_llama2_7b_by_hand():
    arch = plan.ARCHITECTURES["meta-llama/Llama-2-7b-hf"]
    qkvo = ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert plan.lora_params(arch, 16, qkvo) == 16 * (4096 + 4096) * 4 * 32  # 16.8 M
    assert plan.total_params(arch) == 6_738_415_616  # the published count


@pytest.mark.parametrize("model_id, params", [
    ("google/gemma-2b", 2_506_172_416),  # tied head, one KV head of 256
    ("TinyLlama/TinyLlama-1.1B-intermediate-step-480k-1T", 1_100_048_384),  # 4 KV heads of 64
])
def test_parameter_counts_of_known_architectures(model_id, params):
    assert plan.total_params(plan.ARCHITECTURES[model_id]) == params


def test_kept_lora_checkpoint_is_the_fp32_adapter_plus_tokenizer(tmp_path):
    p = hub_plan(tmp_path)
    row = p["rows"][0]
    arch = plan.ARCHITECTURES[row["id"]]
    one = 4 * 16 * (4096 + 4096) * 4 * 32 + arch.tokenizer_mb * 1e6
    assert row["checkpoints_gb"] == pytest.approx(row["runs"] * row["kept_per_run"] * one / 1e9)


def test_full_fine_tuning_needs_more_disk_and_memory(tmp_path):
    lora = hub_plan(tmp_path)
    cfg = yaml.safe_load(HUB.read_text())
    cfg["rebound"]["adapter"] = {"kind": "full"}  # replaced, not merged (r, alpha would stay)
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(cfg))
    full = plan.make_plan(plan.hub_config([tmp_path / "full.yaml"], DEFAULTS))
    for a, b in zip(lora["rows"], full["rows"]):
        assert b["checkpoints_gb"] > 10 * a["checkpoints_gb"]
        assert b["peak_gb"] > a["peak_gb"]
        assert b["trained_params"] == b["params"]
    assert full["totals"]["gpu_hours"] > lora["totals"]["gpu_hours"]  # 6N instead of 4N


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "plan.json"
    p = plan.main([str(HUB), "--defaults", str(DEFAULTS), "--json", str(out), "--mfu", "0.3"])
    text = capsys.readouterr().out
    assert "ESTIMATE" in text and "--mfu 0.3" in text and "--hbm-tbps 4.8" in text
    assert all(r["base"] in text for r in p["rows"])
    saved = json.loads(out.read_text())
    assert saved["totals"]["gpu_hours"] == pytest.approx(p["totals"]["gpu_hours"])
    assert saved["assumptions"]["mfu"] == 0.3


def test_missing_config_file_is_one_line():
    msg = error_line(["no/such/config.yaml"])
    assert "\n" not in msg and "no/such/config.yaml does not exist" in msg


def test_unknown_model_id_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"hub": {"models": {"llama2_7b": {"id": "acme/unknown-7b"}}}}))
    msg = error_line([str(HUB), str(bad)])
    assert "\n" not in msg and "hub.models.llama2_7b.id" in msg and "acme/unknown-7b" in msg


def test_base_missing_from_hub_models_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"rebound": {"bases": [{"size": "nosuch", "tokens": 1}]}}))
    msg = error_line([str(HUB), str(bad)])
    assert "\n" not in msg and "rebound.bases[0].size" in msg and "nosuch" in msg


def test_toy_config_is_refused_in_one_line():
    msg = error_line([str(DEFAULTS)])
    assert "\n" not in msg and "mode: hub" in msg


def test_lora_keys_merged_under_full_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"rebound": {"adapter": {"kind": "full"}}}))  # r, alpha... stay
    msg = error_line([str(HUB), str(bad)])
    assert "\n" not in msg and "rebound.adapter takes no key" in msg


def test_plan_reads_hub_sizes_not_the_toy_world(tmp_path):
    """Prompts and held-out examples come from hub.sizes; world.* is toy mode's alone."""
    base = hub_plan(tmp_path)["rows"][0]["per_task"]["sentiment"]
    more = hub_plan(tmp_path, {"hub": {"sizes": {"prompts": 400}}})["rows"][0]["per_task"]
    toy = hub_plan(tmp_path, {"world": {"prompts": 400, "task_heldout": 999}})["rows"][0]
    assert more["sentiment"]["sampled_tokens"] == 2 * base["sampled_tokens"]
    assert more["sentiment"]["eval_tokens"] > base["eval_tokens"]
    assert toy["per_task"]["sentiment"] == base


def test_released_pairs_are_planned(tmp_path):
    """A pair is a GPU job per task x seed with two arms perturbed along n_neg (no alignment),
    the reference base held beside the trained arm, and the released model fetched."""
    pairs = {"chat": {"base": {"id": "Qwen/Qwen1.5-0.5B"}, "aligned": {"id": "Qwen/Qwen1.5-0.5B-Chat"},
                      "tasks": ["safety"], "seeds": [1, 2]},
             "other": {"base": {"id": "Qwen/Qwen1.5-4B"}, "aligned": {"id": "Qwen/Qwen1.5-4B-Chat"},
                       "tasks": ["sentiment", "safety"]}}
    without, p = hub_plan(tmp_path), hub_plan(tmp_path, {"pairs": pairs})
    rows = {r["base"]: r for r in p["rows"]}
    chat, other = rows["pair chat"], rows["pair other"]
    assert (chat["jobs"], chat["runs"]) == (2, 4)
    assert other["jobs"] == 2 * 3  # two tasks x the study's three seeds (rebound.seeds)
    hub = yaml.safe_load(HUB.read_text())
    n_neg = hub["rebound"]["n_neg"]
    base = rows[next(b["size"] for b in hub["rebound"]["bases"]
                     if hub["hub"]["models"][b["size"]]["id"] == "Qwen/Qwen1.5-0.5B")]
    per_example = base["per_task"]["safety"]["tokens_per_example"]
    assert chat["train_tokens"] == pytest.approx(4 * max(n_neg) * per_example)
    assert chat["checkpoints_per_run"] == len(n_neg) and chat["kept_per_run"] == 0
    # the reference base beside the trained arm: one more copy of the weights than a run
    assert chat["peak_gb"] > base["per_task"]["safety"]["peak_gb"]
    # the base is a study base already: only the released model is fetched
    assert chat["weights_gb"] == pytest.approx(base["weights_gb"])
    for key in ("jobs", "gpu_hours", "train_tokens"):
        assert p["totals"][key] == pytest.approx(
            without["totals"][key] + chat[key] + other[key]), key
