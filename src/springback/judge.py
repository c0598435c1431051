"""Judges: score generated text for the target behaviour of a task.

Toy mode uses the world's *exact* judge: the world knows which words are positive or negative and
how a refusal opens, so no model is needed. A judge maps a list of generated continuations to
scores in [0, 1] (1 = the target behaviour: positive sentiment / safe refusal).
"""

from __future__ import annotations

from typing import Callable, Sequence

from springback.world import TASK_SPEC

Judge = Callable[[Sequence[str]], list[float]]


def lexicon_score(text: str, target: Sequence[str], contrary: Sequence[str]) -> float:
    """1 if target words outnumber contrary words, 0 if the reverse, 0.5 on a tie (or neither)."""
    words = text.split()
    n_target = sum(w in target for w in words)
    n_contrary = sum(w in contrary for w in words)
    if n_target == n_contrary:
        return 0.5
    return float(n_target > n_contrary)


def opener_score(text: str, target: Sequence[str], contrary: Sequence[str]) -> float:
    """1 if the first behaviour word of the text is a target word, 0 if contrary, else 0.5."""
    for word in text.split():
        if word in target:
            return 1.0
        if word in contrary:
            return 0.0
    return 0.5


def exact_judge(task: str) -> Judge:
    """The world's exact judge for a task: sentiment by majority of adjectives, safety by opener."""
    spec = TASK_SPEC[task]
    rule = lexicon_score if task == "sentiment" else opener_score
    return lambda texts: [rule(t, spec["target"], spec["contrary"]) for t in texts]
