"""The elasticity report card of a released (base, aligned) pair: its statistics on curves whose
answer is known, and the inputs it refuses. The card of a real (tiny) pair, end to end, is in
tests/test_hub_mode.py (it shares the fake-hub study)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

GRID = [0, 10, 20, 30, 40, 60, 80, 100]


def level(n_pos: int, n: float) -> float:
    """Mean log-odds of the known curves: the base departs 2 nats in 20 examples (slope 1/10);
    the released model starts 4 nats above the base, returns at n = 40 (slope 1/10), then falls
    2 nats past it in 40 more (slope 1/20)."""
    if n_pos == 0:
        return -n / 10
    return 4 - n / 10 if n <= 40 else -(n - 40) / 20


def gap(n_pos: int, n: float) -> float:
    """Cue gap: the base's is 2 throughout; the released model's is 0, regained to 1 by the end."""
    return 2.0 if n_pos == 0 else n / 100


def kl(n_pos: int, n: float) -> float:
    """KL to base: the released model's is 1 after alignment and lowest (0.25) at n = 40."""
    return n / 100 if n_pos == 0 else 0.25 + abs(n - 40) / 160 * 3


def synthetic_pair(seeds=(1, 2), prompts=4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-prompt rows, checkpoint rows) of one pair whose prompts split the cue gap evenly."""
    rows, checkpoints = [], []
    context = np.arange(prompts) % 2 == 0
    for seed in seeds:
        for n_pos, aligned in ((0, "none"), (1, "released")):
            key = {"pair": "toy_chat", "task": "sentiment", "direction": "forward", "seed": seed,
                   "aligned": aligned, "n_pos": n_pos}
            for n in GRID:
                lo = level(n_pos, n) + np.where(context, 0.5, -0.5) * gap(n_pos, n)
                rows += [{**key, "n_neg": n, "prompt": i, "context": c, "clean": True,
                          "logodds": v} for i, (c, v) in enumerate(zip(context, lo))]
                checkpoints.append({**key, "n_neg": n, "kl_to_base": kl(n_pos, n),
                                    **dict.fromkeys(["score", "p_target", "bpb_pretrain",
                                                     "bpb_align", "bpb_perturb"], np.nan)})
    return pd.DataFrame(rows), pd.DataFrame(checkpoints)


def test_card_reads_the_known_answer():
    from springback.pairs import STATISTICS, as_conditions, card_table
    from springback.tables import elasticity_table

    prompts, checkpoints = synthetic_pair()
    card = card_table(prompts, checkpoints, n_boot=20).set_index("statistic")
    assert list(card.index) == list(STATISTICS)
    # ... which are every statistic the study's elasticity table reports
    table = elasticity_table(as_conditions(prompts), as_conditions(checkpoints), n_boot=5)
    # (but C3's comparison of two aligned arms: a pair has one)
    assert set(STATISTICS) == {c[:-len("_low")] for c in table.columns
                               if c.endswith("_low")} - {"return_speed_gain"}
    # bands of 0.125 x 4 = 0.5 nats: 5 examples each before the base, 10 after it (K(0) =
    # ln 2, K(+-h) = 0); the departure crosses each band in 5 (R(0) = R(h) = ln 2)
    expected = {"base_level": 0.0, "lift": 4.0, "return_count": 40.0, "return_rate": 0.1,
                "departure_rate": 0.1, "return_speedup": 1.0, "kink_excess": np.log(2),
                "stiffness_excess": 0.0, "aligned_gap_share": 0.0, "gap_at_return_share": 0.2,
                "recovery": 0.2,
                "kl_aligned": 0.25 + 0.75, "kl_min": 0.25, "kl_min_share": 0.25, "kl_min_at": 40}
    for name, value in expected.items():
        assert card.loc[name, "point"] == pytest.approx(value, abs=1e-9), name
    # the CI brackets the point; the runs agree, so the KL statistics' CIs collapse onto it
    assert ((card["low"] <= card["point"] + 1e-9) & (card["point"] <= card["high"] + 1e-9)).all()
    kl_rows = card.loc[["kl_aligned", "kl_min", "kl_min_share", "kl_min_at"]]
    assert np.allclose(kl_rows["low"], kl_rows["point"]) and np.allclose(kl_rows["high"],
                                                                         kl_rows["point"])
    assert card.loc["kink_excess", "verdict"] == "supported"
    assert card.loc["kl_min_share", "verdict"] == "supported"  # below 1 is the elastic side
    assert card.loc["base_level", "verdict"] == ""  # a level, not a claim
    assert card.loc["return_count", "reading"].startswith("40 (95 % CI")
    assert (card["pair"] == "toy_chat").all() and (card["task"] == "sentiment").all()


def test_card_says_when_the_curve_never_returns():
    from springback.pairs import card_table

    prompts, checkpoints = synthetic_pair()
    stuck = prompts["aligned"] == "released"
    prompts.loc[stuck, "logodds"] += 10.0  # stays above the base level throughout
    card = card_table(prompts, checkpoints, n_boot=20).set_index("statistic")
    assert np.isnan(card.loc["return_count", "point"])
    assert card.loc["kink_excess", "verdict"] == "undetermined"
    assert "does not return to the base level within 100 examples" in \
        card.loc["return_count", "reading"]


def test_card_curves_key_both_arms():
    from springback.pairs import card_curves

    prompts, checkpoints = synthetic_pair()
    frame = card_curves(prompts, checkpoints, n_boot=20)
    assert list(frame.columns[:6]) == ["pair", "task", "direction", "aligned", "n_pos", "n_neg"]
    released = frame[frame["aligned"] == "released"].set_index("n_neg")
    assert released.loc[0, "level"] == pytest.approx(4.0)
    assert released.loc[40, "kl_to_base"] == pytest.approx(0.25)
    assert set(frame["aligned"]) == {"none", "released"}


def test_mismatched_tokenizers_fail_naming_both_models(tmp_path):
    import fakehub
    from springback.pipeline.pairs import check_vocabulary
    from springback.tokenizer import train_tokenizer

    base = tmp_path / "base"
    fakehub.tokenizer().save_pretrained(base)
    other = tmp_path / "aligned"
    train_tokenizer(["a completely different vocabulary of words"]).save_pretrained(other)
    with pytest.raises(ValueError, match="do not share a tokenizer vocabulary") as err:
        check_vocabulary(base, other)
    message = str(err.value)
    assert str(base) in message and str(other) in message and "\n" not in message
    check_vocabulary(base, base)  # the same tokenizer passes


def pairs_config(**change) -> dict:
    """A hub study with one released pair, its defaults filled from the schema."""
    from pathlib import Path

    import yaml

    from springback.config import fill_defaults

    pair = {"base": {"id": "org/base"}, "aligned": {"id": "org/base-chat"},
            "tasks": ["safety"], **change}
    cfg = {"mode": "hub", "rebound": {"tasks": ["sentiment", "safety"], "seeds": [1, 2]},
           "pairs": {"tiny_chat": pair}}
    schema = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
    fill_defaults(cfg, yaml.safe_load(schema.read_text()))
    return cfg


@pytest.mark.parametrize("cfg, key", [
    ({**pairs_config(), "mode": "toy"}, "config key pairs:"),
    (pairs_config(tasks=["safety", "sentiment", "math"]), "config key pairs.tiny_chat.tasks"),
])
def test_bad_pairs_config_names_the_key(cfg, key):
    from springback.config import ConfigError, check_pairs

    with pytest.raises(ConfigError, match=key):
        check_pairs(cfg)


def test_pair_spec_defaults_to_the_study_seeds():
    from springback.config import pair_spec

    spec = pair_spec(pairs_config(), "tiny_chat")
    assert spec["seeds"] == [1, 2] and spec["direction"] == "forward"
    assert pair_spec(pairs_config(seeds=[7]), "tiny_chat")["seeds"] == [7]
