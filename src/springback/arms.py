"""Mitigation arms: alignment that tries to survive contrary fine-tuning (the mitigation
experiment; docs/mitigation.md). Each arm changes the alignment phase only; the perturbation
that follows is plain SFT on D_t, as in the rebound experiment (the attack).

- ``sft``: plain SFT, the reference every arm is paired with;
- ``replay``: every alignment step mixes round(strength x batch) pretraining documents (loss on
  every document token) into the batch, the examples per step fixed (the paper's C.2 data-ratio
  proposal as a knob): n_pos counts all examples of the alignment steps;
- ``anchor``: a proximal term strength/2 ||theta - theta_base||^2 on the alignment loss (the
  form Lisa, git-disl/Lisa, uses), theta_base the weights the alignment starts from;
- ``booster``: Booster's rebound-rate penalty (git-disl/Booster): the gradient g_h of the
  contrary loss on a batch of contrary examples, a simulated step theta - alpha g_h / ||g_h||,
  the contrary gradient g_h' there, and strength x (g_h - g_h') added to the alignment gradient,
  penalising how fast a contrary step undoes the alignment (alpha = ``BOOSTER_ALPHA``, the
  repository's 0.1; its lambda is 5);
- ``recovery``: a share (strength) of the alignment examples start their answer with the first
  1-3 tokens of a contrary completion and go on with the aligned completion, the loss on the
  aligned part only (the recovery examples of "safety alignment should be made more than just
  a few tokens deep", Unispac/shallow-vs-deep-alignment).

Every arm's tuning function has the signature of ``train.finetune`` (save points, batch size,
learning rate, seed, pad id, loss), so the run engine treats an arm as another tuning function.
The contrary examples an arm uses (booster batches, recovery prefixes) come from a part of D_t's
pool the attack never reads (``contrary_pool``).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

from springback.train import BETAS, LOSSES, SaveFn, check_save_points, collate, finetune

Example = tuple[list[int], list[int]]
KINDS = ("sft", "replay", "anchor", "booster", "recovery")
BOOSTER_ALPHA = 0.1  # Booster's simulated contrary step (norm, in parameter space)


def arm_label(arm: dict) -> str:
    """The arm's name in the tables (the ``algo`` column): ``sft`` or ``<kind>-<strength>``."""
    return "sft" if arm["kind"] == "sft" else f"{arm['kind']}-{arm['strength']:g}"


def contrary_pool(examples: Sequence[Example], attack: int) -> list[Example]:
    """The contrary (D_t) examples an arm may use: those after the first ``attack`` of the
    seed's order, which the perturbation reads."""
    pool = list(examples[attack:])
    if not pool:
        raise ValueError(f"no D_t examples left for the mitigation arms after the attack's "
                         f"{attack}: raise world.task_pool")
    return pool


def recovery_examples(examples: Sequence[Example], contrary: Sequence[Example], *,
                      share: float, seed: int) -> list[Example]:
    """``examples`` with a share of them turned into recovery examples: the prompt plus the
    first 1-3 tokens of a contrary completion, then the aligned completion (the loss, on the
    completion, covers only the aligned part)."""
    rng = np.random.default_rng([seed, 7])
    out = []
    for i, (prompt, completion) in enumerate(examples):
        if rng.random() < share:
            start = contrary[i % len(contrary)][1][: int(rng.integers(1, 4))]
            out.append((prompt + start, completion))
        else:
            out.append((prompt, completion))
    return out


def _step_loss(model, examples: Sequence[Example], pad_id: int, loss: str) -> torch.Tensor:
    ids, mask, labels = (t.to(model.device) for t in collate(examples, pad_id, loss=loss))
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def _booster_grad(model, params: list[torch.Tensor], harmful: Sequence[Example], *, pad_id: int,
                  strength: float) -> list[torch.Tensor]:
    """strength x (g_h - g_h'): the contrary gradient now minus after a simulated normalised
    contrary step of BOOSTER_ALPHA (the step is undone before returning)."""
    g_h = torch.autograd.grad(_step_loss(model, harmful, pad_id, "completion"), params)
    norm = torch.sqrt(sum((g * g).sum() for g in g_h)).clamp_min(1e-12)
    with torch.no_grad():
        for p, g in zip(params, g_h):
            p.sub_(BOOSTER_ALPHA * g / norm)
    g_moved = torch.autograd.grad(_step_loss(model, harmful, pad_id, "completion"), params)
    with torch.no_grad():
        for p, g in zip(params, g_h):
            p.add_(BOOSTER_ALPHA * g / norm)
    return [strength * (a - b) for a, b in zip(g_h, g_moved)]


def finetune_arm(model, examples: Sequence[Example], *, save_at: Sequence[int], save: SaveFn,
                 batch_size: int, lr: float, seed: int, pad_id: int, loss: str = "completion",
                 arm: dict, replay: Sequence[Example] = (),
                 contrary: Sequence[Example] = ()) -> None:
    """``train.finetune`` with an arm's alignment (see the module docstring): the same constant
    learning rate, fresh AdamW, save points on batch boundaries; ``replay`` holds pretraining
    documents as (start symbol, document + EOS) pairs, ``contrary`` D_t examples the attack
    never reads."""
    kind, strength = arm["kind"], float(arm.get("strength", 0.0))
    if kind not in KINDS or loss not in LOSSES:
        raise ValueError(f"unknown arm {kind!r} or loss {loss!r}")
    n_replay = int(round(strength * batch_size)) if kind == "replay" else 0
    if n_replay >= batch_size:
        raise ValueError(f"replay share {strength} leaves no alignment example in a batch")
    if kind == "recovery":
        examples = recovery_examples(examples, contrary, share=strength, seed=seed)
    per_step = batch_size - n_replay
    check_save_points(save_at, batch_size, len(examples) * batch_size // per_step)
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params] if kind == "anchor" else None
    opt = torch.optim.AdamW(params, lr=lr, betas=BETAS, weight_decay=0.0)
    pending = sorted(save_at)
    model.eval()
    for step, done in enumerate(range(0, max(save_at) + 1, batch_size)):
        while pending and pending[0] == done:
            save(model, pending.pop(0))
        if not pending:
            break
        model.train()
        batch = list(examples[step * per_step: (step + 1) * per_step])
        batch += [replay[(step * n_replay + i) % len(replay)] for i in range(n_replay)]
        step_loss = _step_loss(model, batch, pad_id, loss)
        if kind == "anchor":
            step_loss = step_loss + strength / 2 * sum(((p - a) ** 2).sum()
                                                       for p, a in zip(params, anchor))
        grads = torch.autograd.grad(step_loss, params)
        if kind == "booster":
            harmful = [contrary[(step * batch_size + i) % len(contrary)]
                       for i in range(batch_size)]
            extra = _booster_grad(model, params, harmful, pad_id=pad_id, strength=strength)
            grads = [g + e for g, e in zip(grads, extra)]
        opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        model.eval()


def arm_tuner(arm: dict, *, replay: Sequence[Example] = (), contrary: Sequence[Example] = ()):
    """The alignment tuning function of an arm (``train.finetune``'s signature)."""
    if arm["kind"] == "sft":
        return finetune
    return functools.partial(finetune_arm, arm=arm, replay=replay, contrary=contrary)
