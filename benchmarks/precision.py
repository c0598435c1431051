"""Precision per cost of every knob of a finished study: for each setting of a knob that trades
precision for time, the 95 % CI half-width of every claim statistic it feeds and the job-seconds
the setting would cost the study, measured on the study's own tables by subsampling (nothing is
rerun).

Knobs (each setting a subsample of what the study measured; the full design is its own row;
``source`` says what a row's half-width is: ``claims`` (claims_table), ``elasticity`` (the
KL-rebound statistics), ``document SE`` or ``coder SE`` (document sampling)):
- ``prompts``: evaluation prompts per task (half from each context), a few random subsets each;
- ``n_neg grid``: thinned grids (every k-th point; one half dense, the other thinned; one half
  only), always keeping the first (0) and the last point and the text points (their density is
  the ``text_at`` knob), so a setting saves behaviour checkpoints only; the ``shift`` column is the change of
  the point value in full half-widths (thinning biases an interpolated count, it does not only
  widen it);
- ``text_at``: subsets of the points with bits/byte and KL (0 and the last always kept): the
  claims (C7 reads the first and last point only) and the KL-rebound statistics of
  ``tables.elasticity_table`` (claim ``KL``), which need interior points;
- ``documents``: held-out documents per set, from the rebound jobs' documents.parquet: the claims
  recomputed from a document subsample's bits/byte (the bootstrap resamples seeds and prompts,
  never documents, so its CI cannot see this knob), and the honest measure, the
  document-sampling SE of each run-mean bits/byte change (claim ``documents``; phases align:
  base -> deepest n_pos at n_neg 0, perturb: deepest n_pos from n_neg 0 to the last text point,
  departure: n_pos 0 over the same; one set's documents are shared by every run, so this error
  does not average away over seeds); ``half_width`` = 1.96 SE;
- ``seeds``: pretraining seeds x fine-tuning seeds per pretraining seed (mean half-width over
  every subset of that size; the cost is that of the first seeds);
- ``bootstrap``: replicates; ``half_width`` is the mean over ``--repeats`` bootstrap seeds and
  ``mc_error`` the Monte-Carlo SD of the CI bounds (mean of the SD of ci_low and of ci_high);
- ``coder documents``: documents the compression job's range coder codes, from
  compression/documents.csv (each document's model code length, which the coder's shared stream
  approaches): 1.96 SE of each stage's bits/byte and of the paired stage changes (claim
  ``coder``, condition = the dataset); settings above the coded count are extrapolated
  (SE ~ 1/sqrt(n)).

A half-width is (ci_high - ci_low) / 2 of the effect's CI (``diff_half_width``: of the paired
difference with the control); an infinite or missing CI is NaN, and ``ci_lost`` marks a row
whose CI the full design has and the setting does not.

Every subsampling sweep uses ``--boot`` replicates (default 200, not the study's 1000: the sweeps
run claims_table dozens of times) with bootstrap seed 0, the full design included, so a ratio
compares like with like; the bootstrap knob gives the Monte-Carlo noise of a half-width at that
count. ``width_ratio`` = half_width / the full design's; ``cost_ratio`` = cost / the full
design's; ``precision_per_cost`` = 1 / (width_ratio^2 cost_ratio) (> 1: more precision per
job-second than the full design).

Cost model (fitted to the study's own Snakemake benchmark seconds and log lines; printed with its
constants and written to <out>_cost.csv): a job's seconds = rest + behaviour + text, where
behaviour + text = the evaluation seconds of its log line ``evaluation: N checkpoints (M with
text metrics) in S s[...; text metrics T s]`` and rest (training, start-up) = the remainder. A
log line without the text split takes it from the ratio of seconds per text checkpoint to
seconds per behaviour checkpoint of the jobs that have one (the study's, else those of the
``--documents`` study). A setting scales each part of each
job: prompts and grid points scale behaviour;
text points and documents scale text; a pretraining seed dropped removes its jobs (pretraining,
rebound, algorithms; resistance by its share of runs), a fine-tuning seed scales the runs of
rebound, algorithms and resistance jobs (training and evaluation); bootstrap replicates scale the
claims job by claims_table's own time law a + b B (timed here; without a claims job
benchmark, the full design's cost plus b (B - the study's B)); coder documents scale the range
coder's seconds (from the compression log's ``coded`` lines). Noise: benchmark seconds are wall
seconds of whatever else the machine ran, so cost ratios are only as good as the run was quiet.

A study run before rebound jobs wrote documents.parquet (and the compression job
compression/documents.csv) can take both from another study of the same world and bases
(``--documents``: e.g. those rebound jobs rerun under another study name).

Run after a study: .venv/bin/python benchmarks/precision.py results/toy [--boot 200]
    [--out precision.csv] [--documents STUDY_DIR] [--repeats 5] [--config config/config.yaml]
It writes <out> (every row), <out>_summary.csv (per knob setting), <out>_cost.csv (the cost
model) and <out stem>.md (the summary and the study's own half-widths against the config's
precision targets, as docs/performance.md includes them).
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from springback.config import load

from springback.claims import claims_table, resistance_table
from springback.tables import elasticity_table

ID = ["claim", "task", "world", "size", "pretrain_tokens", "algo", "direction", "statistic",
      "control", "repeat"]  # repeat: the how-many-th row of the same keys (0 but for duplicates)
OUT = ["knob", "setting", "source", "claim", "task", "condition", "statistic", "control", "value",
       "half_width", "diff_half_width", "mc_error", "shift", "width_ratio", "ci_lost",
       "cost_job_seconds",
       "cost_ratio", "precision_per_cost"]
TEXT = re.compile(r"^(bpb|bits|bpbr)_|^kl_to_base$")
EVAL = re.compile(r"evaluation: (\d+) checkpoints \((\d+) with text metrics\) in ([\d.]+) s"
                  r"(?:.*?text metrics ([\d.]+) s)?")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) \S+ (.*)$")
Z95 = 1.96


@dataclass
class Tables:
    """What claims_table reads: per-prompt rows, checkpoint rows, per-run resistance rows."""

    prompts: pd.DataFrame
    checkpoints: pd.DataFrame
    resistance: pd.DataFrame | None


# --- claims and their half-widths ----------------------------------------------------------------

def widths(claims: pd.DataFrame) -> pd.DataFrame:
    """Per claim row (identity columns as strings): value, half-width of the effect's CI and of
    the paired difference's."""
    ids = [c for c in ID if c in claims]
    out = claims[ids].astype(str).reset_index(drop=True)
    out["repeat"] = out.groupby(ids, sort=False).cumcount()
    out["value"] = claims["value"].to_numpy(float)
    for bound in ("ci_low", "ci_high"):
        out[bound] = claims[bound].to_numpy(float)
    out["half_width"] = finite((out["ci_high"] - out["ci_low"]) / 2)
    if {"diff_ci_low", "diff_ci_high"} <= set(claims):
        out["diff_half_width"] = finite((claims["diff_ci_high"] - claims["diff_ci_low"]) / 2)
    return out.assign(source="claims")


def finite(values) -> np.ndarray:
    """Values with +-inf as NaN (an infinite interval is no interval)."""
    values = np.asarray(values, float)
    return np.where(np.isfinite(values), values, np.nan)


def call(fn, *args, **kw):
    """``fn(*args, **kw)`` with only the keywords ``fn`` takes (all of them if it takes
    ``**kwargs``): the study's claims options pass through whatever statistics they tune."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kw = {k: v for k, v in kw.items() if k in params}
    return fn(*args, **kw)


def claim_widths(t: Tables, *, n_boot: int, opts: dict, seed: int = 0) -> pd.DataFrame:
    """``widths`` of claims_table on tables ``t`` (``opts``: the config's claims section)."""
    return widths(call(claims_table, t.prompts, n_boot=n_boot, seed=seed,
                       resistance=t.resistance, checkpoints=t.checkpoints, **opts))


def kl_widths(t: Tables, *, n_boot: int, opts: dict) -> pd.DataFrame:
    """Half-widths of the KL-rebound statistics (elasticity table, main SFT conditions, every
    aligned arm) as claim ``KL`` rows (statistic = name@n_pos)."""
    table = call(elasticity_table, t.prompts, t.checkpoints, n_boot=n_boot, **opts)
    table = table[(table["role"] == "main") & (table["algo"] == "sft")]
    names = [c for c in table if c.startswith("kl_") and {f"{c}_low", f"{c}_high"} <= set(table)]
    rows = [{"source": "elasticity", "claim": "KL", **{k: str(r[k]) for k in ID[1:7]},
             "statistic": f"{n}@{r['n_pos']}", "control": "none", "value": r[n],
             "half_width": (r[f"{n}_high"] - r[f"{n}_low"]) / 2}
            for _, r in table.iterrows() for n in names]
    return pd.DataFrame(rows)


# --- subsamples of the study's tables ------------------------------------------------------------

def prompt_subset(prompts: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """k prompts per task, k/2 drawn from each context, renumbered 0..k-1 within the task."""
    rng = np.random.default_rng(seed)
    first = prompts.drop_duplicates(["task", "prompt"])[["task", "prompt", "context"]]
    keep = [f["prompt"].to_numpy()[rng.permutation(len(f))[: k // 2]]
            for _, f in first.groupby(["task", "context"])]
    chosen = pd.MultiIndex.from_tuples(
        [(t, p) for (t, _), ps in zip(first.groupby(["task", "context"]).groups, keep) for p in ps])
    out = prompts[pd.MultiIndex.from_frame(prompts[["task", "prompt"]]).isin(chosen)].copy()
    out["prompt"] = out.groupby("task")["prompt"].rank(method="dense").astype(int) - 1
    return out


def grid_settings(grid: list[int], keep: list[int] = ()) -> dict[str, list[int]]:
    """Thinned n_neg grids, each keeping the first and last point and the points ``keep`` (the
    text points: their density is the text_at knob), named with their size."""
    ends, mid = {grid[0], grid[-1], *keep}, len(grid) // 2
    early, late = grid[:mid], grid[mid:]
    raw = {"full": grid, "every 2nd": grid[::2], "every 4th": grid[::4], "kept points only": [],
           "early dense, late every 2nd": early + late[::2],
           "early every 2nd, late dense": early[::2] + late,
           "early half only": early, "late half only": late}
    return {f"{name} ({len(set(g) | ends)})": sorted(set(g) | ends) for name, g in raw.items()}


def text_settings(points: list[int]) -> dict[str, list[int]]:
    """Subsets of the text points, each keeping the first and the last."""
    ends = {points[0], points[-1]}
    raw = {"full": points, "every 2nd": points[::2], "first, middle, last":
           [points[len(points) // 2]], "first and last": []}
    return {f"{name} ({len(set(p) | ends)})": sorted(set(p) | ends) for name, p in raw.items()}


def rebound_rows(checkpoints: pd.DataFrame) -> pd.Series:
    return checkpoints["algo"] != "none"


def on_grid(t: Tables, grid: list[int]) -> Tables:
    """The tables with only the n_neg points of ``grid`` (ladder rows kept)."""
    keep = ~rebound_rows(t.checkpoints) | t.checkpoints["n_neg"].isin(grid)
    return replace(t, prompts=t.prompts[t.prompts["n_neg"].isin(grid)],
                   checkpoints=t.checkpoints[keep])


def text_only_at(t: Tables, points: list[int]) -> Tables:
    """The tables with text metrics (bits/byte, KL) only at ``points``."""
    out = t.checkpoints.copy()
    drop = rebound_rows(out) & ~out["n_neg"].isin(points)
    out.loc[drop, [c for c in out if TEXT.match(c)]] = np.nan
    return replace(t, checkpoints=out)


def with_seeds(t: Tables, pseeds, seeds) -> Tables:
    """The tables restricted to pretraining seeds ``pseeds`` and fine-tuning seeds ``seeds``."""
    def pick(frame, runs=True):
        keep = frame["pretrain_seed"].isin(pseeds)
        return frame[keep & (frame["seed"].isin(seeds) if runs else keep)]
    ck = t.checkpoints
    checkpoints = pd.concat([pick(ck[rebound_rows(ck)]), pick(ck[~rebound_rows(ck)], runs=False)])
    res = pick(t.resistance) if t.resistance is not None else None
    return Tables(pick(t.prompts), checkpoints, res)


def text_points(checkpoints: pd.DataFrame) -> list[int]:
    """The n_neg points with bits/byte in the rebound rows."""
    rows = checkpoints[rebound_rows(checkpoints) & checkpoints["bpb_align"].notna()]
    return sorted(rows["n_neg"].unique().tolist())


# --- documents -----------------------------------------------------------------------------------

JOB = re.compile(r"(?P<world>[^/]+)/(?P<size>[^/]+)/pseed-(?P<pseed>\d+)/tokens-(?P<tokens>\d+)")


def read_documents(root: Path) -> pd.DataFrame | None:
    """Every rebound job's documents.parquet under ``root``/rebound, with its base's keys."""
    frames = []
    for path in sorted((root / "rebound").rglob("documents.parquet")):
        m = JOB.search(path.relative_to(root / "rebound").as_posix())
        frames.append(pd.read_parquet(path).assign(
            world=m["world"], size=m["size"], pretrain_seed=int(m["pseed"]),
            pretrain_tokens=int(m["tokens"])))
    return pd.concat(frames, ignore_index=True) if frames else None


RUN = ["world", "size", "pretrain_seed", "pretrain_tokens", "task", "direction", "seed"]


def subsample_bpb(docs: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """bpb_<set> per checkpoint from ``n`` documents per set (the same documents everywhere)."""
    rng = np.random.default_rng(seed)
    chosen = {s: rng.permutation(np.sort(f["document"].unique()))[:n]
              for s, f in docs.groupby("set")}
    sub = docs[[d in chosen[s] for s, d in zip(docs["set"], docs["document"])]]
    sums = sub.groupby(RUN + ["n_pos", "n_neg", "set"])[["bits", "bytes"]].sum()
    bpb = (sums["bits"] / sums["bytes"]).unstack("set")
    return bpb.rename(columns=lambda s: f"bpb_{s}").reset_index()


def with_bpb(t: Tables, bpb: pd.DataFrame) -> Tables:
    """Checkpoint rows with their bits/byte replaced where ``bpb`` has them (SFT rows)."""
    keys = RUN + ["n_pos", "n_neg"]
    out = t.checkpoints.copy()
    sft = out["algo"] == "sft"
    merged = out.loc[sft, keys].merge(bpb, on=keys, how="left")
    for col in [c for c in bpb if c.startswith("bpb_")]:
        new = merged[col].to_numpy()
        old = out.loc[sft, col].to_numpy()
        out.loc[sft, col] = np.where(np.isnan(new) | np.isnan(old), old, new)
    return replace(t, checkpoints=out)


def ratio_se(d: np.ndarray, y: np.ndarray, n: int) -> float:
    """SE of sum(d) / sum(y) over n documents drawn like these (ratio estimator, linearised)."""
    r = d.sum() / y.sum()
    return float(np.std(d - r * y, ddof=1) / (y.mean() * np.sqrt(n)))


def phase_pairs(frame: pd.DataFrame) -> dict[str, tuple[dict, dict]]:
    """(start, end) checkpoints of each phase of a run's text points."""
    deep, last = frame["n_pos"].max(), frame["n_neg"].max()
    return {"align": ({"n_pos": 0, "n_neg": 0}, {"n_pos": deep, "n_neg": 0}),
            "perturb": ({"n_pos": deep, "n_neg": 0}, {"n_pos": deep, "n_neg": last}),
            "departure": ({"n_pos": 0, "n_neg": 0}, {"n_pos": 0, "n_neg": last})}


def document_errors(docs: pd.DataFrame, roles: pd.DataFrame, sizes: list[int]) -> pd.DataFrame:
    """Per condition (SFT), set and phase: the run-mean bits/byte change and 1.96 x its
    document-sampling SE with n documents per set, for every n of ``sizes``."""
    docs = docs.merge(roles, on=["world", "size", "pretrain_seed", "pretrain_tokens"])
    rows = []
    cond = ["role", "task", "world", "size", "pretrain_tokens", "direction"]
    for key, frame in docs.groupby(cond + ["set"]):
        per = frame.set_index(["pretrain_seed", "seed", "n_pos", "n_neg", "document"])
        for phase, (a, b) in phase_pairs(frame).items():
            start = per.xs((a["n_pos"], a["n_neg"]), level=("n_pos", "n_neg"))
            end = per.xs((b["n_pos"], b["n_neg"]), level=("n_pos", "n_neg"))
            d = (end["bits"] - start["bits"]).groupby("document").mean()
            y = start["bytes"].groupby("document").first().loc[d.index]
            for n in sizes:
                rows.append({**dict(zip(cond + ["set"], map(str, key))), "n": n,
                             "statistic": f"{phase}_{key[-1]}", "value": d.sum() / y.sum(),
                             "half_width": Z95 * ratio_se(d.to_numpy(), y.to_numpy(float), n)})
    return pd.DataFrame(rows)


def coder_errors(coder: pd.DataFrame, sizes: list[int]) -> pd.DataFrame:
    """Per dataset: each stage's coded bits/byte and each stage change's, with 1.96 x their
    document-sampling SE at n documents, for every n of ``sizes``."""
    rows = []
    for dataset, frame in coder.groupby("dataset"):
        wide = frame.pivot_table(index="document", columns="stage", values="bits")
        y = frame.groupby("document")["bytes"].first().loc[wide.index].to_numpy(float)
        stages = list(dict.fromkeys(frame["stage"]))
        parts = {s: wide[s].to_numpy() for s in stages}
        parts |= {f"{b}-{a}": wide[b].to_numpy() - wide[a].to_numpy()
                  for a, b in zip(stages, stages[1:])}
        for name, d in parts.items():
            for n in sizes:
                rows.append({"claim": "coder", "task": str(frame["task"].iloc[0]),
                             "world": dataset, "statistic": f"bpb {name}", "n": n,
                             "value": d.sum() / y.sum(), "half_width": Z95 * ratio_se(d, y, n),
                             "extrapolated": n > len(y)})
    return pd.DataFrame(rows)


# --- the cost model ------------------------------------------------------------------------------

def eval_line(log: Path) -> dict:
    """Checkpoints, text checkpoints, evaluation and text seconds of a job's log (NaN: none)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    m = EVAL.findall(text)
    if not m:
        return {}
    n, n_text, s, s_text = m[-1]
    return {"checkpoints": int(n), "text_checkpoints": int(n_text), "eval_s": float(s),
            "text_s": float(s_text) if s_text else np.nan}


def coder_seconds(log: Path) -> float:
    """Range-coder seconds of the compression job: the median gap between consecutive
    ``coded`` log lines (one set coded after another) times the number of coded sets."""
    stamps = []
    for line in log.read_text(errors="replace").splitlines() if log.is_file() else []:
        if (m := STAMP.match(line)) and m[2].startswith("coded "):
            stamps.append(pd.Timestamp(m[1].replace(",", ".")))
    gaps = np.diff([s.timestamp() for s in stamps])
    return float(np.median(gaps[gaps > 0]) * len(stamps)) if len(gaps) else np.nan


def read_jobs(root: Path) -> pd.DataFrame:
    """One row per benchmarked job: stage, base keys, seconds, its evaluation line and (the
    compression job) its range-coder seconds."""
    rows = []
    for tsv in sorted((root / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(root / "benchmarks").with_suffix("")
        m = re.search(r"pseed-(\d+)", rel.as_posix())
        row = {"job": rel.as_posix(), "stage": rel.parts[0],
               "size": rel.parts[2] if len(rel.parts) > 2 else "",
               "pseed": int(m[1]) if m else np.nan,
               "seconds": float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])}
        row |= eval_line(root / "logs" / rel.with_suffix(".log"))
        if row["stage"] == "compression":
            row["coder_s"] = coder_seconds(root / "logs" / "compression.log")
        rows.append(row)
    jobs = pd.DataFrame(rows)
    for col in ("checkpoints", "text_checkpoints", "eval_s", "text_s", "coder_s"):
        jobs[col] = jobs.get(col, np.nan)
    return jobs


def text_ratio(jobs: pd.DataFrame) -> float:
    """Median (s per text checkpoint) / (s per behaviour checkpoint) of the jobs whose log line
    splits the evaluation seconds (NaN: none does)."""
    has = jobs["text_s"].notna() & (jobs["text_checkpoints"] > 0)
    per_text = jobs.loc[has, "text_s"] / jobs.loc[has, "text_checkpoints"]
    per_beh = (jobs.loc[has, "eval_s"] - jobs.loc[has, "text_s"]) / jobs.loc[has, "checkpoints"]
    return float(np.median(per_text / per_beh)) if has.any() else np.nan


def split_evaluation(jobs: pd.DataFrame, rho: float | None = None) -> pd.DataFrame:
    """Behaviour / text / rest seconds per job; a job without the text split gets it from
    ``rho`` (default: ``text_ratio`` of these jobs)."""
    jobs = jobs.copy()
    rho = text_ratio(jobs) if rho is None else rho
    has = jobs["text_s"].notna()
    guess = jobs["eval_s"] * rho * jobs["text_checkpoints"] / (
        jobs["checkpoints"] + rho * jobs["text_checkpoints"])
    jobs["text_s"] = jobs["text_s"].where(has | jobs["eval_s"].isna(), guess)
    jobs["behaviour_s"] = jobs["eval_s"] - jobs["text_s"]
    jobs["rest_s"] = jobs["seconds"] - jobs["eval_s"].fillna(0)
    jobs.attrs["rho"] = rho
    return jobs


def job_cost(jobs: pd.DataFrame, *, behaviour=1.0, text=1.0, rest=None, coder=1.0,
             claims=1.0) -> float:
    """Total job-seconds with each part of every job scaled: ``behaviour`` and ``text`` (floats or
    per-job Series), ``rest`` (per-job Series; default 1), the compression job's range coder
    and the claims job."""
    rest = 1.0 if rest is None else rest
    ev = jobs["behaviour_s"].fillna(0) * behaviour + jobs["text_s"].fillna(0) * text
    other = jobs["rest_s"] * rest
    coded = jobs["coder_s"].fillna(0) * (coder - 1)
    total = ev + other + coded
    total = total.where(jobs["stage"] != "claims", total * claims)
    return float(total.sum())


def seed_scales(jobs: pd.DataFrame, t: Tables, pseeds, seeds) -> pd.Series:
    """Per job: the share of its runs a (pretraining seeds, fine-tuning seeds) design keeps."""
    all_p = sorted(t.prompts["pretrain_seed"].unique())
    job_seeds = {"rebound": t.prompts.loc[t.prompts["algo"] == "sft", "seed"].unique(),
                 "algorithms": t.prompts.loc[t.prompts["algo"] != "sft", "seed"].unique(),
                 "resistance": (t.resistance["seed"].unique() if t.resistance is not None
                                else np.array([]))}
    out = []
    for _, j in jobs.iterrows():
        scale = 0.0 if np.isfinite(j["pseed"]) and j["pseed"] not in pseeds else 1.0
        if j["stage"] == "resistance":
            scale *= len(set(pseeds) & set(all_p)) / len(all_p)
        if j["stage"] in job_seeds and len(job_seeds[j["stage"]]):
            own = set(job_seeds[j["stage"]])
            scale *= len(own & set(seeds)) / len(own)
        out.append(scale)
    return pd.Series(out, index=jobs.index)


def cost_constants(jobs: pd.DataFrame, t: Tables, docs_per_set: float) -> pd.DataFrame:
    """The fitted constants of the cost model, per stage and model size."""
    n_prompts = t.prompts.groupby("task")["prompt"].nunique().mean()
    rows = [{"constant": "rho", "size": "", "value": jobs.attrs["rho"],
             "unit": "s per text checkpoint / s per behaviour checkpoint"}]
    ev = jobs[jobs["eval_s"].notna()]
    for size, f in ev.groupby("size"):
        rows += [{"constant": "behaviour", "size": size, "unit": "s per checkpoint per prompt",
                  "value": f["behaviour_s"].sum() / (f["checkpoints"].sum() * n_prompts)},
                 {"constant": "text", "size": size, "unit": "s per text checkpoint per document",
                  "value": f["text_s"].sum() / (f["text_checkpoints"].sum() * docs_per_set * 3)}]
    for stage, f in jobs.groupby("stage"):
        rows.append({"constant": f"{stage} rest", "size": "", "value": f["rest_s"].sum(),
                     "unit": "job-seconds outside evaluation (training, start-up)"})
    coder = jobs["coder_s"].dropna()
    if len(coder):
        rows.append({"constant": "range coder", "size": "", "value": float(coder.sum()),
                     "unit": "s (compression job)"})
    rows.append({"constant": "study", "size": "", "value": float(jobs["seconds"].sum()),
                 "unit": "job-seconds, every benchmarked job"})
    return pd.DataFrame(rows)


# --- the sweeps ----------------------------------------------------------------------------------

def compare(rows: pd.DataFrame, full: pd.DataFrame, cost: float, full_cost: float) -> pd.DataFrame:
    """Setting rows joined to the full design's: width ratio, value shift, cost columns."""
    keys = [c for c in ID if c in rows and c in full]
    ref = full[keys + ["value", "half_width"]].rename(
        columns={"value": "full_value", "half_width": "full_half_width"})
    out = rows.merge(ref, on=keys, how="left")
    out["half_width"] = finite(out["half_width"])
    out["full_half_width"] = out["full_half_width"].where(out["full_half_width"] > 0)
    out["width_ratio"] = out["half_width"] / out["full_half_width"]
    out["ci_lost"] = out["half_width"].isna() & out["full_half_width"].notna()
    out["shift"] = (out["value"] - out["full_value"]) / out["full_half_width"]
    out["cost_job_seconds"], out["cost_ratio"] = cost, cost / full_cost
    out["precision_per_cost"] = 1 / (out["width_ratio"] ** 2 * out["cost_ratio"])
    return out.drop(columns=["full_value", "full_half_width"])


def mean_widths(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean value and half-widths of the same claim rows over several subsamples."""
    keys = [c for c in ID + ["source"] if c in frames[0]]
    cols = [c for c in ("value", "half_width", "diff_half_width") if c in frames[0]]
    return pd.concat(frames).groupby(keys, dropna=False, sort=False)[cols].mean().reset_index()


def sweep_prompts(t, jobs, full, *, boot, opts, repeats, full_cost) -> list[pd.DataFrame]:
    """A quarter, half and three quarters of the prompts per task (``repeats`` subsets each)."""
    n = int(t.prompts.groupby("task")["prompt"].nunique().min())
    out = []
    for k in sorted({n // 4, n // 2, 3 * n // 4} - {0}):
        subs = [claim_widths(replace(t, prompts=prompt_subset(t.prompts, k, seed=r)),
                             n_boot=boot, opts=opts) for r in range(repeats)]
        cost = job_cost(jobs, behaviour=k / n)
        out.append(compare(mean_widths(subs), full, cost, full_cost).assign(
            knob="prompts", setting=f"{k} per task"))
    return out


def sweep_grid(t, jobs, full, *, boot, opts, full_cost) -> list[pd.DataFrame]:
    """Every thinned n_neg grid of ``grid_settings`` (the text points kept)."""
    grid = sorted(t.prompts["n_neg"].unique().tolist())
    points = text_points(t.checkpoints)
    out = []
    for name, g in grid_settings(grid, keep=points).items():
        rows = full if len(g) == len(grid) else claim_widths(on_grid(t, g), n_boot=boot,
                                                             opts=opts)
        cost = job_cost(jobs, behaviour=len(g) / len(grid))
        out.append(compare(rows, full, cost, full_cost).assign(knob="n_neg grid", setting=name))
    return out


def sweep_text(t, jobs, full, *, boot, opts, full_cost) -> list[pd.DataFrame]:
    """Every subset of ``text_settings``: the claims and the KL-rebound statistics."""
    points, out, ref = text_points(t.checkpoints), [], None
    for name, p in text_settings(points).items():
        sub = text_only_at(t, p)
        rows = pd.concat([claim_widths(sub, n_boot=boot, opts=opts),
                          kl_widths(sub, n_boot=boot, opts=opts)], ignore_index=True)
        ref = rows if ref is None else ref
        cost = job_cost(jobs, text=len(p) / len(points))
        out.append(compare(rows, ref, cost, full_cost).assign(knob="text_at", setting=name))
    return out


def sweep_documents(t, jobs, full, docs, *, boot, opts, full_cost) -> list[pd.DataFrame]:
    """1/8 .. all held-out documents per set: the claims from one document subsample, and the
    document-sampling SE of every run-mean bits/byte change."""
    n = int(docs.groupby("set")["document"].nunique().min())
    sizes = sorted({n // 8, n // 4, n // 2, 3 * n // 4, n} - {0})
    sft = t.checkpoints[t.checkpoints["algo"] == "sft"]
    roles = sft[["world", "size", "pretrain_seed", "pretrain_tokens", "role"]] \
        .drop_duplicates().astype({"size": str})
    errors = document_errors(docs.astype({"size": str}), roles, sizes)
    errors = errors.assign(source="document SE", claim="documents", control="none", algo="sft")
    ref = errors[errors["n"] == n].drop(columns="n")
    out = []
    for k in sizes:
        rows = full if k == n else claim_widths(with_bpb(t, subsample_bpb(docs, k, seed=0)),
                                                n_boot=boot, opts=opts)
        cost = job_cost(jobs, text=k / n)
        se = errors[errors["n"] == k].drop(columns="n")
        name = f"{k} per set"
        out += [compare(rows, full, cost, full_cost).assign(knob="documents", setting=name),
                compare(se, ref, cost, full_cost).assign(knob="documents", setting=name)]
    return out


def sweep_seeds(t, jobs, full, *, boot, opts, full_cost) -> list[pd.DataFrame]:
    """Every (pretraining seeds >= 2) x (fine-tuning seeds >= 1) design, averaged over subsets."""
    pseeds = sorted(t.prompts["pretrain_seed"].unique().tolist())
    seeds = sorted(t.prompts["seed"].unique().tolist())
    out = []
    for n_p, n_f in itertools.product(range(len(pseeds), 1, -1), range(len(seeds), 0, -1)):
        combos = list(itertools.product(itertools.combinations(pseeds, n_p),
                                        itertools.combinations(seeds, n_f)))
        subs = [full] if (n_p, n_f) == (len(pseeds), len(seeds)) else [
            claim_widths(with_seeds(t, p, f), n_boot=boot, opts=opts) for p, f in combos]
        first = seed_scales(jobs, t, pseeds[:n_p], seeds[:n_f])
        cost = job_cost(jobs, behaviour=first, text=first, rest=first)
        out.append(compare(mean_widths(subs), full, cost, full_cost).assign(
            knob="seeds", setting=f"{n_p} pretraining x {n_f} fine-tuning"))
    return out


def sweep_bootstrap(t, jobs, *, opts, repeats, study_boot, full_cost) -> list[pd.DataFrame]:
    """200, 500, 1000, 2000 (and the study's) replicates, ``repeats`` bootstrap seeds each."""
    counts = sorted({200, 500, 1000, 2000, study_boot})
    runs, times = {}, []
    for b, r in itertools.product(counts, range(repeats)):
        start = time.perf_counter()
        runs[b, r] = claim_widths(t, n_boot=b, opts=opts, seed=r)
        times.append((b, time.perf_counter() - start))
    slope, intercept = np.polyfit(*np.array(times).T, 1)
    print(f"claims_table seconds = {intercept:.2f} + {slope * 1000:.2f} per 1000 replicates "
          "(timed here)", file=sys.stderr)
    summary = {}
    for b in counts:
        frames = [runs[b, r] for r in range(repeats)]
        keys = [c for c in ID + ["source"] if c in frames[0]]
        both = pd.concat(frames).groupby(keys, dropna=False, sort=False)
        table = both[["value", "half_width"]].mean()
        table["mc_error"] = (both["ci_low"].std() + both["ci_high"].std()) / 2
        summary[b] = table.reset_index()
    out, timed = [], not (jobs["stage"] == "claims").any()
    if timed:
        print("no claims job benchmark: bootstrap costs use claims_table's time here",
              file=sys.stderr)
    for b in counts:
        law = (intercept + slope * b) / (intercept + slope * study_boot)
        cost = full_cost + slope * (b - study_boot) if timed else job_cost(jobs, claims=law)
        out.append(compare(summary[b], summary[study_boot], cost, full_cost).assign(
            knob="bootstrap", setting=f"{b} replicates"))
    return out


def sweep_coder(coder: pd.DataFrame, jobs, full_cost) -> list[pd.DataFrame]:
    """A quarter of the coded documents to four times as many (beyond: extrapolated)."""
    n = int(coder.groupby(["stage", "dataset"])["document"].nunique().min())
    sizes = sorted({n // 4, n // 2, n, 2 * n, 4 * n} - {0})
    errors = coder_errors(coder, sizes).assign(source="coder SE", control="none")
    ref = errors[errors["n"] == n].drop(columns="n")
    out = []
    for k in sizes:
        rows = errors[errors["n"] == k].drop(columns=["n", "extrapolated"])
        note = " (extrapolated)" if k > n else ""
        out.append(compare(rows, ref.drop(columns="extrapolated"), job_cost(jobs, coder=k / n),
                           full_cost).assign(knob="coder documents", setting=f"{k}{note}"))
    return out


# --- reading, summary, main ----------------------------------------------------------------------

def read_tables(root: Path) -> Tables:
    """The study's per-prompt and checkpoint tables, and its per-run resistance rows (the claims
    job's tables/resistance.csv, else the resistance jobs' own files)."""
    tables, res = root / "tables", root / "tables" / "resistance.csv"
    runs = (pd.read_csv(res) if res.is_file()
            else resistance_table(sorted(map(str, (root / "resistance").rglob("*.csv")))))
    return Tables(pd.read_parquet(tables / "prompts.parquet"),
                  pd.read_csv(tables / "checkpoints.csv"), runs if len(runs) else None)


def finish(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One table in the output's column order; the condition named by its keys."""
    table = pd.concat(frames, ignore_index=True)
    parts = [c for c in ("world", "size", "pretrain_tokens", "algo", "direction") if c in table]
    table["condition"] = [
        "/".join(str(v) for v in row if pd.notna(v) and str(v) not in ("", "nan"))
        for row in table[parts].itertuples(index=False)]
    for col in OUT:
        table[col] = table.get(col, np.nan)
    return table[OUT]


def target_rows(f: pd.DataFrame) -> pd.DataFrame:
    """The rows a claim's precision target is read on: the main world's SFT rows with a CI, or
    all its rows with a CI when it has none there (E3 reads the prior worlds)."""
    f = f[f["half_width"].notna()]
    main = f["condition"].str.startswith("main/") & f["condition"].str.contains("/sft/")
    has_main = main.groupby(f["claim"]).transform("any")
    return f[main | ~has_main]


def targets_met(f: pd.DataFrame, targets: dict) -> str:
    """Whether every row of a claim with a precision target (config ``precision``: claim ->
    largest 95 % CI half-width) that ``target_rows`` reads meets it: "yes", "no (C2 0.12 >
    0.05, ...)", or "" when no row has a target."""
    rows = target_rows(f[f["claim"].isin(targets)])
    if rows.empty:
        return ""
    worst = rows.groupby("claim")["half_width"].max()
    missed = [f"{c} {w:.3g} > {targets[c]:g}" for c, w in worst.items() if w > targets[c]]
    return "no (" + ", ".join(missed) + ")" if missed else "yes"


def summary(table: pd.DataFrame, tolerance: float = 0.10,
            targets: dict | None = None) -> pd.DataFrame:
    """Per knob, setting and source of rows: how many rows, the median and largest width ratio,
    rows whose CI became undefined, the largest value shift, whether every row keeps its CI
    within ``tolerance`` of the full design's width, whether the config's precision targets are
    met, and the cost."""
    def one(f: pd.DataFrame) -> pd.Series:
        r, lost = f["width_ratio"], int(f["ci_lost"].fillna(False).astype(bool).sum())
        return pd.Series({"rows": len(f), "median_ratio": r.median(), "max_ratio": r.max(),
                          "lost_ci": lost, "max_abs_shift": f["shift"].abs().max(),
                          "within": bool((r.dropna() <= 1 + tolerance).all()) and not lost,
                          "targets_met": targets_met(f, targets or {}),
                          "cost_job_seconds": f["cost_job_seconds"].iloc[0],
                          "cost_ratio": f["cost_ratio"].iloc[0]})
    return table.groupby(["knob", "setting", "source"], sort=False).apply(
        one, include_groups=False).reset_index()


def md_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table (numbers to 3 significant figures, NaN empty)."""
    def cell(v):
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (float, np.floating)):
            return "" if not np.isfinite(v) else f"{v:.3g}"
        return str(v)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def full_design(full: pd.DataFrame, targets: dict, main_base: str = "") -> pd.DataFrame:
    """Per claim, the study's own 95 % CI half-widths (at the sweeps' replicates): rows with a
    CI, their median and largest, the largest over the rows its target is read on
    (``target_rows``), and whether that meets the config's target; with
    ``main_base`` (a condition prefix, e.g. "main/s/3000000/sft/"), also the largest over that
    base's rows, the rebound experiment's effect."""
    f = finish([full.assign(knob="study", setting="full")])
    read = target_rows(f)
    rows = []
    for claim, g in f.groupby("claim", sort=True):
        w = g["half_width"].dropna()
        target = targets.get(claim, np.nan)
        worst = read.loc[read["claim"] == claim, "half_width"].max()
        base = g[g["condition"].str.startswith(main_base)]["half_width"].max() \
            if main_base else np.nan
        rows.append({"claim": claim, "rows": len(g), "with CI": len(w),
                     "median half-width": w.median(), "largest": w.max(),
                     "largest, main SFT": worst, "target": target,
                     "met": ("" if not np.isfinite(target) else
                             "yes" if worst <= target else "no"),
                     "largest, main base": base,
                     "met there": ("" if not (np.isfinite(target) and np.isfinite(base)) else
                                   "yes" if base <= target else "no")})
    return pd.DataFrame(rows)


def main_base(cfg: dict) -> str:
    """The condition prefix of the rebound experiment's effect: its first base, main world, SFT."""
    base = cfg["rebound"]["bases"][0]
    return f"{base.get('world', 'main')}/{base['size']}/{base['tokens']}/sft/"


def markdown(brief: pd.DataFrame, design: pd.DataFrame, *, boot: int, full_cost: float) -> str:
    """The two tables docs/performance.md quotes: the study's half-widths per claim against its
    targets, and every knob setting's width ratios and cost."""
    knobs = brief.rename(columns={
        "cost_job_seconds": "job-s", "cost_ratio": "x cost", "median_ratio": "median width x",
        "max_ratio": "largest width x", "lost_ci": "CIs lost", "max_abs_shift": "largest shift",
        "within": "all within 10 %", "targets_met": "targets met"})
    return (f"<!-- written by benchmarks/precision.py; do not edit by hand -->\n\n"
            f"The study's own half-widths ({boot} replicates), per claim:\n\n"
            f"{md_table(design)}\n\nEvery knob setting (full design {full_cost:.0f} "
            f"job-seconds; width x = half-width / the full design's; shift in full "
            f"half-widths):\n\n{md_table(knobs)}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="a finished study folder (results/<study>)")
    parser.add_argument("--boot", type=int, default=200, help="replicates of the sweeps")
    parser.add_argument("--repeats", type=int, default=5,
                        help="prompt subsets per size and bootstrap seeds per count")
    parser.add_argument("--out", type=Path, default=Path("precision.csv"))
    parser.add_argument("--documents", type=Path, default=None,
                        help="study folder whose rebound/**/documents.parquet to read "
                             "(default: the study's own)")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"),
                        help="the study's config (its claims section, evaluate.bootstrap)")
    parser.add_argument("--knobs", nargs="*", default=None, help="only these knobs")
    parser.add_argument("--rows", type=Path, default=None,
                        help="a previous run's <out> of this study: its rows are kept (no sweep "
                             "is rerun) and the summary and markdown rewritten from them")
    args = parser.parse_args()
    if not (args.study / "tables" / "prompts.parquet").is_file():
        raise SystemExit(f"{args.study}/tables/prompts.parquet not found: not a finished study")
    cfg = load(defaults=args.config)
    opts, study_boot = dict(cfg["claims"]), int(cfg["evaluate"]["bootstrap"])
    start = time.perf_counter()
    extra = args.documents or args.study
    t, jobs = read_tables(args.study), read_jobs(args.study)
    rho = text_ratio(jobs)
    jobs = split_evaluation(jobs, rho if np.isfinite(rho) else text_ratio(read_jobs(extra)))
    docs = read_documents(extra)
    coder_path = extra / "compression" / "documents.csv"
    coder = pd.read_csv(coder_path) if coder_path.is_file() else None
    try:
        full = claim_widths(t, n_boot=args.boot, opts=opts)
    except KeyError as err:  # per-run resistance files older than the claims code
        print(f"resistance rows (C1) skipped: claims_table cannot read them ({err!r})",
              file=sys.stderr)
        t = replace(t, resistance=None)
        full = claim_widths(t, n_boot=args.boot, opts=opts)
    full_cost = job_cost(jobs)
    kw = dict(boot=args.boot, opts=opts, full_cost=full_cost)
    knobs = {
        "prompts": lambda: sweep_prompts(t, jobs, full, repeats=args.repeats, **kw),
        "n_neg grid": lambda: sweep_grid(t, jobs, full, **kw),
        "text_at": lambda: sweep_text(t, jobs, full, **kw),
        "documents": lambda: sweep_documents(t, jobs, full, docs, **kw) if docs is not None
        else print("documents: no documents.parquet (rerun the rebound jobs)", file=sys.stderr)
        or [],
        "seeds": lambda: sweep_seeds(t, jobs, full, **kw),
        "bootstrap": lambda: sweep_bootstrap(t, jobs, opts=opts, repeats=args.repeats,
                                             study_boot=study_boot, full_cost=full_cost),
        "coder documents": lambda: sweep_coder(coder, jobs, full_cost) if coder is not None
        else print("coder documents: no compression/documents.csv", file=sys.stderr) or [],
    }
    frames = []
    for name, run in knobs.items():
        if not args.rows and (args.knobs is None or name in args.knobs):
            t0 = time.perf_counter()
            frames += run()
            print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    table = pd.read_csv(args.rows) if args.rows else finish(frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    constants = cost_constants(jobs, t, docs_per_set=(
        docs.groupby("set")["document"].nunique().mean() if docs is not None else np.nan))
    constants.to_csv(args.out.with_name(f"{args.out.stem}_cost.csv"), index=False)
    brief = summary(table, targets=cfg.get("precision") or {})
    brief.to_csv(args.out.with_name(f"{args.out.stem}_summary.csv"), index=False)
    args.out.with_suffix(".md").write_text(markdown(
        brief, full_design(full, cfg.get("precision") or {}, main_base=main_base(cfg)),
        boot=args.boot, full_cost=full_cost))
    with pd.option_context("display.width", 200, "display.max_rows", 200,
                           "display.max_columns", 20):
        print("cost model constants:\n", constants.to_string(index=False))
        print(f"\nper knob setting (full design {full_cost:.0f} job-seconds; width ratios at "
              f"{args.boot} replicates):\n", brief.to_string(index=False))
    print(f"precision.py: {time.perf_counter() - start:.0f} s; rows in {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
