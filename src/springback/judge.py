"""Judges: score generated text for the target behaviour of a task, in [0, 1] (1 = the target
behaviour: positive sentiment / safe refusal).

Every kind of judge a config can name (``hub.judges.<task>.kind``) is one entry of ``JUDGES``:

- ``exact``: the toy world's exact judge. The world knows which words are positive or negative
  and how a refusal opens, so no model is needed (toy mode, and a hub task judged by the world's
  words);
- ``classifier``: a sequence classifier's probability of a target label;
- ``reward``: a scalar reward or cost model, thresholded;
- ``probe``: no model at all. The behaviour is read from the probe's exact log-odds
  (``springback.evaluate``), so sampled text, never drawn, would score NaN.

Model judges (classifier, reward) are fetched by rule ``fetch_judge`` into
``results/<study>/judges/<task>`` and score the completion text alone, never the prompt (a
``template`` may wrap the text, e.g. in the chat format a reward model was trained on, but the
prompt itself is not available).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from springback.world import TASK_SPEC

Judge = Callable[[Sequence[str]], list[float]]


# ------------------------------------------------------------------------------------ exact

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


def unscored(task: str) -> Judge:
    """A probe task's judge: no model, so every text scores NaN (the probe reads exact log-odds
    instead, and the config refuses sampling)."""
    return lambda texts: [float("nan")] * len(texts)


# ------------------------------------------------------------------------------------ models

DTYPES = ("float32", "bfloat16", "float16")


def load_sequence_model(path: str | Path, *, device: str = "cpu", dtype: str = "float32",
                        key_mapping: dict[str, str] | None = None):
    """(tokenizer, model) of a sequence classifier / scalar reward model, safetensors only,
    no remote code. ``key_mapping`` renames checkpoint keys (regex → replacement), e.g.
    ``{"^score_head": "score"}`` for safe-rlhf's score models (beaver-7b-v1.0-cost). Weights the
    checkpoint lacks (a randomly initialised head) are an error."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"judge dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        str(path), use_safetensors=True, trust_remote_code=False, key_mapping=key_mapping,
        dtype=getattr(torch, dtype), output_loading_info=True)
    if info.get("missing_keys"):
        raise ValueError(f"judge model {path}: checkpoint lacks weights "
                         f"{sorted(info['missing_keys'])[:4]} (a different head? see key_mapping)")
    if tokenizer.pad_token is None:  # decoder-only judges (Llama) often ship without one
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model.to(device).eval()


def sequence_logits(tokenizer, model, texts: Sequence[str], *, batch_size: int = 16,
                    max_length: int = 512, template: str = "{text}"):
    """Logits [len(texts), num_labels] (float32, CPU) of ``template.format(text=...)``."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = [template.format(text=t) for t in texts[start:start + batch_size]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            enc = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}
            out.append(model(**enc).logits.float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.num_labels)


def _label_index(config, target_label: str) -> int:
    """Index of ``target_label`` in the model's labels (exact, then case-insensitive)."""
    labels = {str(k): int(v) for k, v in (config.label2id or {}).items()}
    if target_label in labels:
        return labels[target_label]
    folded = {k.lower(): v for k, v in labels.items()}
    if target_label.lower() in folded:
        return folded[target_label.lower()]
    raise ValueError(f"classifier has no label {target_label!r} "
                     f"(labels: {', '.join(sorted(labels))})")


def classifier_judge(path: str | Path, target_label: str, batch_size: int = 16,
                     device: str = "cpu", max_length: int = 512, *, dtype: str = "float32",
                     template: str = "{text}", key_mapping: dict | None = None) -> Judge:
    """Score = the classifier's probability of ``target_label`` (softmax over its labels, or a
    sigmoid for multi-label models), e.g. "POSITIVE" for siebert/sentiment-roberta-large-english.
    Scores the completion text alone."""
    import torch

    tokenizer, model = load_sequence_model(path, device=device, dtype=dtype,
                                           key_mapping=key_mapping)
    index = _label_index(model.config, target_label)
    multi = model.config.problem_type == "multi_label_classification"

    def judge(texts: Sequence[str]) -> list[float]:
        logits = sequence_logits(tokenizer, model, list(texts), batch_size=batch_size,
                                 max_length=max_length, template=template)
        probs = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
        return probs[:, index].tolist()

    return judge


@dataclass
class RewardJudge:
    """A thresholded scalar reward/cost model: score = 1.0 if sign * reward > threshold else 0.0.

    Calling it gives the share-of-target scores; ``raw(texts)`` gives the model's raw scalar
    outputs (unsigned) for analysis. A *cost* model (higher = more harmful, e.g.
    PKU-Alignment/beaver-7b-v1.0-cost) uses sign=-1: lower cost = safer, so score 1 = safe.
    """

    tokenizer: object
    model: object
    sign: float = 1.0
    threshold: float = 0.0
    batch_size: int = 16
    max_length: int = 512
    template: str = "{text}"

    def raw(self, texts: Sequence[str]) -> list[float]:
        return sequence_logits(self.tokenizer, self.model, list(texts),
                               batch_size=self.batch_size, max_length=self.max_length,
                               template=self.template)[:, 0].tolist()

    def __call__(self, texts: Sequence[str]) -> list[float]:
        return [float(self.sign * r > self.threshold) for r in self.raw(texts)]


def reward_judge(path: str | Path, sign: float = 1.0, threshold: float = 0.0,
                 batch_size: int = 16, device: str = "cpu", max_length: int = 512, *,
                 dtype: str = "float32", template: str = "{text}",
                 key_mapping: dict | None = None) -> RewardJudge:
    """A ``RewardJudge`` over a scalar (num_labels=1) reward or cost model; cost models take
    sign=-1. Scores the completion text alone (``template`` may wrap it)."""
    tokenizer, model = load_sequence_model(path, device=device, dtype=dtype,
                                           key_mapping=key_mapping)
    if model.config.num_labels != 1:
        raise ValueError(f"reward model {path} has {model.config.num_labels} outputs, not one "
                         "scalar (use kind: classifier)")
    return RewardJudge(tokenizer, model, float(sign), float(threshold), batch_size, max_length,
                       template)


def reward_scores(judge: RewardJudge, texts: Sequence[str]) -> list[float]:
    """The raw scalar rewards (or costs) a ``RewardJudge`` thresholds."""
    return judge.raw(texts)


# ---------------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class JudgeKind:
    """One kind of judge: its constructor and the spec keys it takes.

    ``build`` makes the judge: ``build(task)`` for a kind without a model (the task's own
    judge), ``build(path=..., device=..., **options)`` for a model kind (a task-blind scorer
    of text, read from the folder ``path`` that rule fetch_judge fetched from the spec's ``id``).
    """

    build: Callable[..., Judge]
    options: tuple[str, ...] = ()   # config spec keys (besides kind) passed to build
    required: tuple[str, ...] = ()  # config spec keys a spec of this kind cannot do without
    model: bool = False             # a fetched model (spec keys id, revision; build takes path)


MODEL_OPTIONS = ("batch_size", "max_length", "dtype", "template", "key_mapping")
RUNTIME_OPTIONS = ("path", "device")  # a model judge's, set by the job (fetched folder, device)
SOURCE_KEYS = ("id", "revision")      # where a model judge is fetched from (rule fetch_judge)

JUDGES: dict[str, JudgeKind] = {
    "exact": JudgeKind(exact_judge),
    "classifier": JudgeKind(classifier_judge, ("target_label", *MODEL_OPTIONS),
                            ("id", "target_label"), model=True),
    "reward": JudgeKind(reward_judge, ("sign", "threshold", *MODEL_OPTIONS), ("id",), model=True),
    "probe": JudgeKind(unscored, (), ("probe",)),
}
MODEL_JUDGES = tuple(name for name, kind in JUDGES.items() if kind.model)


def spec_keys(kind: str) -> tuple[str, ...]:
    """Every key a config judge spec of ``kind`` may hold: kind, probe (a hub task's exact
    log-odds, read beside any judge), the kind's options and, for a model, where it comes from."""
    entry = JUDGES[kind]
    return ("kind", "probe", *entry.options, *(SOURCE_KEYS if entry.model else ()))


def make_judge(spec: dict, task: str) -> Judge:
    """A judge from a spec: ``kind`` (a key of ``JUDGES``) and the kind's options; a model kind
    also takes ``path`` (its local folder, required) and ``device``."""
    name = spec.get("kind")
    if name not in JUDGES:
        raise ValueError(f"unknown judge kind {name!r} (known: {', '.join(JUDGES)})")
    kind = JUDGES[name]
    allowed = kind.options + (RUNTIME_OPTIONS if kind.model else ())
    options = {k: v for k, v in spec.items() if k != "kind"}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"judge kind {name!r} takes no option {unknown[0]!r} "
                         f"(options: {', '.join(allowed) or 'none'})")
    needed = [k for k in ("path", *kind.required) if k in allowed and k not in options]
    if needed:
        raise ValueError(f"judge kind {name!r} needs {' and '.join(map(repr, needed))}")
    return kind.build(**options) if kind.model else kind.build(task)
