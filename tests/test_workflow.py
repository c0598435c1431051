"""Integration: the real DAG on the smoke config (the session's shared smoke study, conftest.py)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from smoke import ENV, ROOT, SNAKEMAKE, copy_workflow  # noqa: F401  (re-exported for other tests)

CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
SMOKE_CONFIG = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())


@pytest.mark.slow
def test_checkpoint_table(smoke_study):
    table = pd.read_csv(smoke_study / "tables" / "checkpoints.csv")
    required = {"role", "task", "world", "size", "pretrain_seed", "pretrain_tokens", "algo",
                "n_pos", "n_neg", "seed", "score", "logodds", "kl_to_base", "bpb_pretrain",
                "bpb_align", "bpb_perturb", "cue_gap", "p_target"}
    assert required <= set(table.columns)
    rebound = table[(table["algo"] == "sft") & (table["pretrain_tokens"] != 45000)]
    # rebound experiment: main + random init + pre-emergence on 2 pretraining seeds, mirror on 1
    # (7 jobs), each 2 tasks x 2 directions x 2 seeds x (1 + 2 n_pos) x 5 n_neg; size, volume and
    # prior add forward-only jobs: xs and m with their random-init twins (1 seed each), s @ 15 k
    # (2), the prior1 world's s @ 60 k (1)
    assert len(rebound) == 7 * 2 * 2 * 2 * 3 * 5 + 7 * 2 * 1 * 2 * 3 * 5
    assert set(rebound["role"]) == {"main", "random_init", "pre_emergence", "mirror"}
    assert rebound["score"].between(0, 1).all()  # the smoke config samples
    text = rebound[rebound["n_neg"].isin([0, 16, 40])]
    assert (text["bpb_pretrain"] > 0).all() and (text["kl_to_base"] >= 0).all()
    assert rebound[~rebound["n_neg"].isin([0, 16, 40])]["kl_to_base"].isna().all()
    base_rows = rebound[(rebound["n_pos"] == 0) & (rebound["n_neg"] == 0)]
    assert (base_rows["kl_to_base"].abs() < 1e-6).all()
    moved = rebound[(rebound["n_pos"] > 0) & (rebound["n_neg"] == 0)]
    assert (moved["kl_to_base"] > 0).all()
    # p_target is the sigmoid of the per-prompt log-odds (checked on the per-prompt table)
    ladder = table[table["algo"] == "none"]
    assert sorted(ladder["pretrain_tokens"].unique()) == [0, 15000, 30000, 45000, 60000]
    # the algorithms experiment: DPO, KTO, SimPO, GRPO on the main base and its random-init twin
    algos = table[table["algo"].isin(["dpo", "kto", "simpo", "grpo"])]
    assert set(algos["algo"]) == {"dpo", "kto", "simpo", "grpo"}
    assert len(algos) == 4 * 2 * 2 * 1 * 3 * 5  # algorithms x bases x pretraining seeds x runs
    assert set(ladder["world"]) == {"main", "mirror", "prior1"}  # prior2 has no seeds in smoke
    # the mitigation experiment: 5 arms on s @ 45 k (2 pretraining seeds), 2 tasks, forward, 1 seed
    arms = table[(table["pretrain_tokens"] == 45000) & (table["algo"] != "none")]
    assert set(arms["algo"]) == {"sft", "replay-0.25", "anchor-0.1", "booster-5", "recovery-0.5"}
    assert len(arms) == 5 * 2 * 2 * 1 * 3 * 5
    # every rebound row records its lr: rebound.control_lr for its role and size, else rebound.lr
    cfg = {**CONFIG["rebound"], **SMOKE_CONFIG["rebound"]}
    expected = [cfg.get("control_lr", {}).get(r, {}).get(s, cfg["lr"])
                for r, s in zip(rebound["role"], rebound["size"])]
    assert np.allclose(rebound["lr"], expected)
    trained = ladder.groupby("pretrain_tokens")["bpb_pretrain"].mean()
    assert trained[60000] < trained[0]


@pytest.mark.slow
def test_prompt_table_has_every_key(smoke_study):
    prompts = pd.read_parquet(smoke_study / "tables" / "prompts.parquet")
    keys = {"role", "task", "size", "pretrain_tokens", "pretrain_seed", "world", "algo",
            "direction", "n_pos", "n_neg", "seed", "prompt", "context", "clean"}
    assert keys | {"logodds", "score", "p_target"} <= set(prompts.columns)
    assert not prompts.duplicated(sorted(keys - {"context", "clean"})).any()
    assert np.allclose(prompts["p_target"], 1 / (1 + np.exp(-prompts["logodds"])), atol=1e-6)
    checkpoints = pd.read_csv(smoke_study / "tables" / "checkpoints.csv")
    assert len(prompts) == (checkpoints["algo"] != "none").sum() * 20


@pytest.mark.slow
def test_claims_recompute_from_the_prompt_table_alone(smoke_study, tmp_path):
    out = tmp_path / "claims.csv"
    proc = subprocess.run([str(Path(SNAKEMAKE).with_name("python")), "-m", "springback.claims",
                           str(smoke_study / "tables"), str(out), "200"],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again, written = pd.read_csv(out), pd.read_csv(smoke_study / "claims.csv")
    pd.testing.assert_frame_equal(again, written)


@pytest.mark.slow
def test_curves_have_intervals(smoke_study):
    curves = pd.read_csv(smoke_study / "tables" / "curves.csv")
    for metric in ("level", "cue_gap", "score"):
        ok = curves.dropna(subset=[f"{metric}_low", f"{metric}_high"])
        assert len(ok) > 0.9 * len(curves), metric
        assert (ok[f"{metric}_low"] <= ok[metric] + 1e-9).all()
        assert (ok[metric] <= ok[f"{metric}_high"] + 1e-9).all()


def study_figures(study: Path) -> dict:
    """Every figure of a finished study rebuilt from its tables, as the figures job builds it."""
    from springback.plots import build_figures

    tables = study / "tables"
    return build_figures(
        checkpoints=pd.read_csv(tables / "checkpoints.csv"),
        curves=pd.read_csv(tables / "curves.csv"),
        elasticity=pd.read_csv(tables / "elasticity.csv"),
        trends=pd.read_csv(tables / "trends.csv"),
        resistance_summary=pd.read_csv(tables / "resistance_summary.csv"),
        theorem=pd.read_csv(tables / "theorem.csv"), claims=pd.read_csv(study / "claims.csv"),
        tasks=TASKS, compression=(pd.read_csv(tables / "compressors.csv"),
                                  pd.read_csv(tables / "rank_frequency.csv")))


TASKS = {**CONFIG["rebound"], **SMOKE_CONFIG["rebound"]}["tasks"]


CONDITION = ["task", "world", "size", "pretrain_tokens", "algo", "direction", "role"]


def interval_columns(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(value, low, high) column triples of a table: value_low / value_high, or the claims
    style value, ci_low, ci_high and difference, diff_ci_low, diff_ci_high."""
    out = [(c[:-4], c, f"{c[:-4]}_high") for c in table if c.endswith("_low")
           and f"{c[:-4]}_high" in table and c[:-4] in table]
    for value, prefix in (("value", "ci"), ("difference", "diff_ci")):
        if {value, f"{prefix}_low", f"{prefix}_high"} <= set(table.columns):
            out.append((value, f"{prefix}_low", f"{prefix}_high"))
    return out


@pytest.mark.slow
def test_tables_hold_their_invariants(smoke_study):
    tables = smoke_study / "tables"
    read = {name: pd.read_csv(tables / name) for name in
            ("checkpoints.csv", "curves.csv", "elasticity.csv", "runs.csv", "regime.csv",
             "trends.csv", "resistance_summary.csv")}
    read["claims.csv"] = pd.read_csv(smoke_study / "claims.csv")
    rebound = read["checkpoints.csv"][read["checkpoints.csv"]["algo"] != "none"]
    curves = read["curves.csv"]
    # curves.csv: one row per condition x n_pos x n_neg, the condition's whole checkpoint grid
    assert not curves.duplicated(CONDITION + ["n_pos", "n_neg"]).any()
    grid = rebound.groupby(CONDITION)[["n_pos", "n_neg"]].nunique().prod(axis=1)
    assert curves.groupby(CONDITION).size().to_dict() == grid.to_dict()
    # elasticity.csv: one row per condition x aligned arm, the conditions and arms of runs.csv,
    # which has one row per run (pretraining seed x fine-tuning seed) x aligned arm
    arm = CONDITION + ["n_pos"]
    assert not read["elasticity.csv"].duplicated(arm).any()
    assert (set(read["elasticity.csv"][arm].itertuples(index=False))
            == set(read["runs.csv"][arm].itertuples(index=False)))
    run = CONDITION + ["pretrain_seed", "seed", "n_pos"]
    aligned = rebound[rebound["n_pos"] > 0].drop_duplicates(run)
    assert len(read["runs.csv"]) == len(aligned) and not read["runs.csv"].duplicated(run).any()
    # regime.csv: one row per base x pretraining seed x task with forward SFT runs
    base = ["role", "task", "world", "size", "pretrain_tokens", "pretrain_seed"]
    forward = rebound[(rebound["algo"] == "sft") & (rebound["direction"] == "forward")]
    assert (sorted(read["regime.csv"][base].itertuples(index=False))
            == sorted(forward[base].drop_duplicates().itertuples(index=False)))
    # every CI is ordered; the CIs of means (curves, resistance summary) hold their value
    for name, table in read.items():
        for value, low, high in interval_columns(table):
            ok = table.dropna(subset=[low, high])
            assert (ok[low] <= ok[high]).all(), (name, value)
            if name in ("curves.csv", "resistance_summary.csv"):
                ok = ok.dropna(subset=[value])
                assert ((ok[low] <= ok[value] + 1e-9) & (ok[value] <= ok[high] + 1e-9)).all(), \
                    (name, value)


@pytest.mark.slow
def test_manifest_lists_every_file_with_its_hash(smoke_study):
    manifest = json.loads((smoke_study / "manifest.json").read_text())["files"]
    files = {str(p.relative_to(smoke_study)) for p in smoke_study.rglob("*") if p.is_file()
             and p.relative_to(smoke_study).parts[0] not in ("logs", "benchmarks")
             and p.name != "manifest.json" and not p.name.startswith(".")}  # Snakemake's marks
    assert set(manifest) == files
    for name, entry in manifest.items():
        data = (smoke_study / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name


@pytest.mark.slow
def test_figures_draw_the_study_tables(smoke_study):
    """Every figure the study declares is written (PNG and PDF) and draws its tables: each line
    of the curve figures is one curve of curves.csv under its panel strip and legend colour,
    one colour per n_pos across figures; the C7 line has claims.csv's k-exponent; the C1,
    C4 and C5 figures draw their tables' points and CIs."""
    from figure_data import built, check_curve_figures, layer_data

    plots = study_figures(smoke_study)
    written = {p.stem for p in (smoke_study / "figures").iterdir()}
    assert {"rebound_sentiment", "cue_gap", "theorem", "resistance"} <= written <= set(plots)
    for name in written:
        assert (smoke_study / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (smoke_study / "figures" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    curves = pd.read_csv(smoke_study / "tables" / "curves.csv")
    check_curve_figures(plots, curves[curves["algo"] == "sft"], TASKS)
    claims = pd.read_csv(smoke_study / "claims.csv")
    k = claims[(claims["claim"] == "C7") & (claims["statistic"] == "k_exponent")]
    line = layer_data(built(plots["theorem"]), "geom_segment")
    drawn = (line["yend"] - line["y"]) / (line["xend"] - line["x"])
    assert np.allclose(sorted(drawn), sorted(k["value"].dropna()), rtol=1e-9)
    summary = pd.read_csv(smoke_study / "tables" / "resistance_summary.csv")
    trends = pd.read_csv(smoke_study / "tables" / "trends.csv")
    for name, table in (("resistance", summary[summary["metric"] == "loss"]),
                        ("size_trend", trends[trends["axis"] == "parameters"]),
                        ("volume_trend", trends[trends["axis"] == "tokens"])):
        drawn = layer_data(built(plots[name]), "geom_pointrange")
        drawn = drawn[np.isfinite(drawn[["y", "ymin", "ymax"]]).all(axis=1)]
        table = table[np.isfinite(table[["value", "ci_low", "ci_high"]]).all(axis=1)]
        assert len(table), name
        for ours, theirs in (("y", "value"), ("ymin", "ci_low"), ("ymax", "ci_high")):
            assert np.allclose(sorted(drawn[ours]), sorted(table[theirs])), name


@pytest.mark.slow
def test_kept_models_are_complete_and_only_those_asked_for(smoke_study):
    kept = [p for p in (smoke_study / "rebound").rglob("q2-*") if p.is_dir()]
    assert kept and {p.name for p in kept} == {"q2-0", "q2-40"}  # smoke keep: [0, 40]
    for path in kept:
        assert (path / "model.safetensors").is_file() and (path / "provenance.json").is_file()
    assert not list(smoke_study.rglob(".q*")), "temporary model directories left behind"


def test_lint():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_of_default_study():
    proc = subprocess.run([SNAKEMAKE, "-n", "--cores", "2"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


CLAIM_COLUMNS = ["claim", "statement", "task", "statistic", "value", "ci_low", "ci_high",
                 "n_runs", "verdict", "control", "control_value", "control_defined", "difference",
                 "diff_ci_low",
                 "diff_ci_high", "attributable"]


def expected_attributable(row) -> str:
    """springback.verdicts.attribution, restated: the rule a reader of claims.csv applies."""
    if row.comparison == "equivalent":
        if np.isnan(row.diff_ci_low):
            return "undetermined"
        return "yes" if -0.25 < row.diff_ci_low and row.diff_ci_high < 0.25 else "no"
    if row.verdict == "undetermined":
        return "undetermined"
    if row.verdict != "supported":
        return "no"
    if np.isnan(row.diff_ci_low):
        return "undetermined"
    return "yes" if row.diff_ci_low > 0 else "no"


@pytest.mark.slow
def test_claims_table(smoke_study):
    claims = pd.read_csv(smoke_study / "claims.csv")
    assert set(CLAIM_COLUMNS) <= set(claims.columns)
    assert {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "E1", "E2", "E3", "M1"} == \
        set(claims["claim"])
    assert set(claims["control"]) == {"random_init", "pre_emergence", "mirror", "none"}
    # one row per claim statistic x task x world x base x control
    assert not claims.duplicated(["claim", "statistic", "task", "world", "size",
                                  "pretrain_tokens", "algo", "control"]).any()
    # the rebound experiment: 5 statistics x 2 tasks x 3 controls on the main base
    main = claims[claims["claim"].isin(["C2", "C3", "C8", "E1", "E2"])
                  & (claims["world"] == "main") & (claims["size"] == "s")
                  & (claims["pretrain_tokens"] == "60000")]
    assert len(main) == 5 * 2 * 3
    assert set(main.loc[main["control"] == "mirror", "comparison"]) == {"exceeds", "equivalent"}
    # C6: the four forward statistics per algorithm, paired with its random-init twin
    c6 = claims[claims["claim"] == "C6"]
    assert len(c6) == 4 * 4 and set(c6["control"]) == {"random_init"}
    assert set(c6["statistic"]) == {"C2:kink_excess", "C3:return_speed_gain",
                                    "E1:stiffness_excess", "E2:recovery"}
    # M1: per arm and task, three statistics paired with plain SFT (no M2: n_neg ends at 40)
    m1 = claims[claims["claim"] == "M1"]
    assert len(m1) == 4 * 2 * 3 and set(m1["pretrain_tokens"]) == {"45000"}
    assert set(m1["statistic"]) == {"recovery", "stiffness_excess", "return_slowdown"}
    assert m1["detail"].str.contains("after alignment D_a").all()
    # E3: the main world against the prior1 world, per task, paired with random init
    e3 = claims[claims["claim"] == "E3"]
    assert len(e3) == 2 and set(e3["world"]) == {"main|prior1"}
    # random init is the same model in every world: its shift is 0 wherever it is defined (the
    # smoke's random-init lifts are too small to place its profile in every replicate)
    assert set(e3["control"]) == {"random_init"}
    assert (e3["control_value"].dropna() == 0).all()
    # C7: per pretrained main base its signs, per task and size the k-exponent and spring ratio
    c7 = claims[claims["claim"] == "C7"]
    assert {"delta_a", "p_falls", "a_moves_more", "k_exponent", "spring_log_ratio"} == \
        set(c7["statistic"])
    # size (C4: 3 slopes per task, paired with the random-init twins), volume (C5: 3 slopes per
    # task, with or without the past-emergence series), resistance (C1: 3 cells, pooled, KL)
    c4 = claims[claims["claim"] == "C4"]
    assert len(c4) == 3 * 2 and set(c4["size"]) == {"xs|s|m"} and set(c4["control"]) == {"random_init"}
    c5 = claims[claims["claim"] == "C5"]
    # every pretrained s base of the main world is a point: the mitigation experiment's 45 k base
    # (its plain-SFT arm) joins the volume experiment's budgets
    assert set(c5["pretrain_tokens"]) == {"15000|30000|45000|60000"} and len(c5) >= 3 * 2
    assert set(c5["control"]) == {"random_init"} and (c5["control_value"].dropna() == 0).all()
    c1 = claims[claims["claim"] == "C1"]
    assert set(c1["statistic"]) == {"loss_gap_1-2", "loss_gap_1-3", "loss_gap_2-3",
                                    "loss_gap_pooled", "kl_gap_pooled"}
    assert set(c1["control"]) == {"random_init"}
    decided = claims.dropna(subset=["ci_low", "ci_high"])
    assert len(decided) > 0
    spring = CONFIG["claims"]["spring_margin"]
    for row in claims.itertuples():  # the verdict and attributable follow the written rules
        if np.isnan(row.ci_low):
            assert row.verdict == "undetermined"
        elif row.statistic != "spring_log_ratio":
            assert row.verdict == ("supported" if row.ci_low > row.null else "refuted"
                                   if row.ci_high < row.null else "inconclusive")
        else:  # an equality: the CI within +-claims.spring_margin of the null
            low, high = row.ci_low - row.null, row.ci_high - row.null
            assert row.verdict == ("supported" if -spring < low and high < spring else "refuted"
                                   if low > spring or high < -spring else "inconclusive")
        if not str(row.detail).startswith("control regime"):
            assert row.attributable == expected_attributable(row), row


@pytest.mark.slow
def test_regime_table_checks_competence_per_base_and_task(smoke_study):
    regime = pd.read_csv(smoke_study / "tables" / "regime.csv")
    for column in ("lr", "departure_move", "plasticity_ratio", "plasticity_matched",
                   "departure_D_t_pct", "align_D_p_pct", "perturb_D_p_pct", "dt_improves",
                   "dp_rise_ok", "competent"):
        assert column in regime.columns
    # every base with forward runs: main (2 seeds), pre-emergence (2), random init (2), mirror
    # (1), the size experiment's xs and m and their random-init twins (1 each), the volume
    # experiment's 15 k budget (2), the prior1 world (1), the mitigation base (2); two tasks each
    assert len(regime) == (2 + 2 + 2 + 1 + 4 + 2 + 1 + 2) * 2
    assert (regime["dt_improves"] == (regime["departure_D_t_pct"] < 0)).all()


def jobs_to_run(workdir: Path, *args: str, env: dict | None = None,
                change: str | None = None) -> set[str]:
    """Rules a dry run would execute (``snakemake -n --quiet rules``), optionally with a config
    change given as YAML text (a second config file, so numbers stay numbers)."""
    extra = []
    if change:
        (workdir / "config" / "change.yaml").write_text(change)
        extra = ["config/change.yaml"]
    cmd = [SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "2", "--configfile",
           "config/smoke.yaml", *extra, *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env or ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line.split() for line in proc.stdout.splitlines()]
    return {w[0] for w in lines if len(w) == 2 and w[1].isdigit() and w[0] not in ("total", "job")}


TRAINING = {"world", "tokenizer", "pretrain", "rebound"}


@pytest.mark.slow
def test_complete_study_has_nothing_to_do(smoke_study):
    assert jobs_to_run(smoke_study.parents[1]) == set()


@pytest.mark.slow
def test_statistics_and_evaluation_changes_retrain_only_what_they_touch(smoke_study):
    workdir = smoke_study.parents[1]
    statistics = jobs_to_run(workdir, change="claims: {band: 0.2}\n")
    assert statistics == {"claims", "figures", "manifest", "all"}
    evaluation = jobs_to_run(workdir, change="evaluate: {max_new_tokens: 5}\n")
    assert "rebound" in evaluation and not evaluation & {"world", "tokenizer", "pretrain"}


def _changed_library(tmp_path: Path, module: str) -> dict:
    library = tmp_path / "src"
    shutil.copytree(ROOT / "src", library, ignore=shutil.ignore_patterns("__pycache__"))
    path = library / "springback" / module
    path.write_text(path.read_text() + "\n# a change\n")
    return {**ENV, "PYTHONPATH": str(library)}


@pytest.mark.slow
@pytest.mark.parametrize("module, rules", [
    ("plots.py", {"figures", "table_figures"}),
    ("claims.py", {"claims", "figures"}),
    # the statistics core is imported by aggregate (tables) and claims: both rerun, and below them
    ("elasticity.py", {"aggregate", "claims", "figures", "table_figures"}),
    # imported (transitively) by every rule that evaluates a model, never by the report rules
    ("evaluate.py", {"rebound", "algorithms", "mitigation", "resistance", "compression",
                     "evaluate_ladder", "aggregate", "claims", "figures", "table_figures"}),
    # the compression tables feed the table figures only
    ("coder.py", {"compression", "table_figures"}),
    ("provenance.py", None),  # imported nearly everywhere: at least the model rules rerun
])
def test_library_change_reruns_only_the_rules_that_import_it(smoke_study, tmp_path, module, rules):
    rerun = jobs_to_run(smoke_study.parents[1], env=_changed_library(tmp_path, module)) - {"all"}
    if rules is None:
        assert {"pretrain", "rebound", "manifest"} <= rerun
    else:
        assert rerun == rules | {"manifest"}


@pytest.mark.slow
def test_report_renders_every_figure_and_the_claims(smoke_study):
    workdir = smoke_study.parents[1]
    report = workdir / "report.html"
    proc = subprocess.run([SNAKEMAKE, "--cores", "1", "--configfile", "config/smoke.yaml",
                           "--report", str(report)], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # docutils prints a caption's problems as "<string>:3: (ERROR/3) Undefined substitution..."
    messages = re.findall(r".*\((?:WARNING|ERROR|SEVERE)/\d\).*", proc.stdout + proc.stderr)
    assert not messages, messages
    html = report.read_text(errors="replace")
    assert "System Message" not in html  # docutils' inline rendering of a caption error
    for name in ["rebound_sentiment", "cue_gap", "kl_rebound", "ladder", "claims.csv",
                 "regime.csv", "size_trend", "volume_trend", "resistance", "theorem",
                 "compressors", "algorithms", "prior_shift", "mitigation",
                 "resistance_summary.csv"]:
        assert name in html, name
