"""One alignment (or perturbation) phase by any of five algorithms (claim C6): SFT, DPO, KTO,
SimPO and GRPO, the last four through TRL 1.16 trainers, all with the contract of
``train.finetune``.

- An in-memory model goes in and is trained in place, one pass over the phase's first
  ``max(save_at)`` examples in the given order, at a constant learning rate, every optimiser step
  exactly ``batch_size`` examples; ``save(model, n)`` is called at every save point (n examples
  seen, 0 = before training; the model is in eval mode during the call and must not be kept).
  Nothing is written to disk.
- An *example* is what one row of the phase file yields: a (prompt, completion) pair for SFT, a
  preference pair (prompt, chosen, rejected) for DPO and SimPO, the same pair as one desirable and
  one undesirable row for KTO (so a KTO step holds 2 x batch_size rows), and a prompt with
  ``num_generations`` sampled completions (an episode group) for GRPO.
- Preference pairs (``preference_pairs``): the world draws D_a and D_t from disjoint prompts
  (``world.task_examples`` keeps a ``seen`` set), but a completion never depends on its prompt
  (``review_completion`` / ``dialogue_completion`` take only the behaviour), so the rejected
  answer of a phase-1 prompt is a phase-2 completion, drawn without replacement in a seeded order.
- GRPO is rewarded by the task's exact judge on the decoded completions, flipped when the phase's
  target is the contrary behaviour (``phase_reward``).
- Deterministic on CPU for a seed and thread count (fixed order, ``set_seed(seed)`` in every
  trainer, no dropout).
- TRL trainers send telemetry in ``__init__``; TRL 1.16 has no switch of its own (no
  ``TRL_TELEMETRY``): it honours ``HF_HUB_DISABLE_TELEMETRY=1`` / ``HF_HUB_OFFLINE=1``, read when
  huggingface_hub is first imported, so they must be set before (``runtime.start`` does).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from springback import data
from springback.judge import exact_judge
from springback.tokenizer import special_ids
from springback.train import LOSSES, SaveFn, check_save_points, finetune

ALGORITHMS = ("sft", "dpo", "kto", "simpo", "grpo")

# Learning rates (constant AdamW; betas 0.9/0.999, no weight decay) chosen by the competence
# screen (benchmarks/algorithms.py --screen: s model, pretraining seed 0, 3 M tokens, phase 1 of a
# forward run, 256 examples at batch 8, both tasks, lr 3e-5 / 1e-4 / 3e-4). Rule: competent =
# held-out D_p bits/byte rises < 10 % and the mass on the behaviour's first words (coverage) stays
# >= 95 % of the base's, in both tasks; not saturated = the log-odds still gain >= 0.5 nats from
# 128 to 256 examples (the rebound needs room over hundreds of examples); the largest such rate.
# Log-odds gained after 256 examples (sentiment / safety) at the chosen rate; base coverage 0.99:
LR = {
    "sft": 1e-4,    # +4.8 / +3.3 nats, D_p +4 % / +3 %; 3e-4 saturates, D_p +12 % safety
    "dpo": 3e-5,    # +3.2 / +1.5, D_p +1 % / 0 %; 1e-4: D_p +14 %, coverage 0.74 / 0.81
    "kto": 3e-5,    # +3.2 / +1.5, D_p +1 % / 0 %; 1e-4: D_p +13 %, coverage 0.89 / 0.82
    "simpo": 3e-5,  # +3.2 / +1.5, D_p +1 % / 0 %; 1e-4: D_p +14 %, coverage 0.76 / 0.76
    "grpo": 1e-4,   # +4.6 / +3.2, D_p +6 % / +1 %; 3e-4 saturates (+0.0 sentiment after 128)
}
# beta up at lr 1e-4 (DPO 0.5, KTO 0.5, SimPO 10) spares D_p (+7-9 %) but safety coverage still
# falls to 0.76 / 0.90 / 0.81: a larger beta does not buy the faster rate.

OPTIONS = {
    "dpo": {"beta": 0.1},                      # KL strength to the reference (TRL default)
    "kto": {"beta": 0.1},                      # KL strength to the reference (TRL default)
    "simpo": {"beta": 2.0, "simpo_gamma": 0.5},  # reward scale and target margin (SimPO paper)
    "grpo": {"beta": 0.0,                      # KL coefficient (TRL default: no reference model)
             "num_generations": 4,             # completions per prompt (the group)
             "max_completion_length": 16,      # sampled tokens (as evaluate.max_new_tokens)
             "temperature": 1.0},              # sampling temperature of the episodes
}


def preference_pairs(frame_target: pd.DataFrame, frame_other: pd.DataFrame,
                     seed: int) -> pd.DataFrame:
    """(prompt, chosen, rejected, context) per row of ``frame_target``, in its order: chosen is
    the row's own completion, rejected a completion of ``frame_other`` (seeded permutation; the
    world's completions do not depend on their prompt, so any contrary completion fits)."""
    if len(frame_other) < len(frame_target):
        raise ValueError(f"{len(frame_target)} target rows but only {len(frame_other)} others")
    other = np.random.default_rng([seed, 3]).permutation(len(frame_other))[: len(frame_target)]
    return pd.DataFrame({"prompt": frame_target["prompt"].to_numpy(),
                         "chosen": frame_target["completion"].to_numpy(),
                         "rejected": frame_other["completion"].to_numpy()[other],
                         "context": frame_target["context"].to_numpy()})


def phase_reward(task: str, toward_target: bool) -> Callable[..., list[float]]:
    """A TRL reward function: the task's exact judge (1 = target behaviour) on the decoded
    completions, or 1 - judge when the phase trains toward the contrary behaviour."""
    judge = exact_judge(task)

    def reward(completions: list[str], **_) -> list[float]:
        scores = judge(completions)
        return scores if toward_target else [1.0 - s for s in scores]

    return reward


def save_callback(save: SaveFn, save_at: Sequence[int], batch_size: int):
    """A TrainerCallback calling ``save(model, n)`` after the optimiser step that completes n
    examples, in memory, the model in eval mode during the call."""
    from transformers import TrainerCallback

    class SaveAt(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            n = state.global_step * batch_size
            if n in save_at:
                model.eval()
                save(model, n)
                model.train()

    return SaveAt()


def common_args(tmp: str, *, steps: int, rows: int, lr: float, seed: int, device: str = "cpu",
                max_grad_norm: float = 1.0, checkpointing: bool = False) -> dict:
    """TrainingArguments shared by the TRL trainers: constant AdamW as ``train.finetune``'s,
    sequential order, no checkpoints on disk. On CPU fp32 (bf16 is 6-25x slower here); on a GPU
    bf16 mixed precision (autocast over fp32 master weights, or over a bf16 base frozen under an
    fp32 LoRA adapter) and, where asked, activation checkpointing. HF clips the gradient norm at
    1 by default (the algorithms' screen ran with it); ``max_grad_norm=0`` turns clipping off, as
    in the plain SFT loop."""
    gpu = device != "cpu"
    return dict(output_dir=tmp, max_steps=steps, per_device_train_batch_size=rows,
                learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0,
                max_grad_norm=max_grad_norm, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999,
                seed=seed, data_seed=seed, bf16=gpu, use_cpu=not gpu,
                activation_checkpointing=checkpointing, save_strategy="no",
                report_to="none", logging_steps=max(1, steps // 10), disable_tqdm=True,
                train_sampling_strategy="sequential", dataloader_num_workers=0)


def pair_dataset(pairs: pd.DataFrame, tok):
    """TRL's string format: BOS written into the prompt (TRL adds no BOS itself, CPO only where
    missing) and a leading space on every completion, so the word-level tokenizer never fuses the
    last prompt word with the first answer word (TRL appends EOS)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": (tok.bos_token + " " + pairs["prompt"]).tolist(),
                              "chosen": (" " + pairs["chosen"]).tolist(),
                              "rejected": (" " + pairs["rejected"]).tolist()})


def kto_dataset(pairs: pd.DataFrame, tok, *, batch_size: int, seed: int):
    """Each pair as a desirable and an undesirable row; rows shuffled within each step's batch
    (KTO samples sequentially and estimates its KL term from neighbouring rows)."""
    from datasets import Dataset

    prompt = (tok.bos_token + " " + pairs["prompt"]).tolist()
    rows = [(p, " " + c, good) for i, p in enumerate(prompt)
            for c, good in ((pairs["chosen"].iloc[i], True), (pairs["rejected"].iloc[i], False))]
    rng, width = np.random.default_rng([seed, 4]), 2 * batch_size
    order = [lo + j for lo in range(0, len(rows), width)
             for j in rng.permutation(min(width, len(rows) - lo))]
    return Dataset.from_dict({k: [rows[i][c] for i in order]
                              for c, k in enumerate(("prompt", "completion", "label"))})


def dpo_trainer(common: dict, args: dict, pairs, tok, options: dict, **_):
    """DPO against a frozen copy of the model (``ref_model=None`` would reload it from disk),
    its log-probs computed once before training."""
    import trl

    return trl.DPOTrainer(**common, args=trl.DPOConfig(**args, **options,
                                                       precompute_ref_log_probs=True),
                          ref_model=copy.deepcopy(common["model"]),
                          train_dataset=pair_dataset(pairs, tok))


def kto_trainer(common: dict, args: dict, pairs, tok, options: dict, *, batch_size: int,
                seed: int, **_):
    import trl

    args = {**args, "per_device_train_batch_size": 2 * batch_size}
    return trl.KTOTrainer(**common, args=trl.KTOConfig(**args, **options,
                                                       precompute_ref_log_probs=True),
                          ref_model=copy.deepcopy(common["model"]),
                          train_dataset=kto_dataset(pairs, tok, batch_size=batch_size, seed=seed))


def simpo_trainer(common: dict, args: dict, pairs, tok, options: dict, **_):
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    config = CPOConfig(**args, **options, loss_type="simpo", cpo_alpha=0.0,
                       remove_unused_columns=False)
    return CPOTrainer(**common, args=config, train_dataset=pair_dataset(pairs, tok))


def grpo_trainer(common: dict, args: dict, pairs, tok, options: dict, *, batch_size: int,
                 reward, **_):
    """GRPO on the pairs' prompts: a step is ``batch_size`` prompts x ``num_generations``
    completions (TRL's batch counts completions), generated for that step alone."""
    import trl
    from datasets import Dataset

    args = {**args, "per_device_train_batch_size": options["num_generations"] * batch_size}
    prompts = (tok.bos_token + " " + pairs["prompt"]).tolist()
    config = trl.GRPOConfig(**args, **options, shuffle_dataset=False)
    return trl.GRPOTrainer(**common, args=config, reward_funcs=reward,
                           train_dataset=Dataset.from_dict({"prompt": prompts}))


TRAINERS = {"dpo": dpo_trainer, "kto": kto_trainer, "simpo": simpo_trainer, "grpo": grpo_trainer}


def train_phase(model, tok, algorithm: str, frame: pd.DataFrame, other: pd.DataFrame, *,
                task: str, toward_target: bool, save_at: Sequence[int], save: SaveFn,
                batch_size: int, seed: int, lr: float | None = None,
                options: dict | None = None) -> None:
    """Train ``model`` in place on the phase file ``frame`` (rows in the seed's order; the first
    ``max(save_at)`` are used) by ``algorithm``; ``other`` is the other phase's file (rejected
    answers), ``task`` and ``toward_target`` name the judge's reward. ``lr`` None: ``LR``;
    ``options`` override ``OPTIONS`` of the algorithm (SFT: ``loss``)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (one of {ALGORITHMS})")
    check_save_points(save_at, batch_size, len(frame))
    n, lr = max(save_at), LR[algorithm] if lr is None else lr
    options = {**OPTIONS.get(algorithm, {}), **(options or {})}
    if algorithm == "sft":
        return sft_phase(model, tok, frame.iloc[:n], save_at=save_at, save=save,
                         batch_size=batch_size, lr=lr, seed=seed, **options)
    model.eval()
    if 0 in save_at:
        save(model, 0)
    if n == 0:
        return
    pairs = preference_pairs(frame.iloc[:n], other, seed)
    callback = save_callback(save, set(save_at) - {0}, batch_size)
    common = dict(model=model, processing_class=tok, callbacks=[callback])
    with tempfile.TemporaryDirectory(prefix="springback-trl-") as tmp:
        args = common_args(tmp, steps=n // batch_size, rows=batch_size, lr=lr, seed=seed)
        TRAINERS[algorithm](common, args, pairs, tok, options, batch_size=batch_size, seed=seed,
                            reward=phase_reward(task, toward_target)).train()
    model.eval()


def sft_phase(model, tok, frame: pd.DataFrame, *, save_at, save, batch_size, lr, seed,
              loss: str = "completion") -> None:
    """SFT by the plain loop ``train.finetune`` (faster than SFTTrainer here, same weights)."""
    finetune(model, data.encode_examples(tok, frame), save_at=save_at, save=save,
             batch_size=batch_size, lr=lr, seed=seed, pad_id=special_ids(tok)["pad"], loss=loss)


class Algorithm:
    """The tuner of an algorithm run (springback.runs.run): both phases of a run of ``task``
    trained by ``algorithm`` (``train_phase``) at a constant ``lr`` with ``options``; the
    forward direction trains toward the target behaviour first (the GRPO reward follows the
    phase's side). A phase is (its rows in the seed's order, the other phase's rows: the
    rejected answers, toward the target?)."""

    def __init__(self, tok, algorithm: str, *, task: str, batch_size: int, lr: float | None,
                 options: dict | None):
        self.tok, self.algorithm, self.task = tok, algorithm, task
        self.batch_size, self.lr, self.options = batch_size, lr, options

    def phases(self, tables: Mapping[str, Path], direction: str, *, seed: int, n_pos: int,
               n_neg: int) -> tuple[tuple, tuple]:
        first, second = data.phase_files(tables, direction)
        forward = direction == "forward"
        return ((data.ordered_rows(first, seed=seed, phase=1, n=n_pos),
                 data.read_table(second, data.EXAMPLE_COLUMNS), forward),
                (data.ordered_rows(second, seed=seed, phase=2, n=n_neg),
                 data.read_table(first, data.EXAMPLE_COLUMNS), not forward))

    def __call__(self, model, phase: tuple, *, seed: int, save_at: Sequence[int],
                 save: SaveFn) -> None:
        frame, other, toward = phase
        train_phase(model, self.tok, self.algorithm, frame, other, toward_target=toward,
                    save_at=save_at, task=self.task, batch_size=self.batch_size, seed=seed,
                    lr=self.lr, options=self.options, save=save)


def sft_dataset(examples, *, loss: str = "completion"):
    """Pre-tokenised SFT rows for TRL (used as is): ``train.finetune``'s sequences and labels
    (prompt masked with -100 for ``loss="completion"``; every token after the start symbol for
    ``"full"``)."""
    from datasets import Dataset

    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r} (one of {LOSSES})")
    ids, labels = [], []
    for prompt, completion in examples:
        seq = list(prompt) + list(completion)
        first = len(prompt) if loss == "completion" else 1
        ids.append(seq)
        labels.append([-100] * first + seq[first:])
    return Dataset.from_dict({"input_ids": ids, "labels": labels})


def finetune_trl(model, examples, *, save_at: Sequence[int], save: SaveFn, batch_size: int,
                 lr: float, seed: int, pad_id: int, tokenizer, loss: str = "completion",
                 checkpointing: bool = False) -> None:
    """``train.finetune`` through TRL's SFTTrainer (the GPU path: bf16 mixed precision,
    activation checkpointing, LoRA adapters through peft, accelerate for several GPUs): the same
    examples in the same order, constant AdamW without clipping, ``save(model, n)`` at every save
    point in memory (``pad_id`` is unused: the collator pads with the tokenizer's pad token, which
    masked labels make irrelevant). On CPU in fp32 it reaches the plain loop's weights up to float rounding
    (tests/test_adapters.py); the plain loop stays the CPU path (faster at toy sizes)."""
    import trl

    check_save_points(save_at, batch_size, len(examples))
    n = max(save_at)
    model.eval()
    if 0 in save_at:
        save(model, 0)
    if n == 0:
        return
    device = str(next(model.parameters()).device.type)
    callback = save_callback(save, set(save_at) - {0}, batch_size)
    with tempfile.TemporaryDirectory(prefix="springback-trl-") as tmp:
        args = common_args(tmp, steps=n // batch_size, rows=batch_size, lr=lr, seed=seed,
                           device=device, max_grad_norm=0.0, checkpointing=checkpointing)
        config = trl.SFTConfig(**args, max_length=None)
        trl.SFTTrainer(model=model, args=config, processing_class=tokenizer,
                       train_dataset=sft_dataset(examples[:n], loss=loss),
                       callbacks=[callback]).train()
    model.eval()
