"""The known-answer battery: synthetic per-prompt tables whose answer is known, run through the
command a user runs (``python -m springback.claims``), each case under its own task name so one
run reads them all. Positive cases must be supported; null cases (no pull toward the pretrained
state) must never be."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import known_answers as ka

SUPPORTED = "supported"


def _case(task, curve, **kw):
    return ka.table(curve, task=task, **kw)


def _both(task, curve, **kw):
    return [_case(task, curve, **kw), _case(task, curve, direction="reversed", **kw)]


def _blind(task, **kw):
    return _case(task, ka.context_free(ka.straight()), role="random_init", tokens=0, seed=99, **kw)


def _worlds(task, make, noise=0.05):
    return [_case(task, ka.context_free(make(b)), world=w, seed=i, noise=noise)
            for i, (w, b) in enumerate([("main", 0.0), ("prior1", 1.0), ("prior2", 2.0)])]


@pytest.fixture(scope="module")
def battery(tmp_path_factory) -> pd.DataFrame:
    """claims.csv of every case, computed by the command line from a prompts.parquet."""
    recovered = ka.context_free(ka.kink_at_base(), gap_curve=lambda n, x: np.where(x > 150, 4.0, 0.5))
    frames = [
        *_both("kink", ka.context_free(ka.kink_at_base())), _blind("kink"),
        _case("per_context", ka.per_context_spring()), _blind("per_context"),
        *_worlds("prior_kink", ka.kink_at_base), _blind("prior_kink"),
        _case("recovered", recovered), _blind("recovered"),
        *_both("log_decline", ka.context_free(ka.log_decline())), _blind("log_decline"),
        *_both("symmetric_s", ka.context_free(ka.symmetric_s())), _blind("symmetric_s"),
        *_both("noisy", ka.context_free(ka.single_timescale()), noise=1.0), _blind("noisy"),
        *_both("straight", ka.context_free(ka.straight())),
        _case("zero_recovery", ka.context_free(ka.kink_at_base())),
        _case("context_blind", ka.context_free(ka.kink_at_base(), gap=0.0, erased=0.0)),
        *_worlds("prior_saturation", ka.saturation), _blind("prior_saturation"),
        *_worlds("prior_saturation_noisy", ka.saturation, noise=1.0),
        *_worlds("prior_timescale", ka.single_timescale),
    ]
    tables = tmp_path_factory.mktemp("tables")
    pd.concat(frames, ignore_index=True).to_parquet(tables / "prompts.parquet")
    out = tables / "claims.csv"
    proc = subprocess.run([sys.executable, "-m", "springback.claims", str(tables), str(out), "200"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pd.read_csv(out)


def _verdicts(battery, task, claim):
    rows = battery[(battery["task"] == task) & (battery["claim"] == claim)]
    assert len(rows), f"no {claim} row for {task}"
    return set(rows["verdict"])


POSITIVE = [("kink", "C2"), ("kink", "C8"), ("per_context", "E2"), ("recovered", "E2"),
            ("prior_kink", "E3")]
NULL = [("log_decline", c) for c in ("C2", "C8", "E1", "C3")] + [
    ("symmetric_s", c) for c in ("C2", "C8", "E1", "C3")] + [
    ("noisy", c) for c in ("C2", "C8", "E1", "E2", "C3")] + [
    ("straight", c) for c in ("C2", "C8", "E1", "C3")] + [
    ("kink", "E1"), ("kink", "C3"), ("kink", "E2"), ("zero_recovery", "E2"),
    ("context_blind", "E2"), ("prior_saturation", "E3"), ("prior_saturation_noisy", "E3"),
    ("prior_timescale", "E3")]


@pytest.mark.parametrize("task,claim", POSITIVE)
def test_a_spring_is_supported(battery, task, claim):
    assert _verdicts(battery, task, claim) == {SUPPORTED}


@pytest.mark.parametrize("task,claim", NULL)
def test_a_curve_without_a_spring_is_never_supported(battery, task, claim):
    assert SUPPORTED not in _verdicts(battery, task, claim)


@pytest.mark.parametrize("task", ["kink", "prior_kink"])
def test_a_spring_the_control_lacks_is_attributable(battery, task):
    claim = {"kink": "C2", "prior_kink": "E3"}[task]
    row = battery[(battery["task"] == task) & (battery["claim"] == claim)
                  & (battery["control"] == "random_init")].iloc[0]
    assert row["attributable"] == "yes"
