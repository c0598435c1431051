"""Compression rate of a dataset under a model: code length in bits and bits per byte (bpb).

Accounting (as in LMIC, Delétang et al. 2024, but every document coded on its own):
- a document is coded as the sequence BOS, its tokens, EOS. BOS is given (the decoder knows it);
  every token and the EOS are coded, each at -log2 p(token | BOS and the document's earlier tokens).
  Documents never see each other: a dataset's code length is the sum of its documents' code
  lengths, whatever their order. EOS stands for the newline of a file with one document per line;
- a document whose tokens + EOS exceed ``context - 1`` is coded in windows: tokens + EOS cut into
  consecutive chunks of ``context - 1``, each coded after a fresh BOS (no overlap, so a window's
  first token is predicted from BOS alone; the coder in ``coder.py`` does the same);
- bytes = UTF-8 bytes of every document + 1 per document (the newline);
- response-only (prompt/completion documents): the code length of the response tokens (those whose
  text starts at or after the end of the prompt) and the EOS, still conditioned on BOS and the
  prompt; response bytes = UTF-8 bytes of the completion + 1.
bpb = code length / bytes; nothing is masked except where stated. A uniform model over V symbols
gives n_tokens * log2(V) / bytes, n_tokens counting one EOS per document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

LogitsFn = Callable[[torch.Tensor], torch.Tensor]
LN2 = math.log(2)


@dataclass
class Batch:
    """Windows of similar length: BOS + targets per row, right-padded (padding after a causal
    row's real tokens cannot change them, so no attention mask is needed)."""

    ids: torch.Tensor       # (rows, width) token ids
    mask: torch.Tensor      # (rows, width - 1) True where position i predicts a real target
    targets: torch.Tensor   # (n_real,) the real targets, in mask order
    response: torch.Tensor  # (n_real,) True where the target is a response token or its EOS
    document: torch.Tensor  # (n_real,) the index of each target's document in the coded set
    full: bool              # no padding: every position but the last predicts a target


@dataclass
class TextSet:
    """A held-out dataset laid out for per-document coding."""

    batches: list[Batch]
    n_bytes: int            # UTF-8 bytes + 1 per document
    response_bytes: int     # UTF-8 bytes of the completions + 1 per document (0: no prompts)
    document_bytes: list[int]  # UTF-8 bytes + 1 of each document, in the set's order


def windows(doc: Sequence[int], start: int, *, context: int,
            eos_id: int) -> list[tuple[list[int], list[bool]]]:
    """A document's targets (tokens + EOS) in chunks of context - 1, each flagged True from the
    token index ``start`` on (the response)."""
    stream, w = [*doc, eos_id], context - 1
    return [(stream[i: i + w], [j >= start for j in range(i, min(i + w, len(stream)))])
            for i in range(0, len(stream), w)]


def layout(docs: Sequence[Sequence[int]], *, context: int, bos_id: int, eos_id: int, pad_id: int,
           batch_size: int = 64, starts: Sequence[int] | None = None) -> list[Batch]:
    """Every window of every document, sorted by length (little padding), in batches of rows;
    ``starts`` gives each document's first response token (None: no response)."""
    starts = starts if starts is not None else [len(d) + 1 for d in docs]
    rows = [(*w, i) for i, (d, s) in enumerate(zip(docs, starts))
            for w in windows(d, s, context=context, eos_id=eos_id)]
    rows.sort(key=lambda r: -len(r[0]))
    return [_batch(rows[i: i + batch_size], bos_id, pad_id)
            for i in range(0, len(rows), batch_size)]


def _batch(rows: list[tuple[list[int], list[bool], int]], bos_id: int, pad_id: int) -> Batch:
    width = max(len(t) for t, _, _ in rows)
    ids = torch.full((len(rows), width + 1), pad_id, dtype=torch.long)
    ids[:, 0] = bos_id
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, (t, _, _) in enumerate(rows):
        ids[i, 1: len(t) + 1] = torch.tensor(t)
        mask[i, : len(t)] = True
    response = torch.tensor([f for _, flags, _ in rows for f in flags])
    document = torch.tensor([d for t, _, d in rows for _ in t], dtype=torch.int32)
    return Batch(ids, mask, ids[:, 1:][mask], response, document, bool(mask.all()))


def document_bytes(texts: Sequence[str]) -> list[int]:
    """Bytes of each document of a text file with one document per line (its newline counted)."""
    return [len(t.encode("utf-8")) + 1 for t in texts]


def utf8_bytes(texts: Sequence[str]) -> int:
    """Bytes of a text file with one document per line."""
    return sum(document_bytes(texts))


def by_document(values: torch.Tensor, b: Batch, n_docs: int) -> np.ndarray:
    """Per-target values of a batch (e.g. -ln p) summed by document: float64 [n_docs]."""
    return np.bincount(b.document.numpy(), weights=values.double().cpu().numpy(),
                       minlength=n_docs)


def real_logits(logits_fn: LogitsFn, b: Batch) -> torch.Tensor:
    """Logits at the real predicting positions of a batch, in target order: (n_real, vocab)."""
    logits = logits_fn(b.ids)[:, : b.mask.shape[1]]  # the last position predicts nothing
    return logits.flatten(0, 1) if b.full else logits[b.mask.to(logits.device)]


def target_nll(real: torch.Tensor, b: Batch) -> torch.Tensor:
    """-ln p of every real target of a batch (nats, float32) from its ``real_logits``."""
    return F.cross_entropy(real.float(), b.targets.to(real.device), reduction="none")


@torch.no_grad()
def code_length(logits_fn: LogitsFn, batches: list[Batch]) -> tuple[float, float]:
    """(code length of every document, code length of the responses) in bits."""
    total = response = 0.0
    for b in batches:
        nll = target_nll(real_logits(logits_fn, b), b).double().cpu()
        total, response = total + float(nll.sum()), response + float(nll[b.response].sum())
    return total / LN2, response / LN2


@torch.no_grad()
def document_lengths(logits_fn: LogitsFn, batches: list[Batch], n_docs: int) -> np.ndarray:
    """The code length of each of ``n_docs`` documents in bits (``code_length``, per document)."""
    nats = sum(by_document(target_nll(real_logits(logits_fn, b), b), b, n_docs) for b in batches)
    return nats / LN2


def bits_per_byte(logits_fn: LogitsFn, texts: Sequence[str], docs: Sequence[Sequence[int]],
                  *, context: int, bos_id: int, eos_id: int, pad_id: int) -> float:
    """bpb of ``texts`` (tokenised as ``docs``) under a model given as a logits function."""
    batches = layout(docs, context=context, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    return code_length(logits_fn, batches)[0] / utf8_bytes(texts)


def model_logits(model) -> LogitsFn:
    """Wrap a causal LM as a function from input ids (rows, width) to the logits of the first
    width - 1 positions (the output head skips the last one, which predicts nothing)."""
    def logits(ids: torch.Tensor) -> torch.Tensor:
        keep = torch.arange(ids.shape[1] - 1, device=model.device)
        return model(input_ids=ids.to(model.device), logits_to_keep=keep).logits
    return logits
