"""Stage `resistance` (rules/resistance.smk): forward vs inverse alignment (claim C1; the paper's
Tables 1-2), for every pretraining seed of one base in one job.

Per pretraining seed and fine-tuning seed: one SFT run on the world's instruction-style set
(D_p's "repeat the words" prompt answered with an acknowledgement instead) is snapshotted after slices 1, 2, 3
(theta_1..theta_3); each theta_k answers the held-out prompts greedily, giving D_k. For every
pair k < l: *forward* fine-tunes theta_k on D_l, *inverse* fine-tunes theta_l on D_k, with the
same steps, learning rate and data size. Each fine-tuned model is then scored on its own
training set: the mean per-token loss of the completions (the paper's final training loss) and
the mean token-level KL(theta_target || model) over the same positions (how far it still is from
the model whose answers it learned; the paper's Table 2 reads a KL change). ``target_loss`` is
the target model's own loss on its answers: the forward and inverse targets differ in how
predictable they are, so C1 compares each loss minus its target's (the excess over the set's
own code length under the model that wrote it).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd
import torch

from springback import data, models, provenance
from springback.evaluate import kl_mean, padded
from springback.tokenizer import special_ids
from springback.train import collate, finetune
from springback.world import STYLE_ANSWER

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]


@torch.no_grad()
def answers(model, prompts: list[list[int]], *, pad_id: int, eos_id: int,
            max_new_tokens: int) -> list[list[int]]:
    """Greedy completions (up to and including EOS) of left-padded prompts."""
    ids, mask = padded(prompts, pad_id, left=True)
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                         max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos_id)
    done = []
    for row in out[:, ids.shape[1]:].tolist():
        done.append(row[: row.index(eos_id) + 1] if eos_id in row else row)
    return done


@torch.no_grad()
def score(model, target, examples: list[Example], *, pad_id: int) -> tuple[float, float]:
    """(mean completion-token loss of ``model``, mean KL(target || model)) over ``examples``."""
    ids, mask, labels = collate(examples, pad_id)
    on = labels[:, 1:] != -100
    logp = model(input_ids=ids, attention_mask=mask).logits[:, :-1].log_softmax(-1)
    logq = target(input_ids=ids, attention_mask=mask).logits[:, :-1].log_softmax(-1)
    nll = -logp.gather(-1, labels[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return float(nll[on].mean()), kl_mean(logq, logp, on)  # exact over the vocabulary


def resistance_run(base, tok, train: list[Example], prompts: list[list[int]], *, seed: int,
                   slice_size: int, epochs: int, lr: float, batch_size: int,
                   max_new_tokens: int) -> list[dict]:
    """Rows (k, l, direction, loss, kl) of every pair of one seed's saved models."""
    ids = special_ids(tok)
    thetas = {}
    model = copy.deepcopy(base)
    finetune(model, train, save_at=[slice_size * k for k in (1, 2, 3)], seed=seed,
             pad_id=ids["pad"], batch_size=batch_size, lr=lr,
             save=lambda m, n: thetas.__setitem__(n // slice_size, models.snapshot(m)))
    sets = {}
    for k, state in thetas.items():
        model.load_state_dict(state)
        model.eval()
        sets[k] = list(zip(prompts, answers(model, prompts, pad_id=ids["pad"], eos_id=ids["eos"],
                                            max_new_tokens=max_new_tokens)))
    target, rows = copy.deepcopy(model), []
    own = {}  # each saved model's loss on its own answers: the code length its set starts from
    for k, state in thetas.items():
        target.load_state_dict(state)
        own[k] = score(target.eval(), target, sets[k], pad_id=ids["pad"])[0]
    n = len(prompts) * epochs // batch_size * batch_size
    for k in (1, 2):
        for l in range(k + 1, 4):
            for direction, start, goal in (("forward", k, l), ("inverse", l, k)):
                model.load_state_dict(thetas[start])
                target.load_state_dict(thetas[goal])
                start_loss, start_kl = score(model.eval(), target.eval(), sets[goal],
                                             pad_id=ids["pad"])
                finetune(model, (sets[goal] * epochs)[:n], save_at=[n], seed=seed, lr=lr,
                         pad_id=ids["pad"], batch_size=batch_size, save=lambda m, _: None)
                loss, kl = score(model.eval(), target, sets[goal], pad_id=ids["pad"])
                rows.append({"seed": seed, "k": k, "l": l, "cell": f"{k}-{l}",
                             "direction": direction, "loss": loss, "kl": kl,
                             "target_loss": own[goal],
                             "start_loss": start_loss, "start_kl": start_kl,
                             "style_share": style_share(tok, sets[goal])})
    return rows


def style_share(tok, examples: list[Example]) -> float:
    """Share of answers in the new style (how far a D_k has moved from pretraining)."""
    return sum(STYLE_ANSWER in tok.decode(c, skip_special_tokens=True)
               for _, c in examples) / len(examples)


def resistance(*, base_dirs: list[str | Path], train_file: str | Path, prompt_file: str | Path,
               seeds: list[int], slice_size: int, epochs: int, lr: float, batch_size: int,
               max_new_tokens: int, out: str | Path) -> None:
    """Every pretraining seed's base checkpoint (``base_dirs``) x fine-tuning seed, trained on
    the instruction-style set ``train_file`` and answering the held-out prompts of
    ``prompt_file``; one table."""
    frames = []
    for base_dir in base_dirs:
        tok = models.load_tokenizer(base_dir)
        base = models.load_model(base_dir)
        keys = provenance.base_keys(models.read_provenance(base_dir))
        frame = data.read_table(prompt_file, data.PROMPT_COLUMNS)
        prompts = [p for p, _ in data.encode_examples(tok, frame.assign(completion=""))]
        for seed in seeds:
            train = data.ordered_examples(tok, train_file, seed=seed, phase=1, n=3 * slice_size)
            rows = resistance_run(base, tok, train, prompts, seed=seed, slice_size=slice_size,
                                  epochs=epochs, lr=lr, batch_size=batch_size,
                                  max_new_tokens=max_new_tokens)
            frames.append(pd.DataFrame(rows).assign(**keys))
            log.info("resistance %s seed %d done", base_dir, seed)
    table = pd.concat(frames, ignore_index=True)
    first = list(keys) + ["seed", "cell", "k", "l", "direction"]
    table[first + [c for c in table.columns if c not in first]].to_csv(out, index=False)
