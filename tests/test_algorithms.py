"""The five alignment algorithms (springback.algorithms): save points, direction, determinism,
preference pairs. A tiny pretrained model, two steps of 4 examples each; behaviour is read on
the task's held-out evaluation prompts."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

TASK, BATCH, SAVE_AT = "safety", 4, [0, 4, 8]
LR = {"sft": 1e-3, "dpo": 1e-3, "kto": 1e-3, "simpo": 1e-3, "grpo": 3e-3}  # a few steps must move
# the tiny model opens an answer with a behaviour word in few samples: short episodes, larger groups
OPTIONS = {"grpo": {"num_generations": 8, "max_completion_length": 4}}


@pytest.fixture(scope="module")
def frames(tiny_world):
    return (pd.DataFrame(tiny_world[f"{TASK}/align"]), pd.DataFrame(tiny_world[f"{TASK}/perturb"]))


@pytest.fixture(scope="module")
def prompts(tiny_world):
    return tiny_world[f"{TASK}/prompts"]["prompt"]


@torch.no_grad()
def logodds(model, tok, prompts) -> float:
    """Mean exact log P(target first words) - log P(contrary first words) after each prompt."""
    from springback.world import TASK_SPEC

    spec = TASK_SPEC[TASK]
    target, contrary = (tok.convert_tokens_to_ids(spec[k]) for k in ("target", "contrary"))
    out = []
    for p in prompts:
        ids = tok([f"{tok.bos_token} {p}"], add_special_tokens=False, return_tensors="pt")
        logp = model(**ids).logits[0, -1].log_softmax(-1)
        out.append(logp[target].logsumexp(0) - logp[contrary].logsumexp(0))
    return torch.stack(out).mean().item()


def run(model, tok, algorithm, frames, prompts, toward_target=True, save_at=SAVE_AT, seed=3):
    from springback.algorithms import train_phase

    first, second = frames if toward_target else frames[::-1]
    seen = []

    def save(m, n):
        seen.append((n, m.training, logodds(m, tok, prompts)))

    train_phase(model, tok, algorithm, first, second, task=TASK, toward_target=toward_target,
                save_at=save_at, save=save, batch_size=BATCH, seed=seed, lr=LR[algorithm],
                options=OPTIONS.get(algorithm))
    return seen


@pytest.mark.parametrize("algorithm", ["sft", "dpo", "kto", "simpo", "grpo"])
def test_algorithm_saves_moves_and_repeats(algorithm, pretrained_model, tiny_tokenizer, frames,
                                           prompts):
    import copy

    twin, before = copy.deepcopy(pretrained_model), copy.deepcopy(pretrained_model.state_dict())
    seen = run(pretrained_model, tiny_tokenizer, algorithm, frames, prompts)
    assert [n for n, _, _ in seen] == SAVE_AT
    assert not any(training for _, training, _ in seen)  # eval mode during every save call
    assert seen[-1][2] > seen[0][2] + 0.05, seen  # toward the target (refusal) side
    assert not pretrained_model.training
    assert any(not torch.equal(a, before[k]) for k, a in pretrained_model.state_dict().items())
    run(twin, tiny_tokenizer, algorithm, frames, prompts)
    for (k, a), b in zip(pretrained_model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("algorithm", ["dpo", "grpo"])
def test_contrary_phase_moves_the_other_way(algorithm, pretrained_model, tiny_tokenizer, frames,
                                            prompts):
    seen = run(pretrained_model, tiny_tokenizer, algorithm, frames, prompts, toward_target=False)
    assert seen[-1][2] < seen[0][2] - 0.05, seen


def test_grpo_seed_matters(pretrained_model, tiny_tokenizer, frames, prompts):
    """The repeat test above can only fail for GRPO if its sampling follows the seed."""
    import copy

    twin = copy.deepcopy(pretrained_model)
    run(pretrained_model, tiny_tokenizer, "grpo", frames, prompts, seed=3)
    run(twin, tiny_tokenizer, "grpo", frames, prompts, seed=4)
    assert not all(torch.equal(a, b) for a, b in zip(pretrained_model.parameters(),
                                                     twin.parameters()))


def test_preference_pairs(frames):
    from springback.algorithms import preference_pairs

    align, perturb = frames
    pairs = preference_pairs(align, perturb, seed=0)
    assert (pairs["prompt"] == align["prompt"]).all()
    assert (pairs["chosen"] == align["completion"]).all()
    assert (pairs["chosen"] != pairs["rejected"]).all()
    assert pairs["rejected"].isin(perturb["completion"]).all()
    assert pairs.equals(preference_pairs(align, perturb, seed=0))
    assert not pairs.equals(preference_pairs(align, perturb, seed=1))


def test_bad_grid_and_algorithm(pretrained_model, tiny_tokenizer, frames, prompts):
    with pytest.raises(ValueError, match="multiples of the batch size"):
        run(pretrained_model, tiny_tokenizer, "dpo", frames, prompts, save_at=[0, 6])
    with pytest.raises(ValueError, match="unknown algorithm"):
        from springback.algorithms import train_phase

        train_phase(pretrained_model, tiny_tokenizer, "ppo", *frames, task=TASK,
                    toward_target=True, save_at=[4], save=print, batch_size=BATCH, seed=0)
