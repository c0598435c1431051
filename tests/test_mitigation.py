"""The mitigation experiment: its alignment arms (springback.arms) on a tiny model, and claims M1
and M2 (springback.mitigation) on synthetic arms whose answer is known, an arm that only aligns
less among them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import known_answers as ka
from springback.claims import claims_table


def _arm(algo, curve, seed=0, **kw):
    return ka.table(ka.context_free(curve), seed=seed, **kw).assign(algo=algo)


def _m_rows(frames):
    table = claims_table(pd.concat(frames, ignore_index=True), n_boot=200)
    return table[table["claim"].isin(["M1", "M2"])].set_index(["algo", "statistic"])


def test_an_arm_that_only_aligns_less_is_not_a_mitigation():
    less = {n: 0.5 * lift for n, lift in ka.LIFT.items()}
    rows = _m_rows([_arm("sft", ka.saturation()),
                    _arm("anchor-1", ka.rate_case(lambda level, n: 0.035 * ka.sigmoid(level),
                                                  lifts=less))])
    for stat in ("recovery", "stiffness_excess", "return_slowdown"):
        assert rows.loc[("anchor-1", stat), "verdict"] != "supported", stat
    assert rows.loc[("anchor-1", "survival_64"), "verdict"] == "refuted"  # less survives
    assert rows.loc[("anchor-1", "survival_256"), "verdict"] != "supported"


def test_an_arm_that_slows_the_return_keeps_more_alignment():
    slower = ka.rate_case(lambda level, n: 0.015 * ka.sigmoid(level))  # half the speed back
    rows = _m_rows([_arm("sft", ka.saturation()), _arm("booster-5", slower)])
    assert rows.loc[("booster-5", "survival_64"), "verdict"] == "supported"
    assert rows.loc[("booster-5", "survival_256"), "verdict"] == "supported"
    assert rows.loc[("booster-5", "return_slowdown"), "verdict"] == "supported"


def test_an_arm_identical_to_sft_changes_nothing():
    sft = _arm("sft", ka.kink_at_base())
    rows = _m_rows([sft, sft.assign(algo="replay-0.125")])
    assert (rows["value"] == 0).all() and (rows["verdict"] == "inconclusive").all()


def test_mitigation_arms_are_not_read_as_alignment_algorithms():
    rows = claims_table(pd.concat([_arm("sft", ka.kink_at_base()),
                                   _arm("recovery-0.5", ka.kink_at_base())]), n_boot=50)
    assert "C6" not in set(rows["claim"])


# --- the arms on a tiny model -------------------------------------------------------------------

@pytest.fixture()
def arm_data(tiny_tokenizer, tiny_world):
    from springback.data import encode_examples

    tok = tiny_tokenizer
    pos = encode_examples(tok, pd.DataFrame(tiny_world["sentiment/align"]))[:32]
    neg = encode_examples(tok, pd.DataFrame(tiny_world["sentiment/perturb"]))[:32]
    docs = tok(tiny_world["pretrain"]["text"][:20], add_special_tokens=False)["input_ids"]
    replay = [([tok.bos_token_id], d[:20] + [tok.eos_token_id]) for d in docs]
    return pos, neg, replay, tok.pad_token_id


@pytest.mark.parametrize("arm", [{"kind": "replay", "strength": 0.25},
                                 {"kind": "anchor", "strength": 0.1},
                                 {"kind": "booster", "strength": 5.0},
                                 {"kind": "recovery", "strength": 0.5}])
def test_every_arm_trains_and_differs_from_plain_sft(make_tiny_model, arm_data, arm):
    import torch

    from springback.arms import arm_tuner
    from springback.train import finetune

    pos, neg, replay, pad = arm_data
    runs = {}
    for name, tune in (("sft", finetune), ("arm", arm_tuner(arm, replay=replay, contrary=neg))):
        model = make_tiny_model(seed=0)
        start = [p.detach().clone() for p in model.parameters()]
        tune(model, pos, save_at=[16], save=lambda m, n: None, batch_size=8, lr=1e-3, seed=1,
             pad_id=pad)
        runs[name] = [p.detach().clone() for p in model.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(start, runs[name]))  # it trained
    assert any(not torch.allclose(a, b) for a, b in zip(runs["sft"], runs["arm"]))


def test_an_arm_at_strength_zero_is_plain_sft(make_tiny_model, arm_data):
    import torch

    from springback.arms import arm_tuner
    from springback.train import finetune

    pos, neg, _, pad = arm_data
    out = []
    for tune in (finetune, arm_tuner({"kind": "anchor", "strength": 0.0})):
        model = make_tiny_model(seed=0)
        tune(model, pos, save_at=[16], save=lambda m, n: None, batch_size=8, lr=1e-3, seed=1,
             pad_id=pad)
        out.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*out))


def test_recovery_examples_prefix_a_contrary_start_to_a_share_of_answers():
    from springback.arms import recovery_examples

    pos = [([1, 2], [10, 11, 12])] * 200
    contrary = [([1, 2], [20, 21, 22, 23])]
    out = recovery_examples(pos, contrary, share=0.5, seed=0)
    changed = [p for p, _ in out if len(p) > 2]
    assert 70 < len(changed) < 130
    assert all(p[2:] == [20, 21, 22][: len(p) - 2] for p in changed)
    assert all(c == [10, 11, 12] for _, c in out)  # the loss stays on the aligned answer
