"""Compression rate of a dataset under a model: bits per byte (bpb).

Accounting (as in LMIC, Delétang et al. 2024, adapted to whole documents):
- the dataset is a list of documents; each is encoded as its tokens followed by EOS, the EOS
  standing for the one-byte newline separator of a text file with a document per line;
- the concatenated stream is cut into rows of ``context - 1`` tokens, each prefixed with BOS
  (the same packing as pretraining), and *every* stream token is predicted exactly once, the first
  one of a row from BOS alone; nothing is masked (prompts are part of the text);
- code length = the sum of -log2 p(token | preceding tokens in the row) over all stream tokens,
  dropped tail tokens (a last partial row) included by padding that row;
- bytes = UTF-8 bytes of every document + 1 per document (the newline).
bpb = code length / bytes. For a uniform model over V symbols this is n_tokens * log2(V) / bytes.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def stream_rows(docs: Sequence[Sequence[int]], *, context: int, bos_id: int, eos_id: int,
                pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of BOS + up to context-1 stream tokens (last row padded) and a mask of real tokens."""
    stream = np.fromiter((t for d in docs for t in (*d, eos_id)), dtype=np.int64)
    width = context - 1
    n_rows = math.ceil(len(stream) / width)
    padded = np.full(n_rows * width, pad_id, dtype=np.int64)
    padded[: len(stream)] = stream
    mask = np.zeros(n_rows * width, dtype=bool)
    mask[: len(stream)] = True
    bos = np.full((n_rows, 1), bos_id, dtype=np.int64)
    rows = np.concatenate([bos, padded.reshape(n_rows, width)], axis=1)
    return torch.from_numpy(rows), torch.from_numpy(mask.reshape(n_rows, width))


@torch.no_grad()
def stream_logprobs(logits_fn: LogitsFn, rows: torch.Tensor, *, batch_size: int = 64):
    """Log-softmax over the vocabulary at every predicting position: (rows, width, vocab)."""
    out = [logits_fn(rows[i: i + batch_size])[:, :-1].float().log_softmax(-1)
           for i in range(0, len(rows), batch_size)]
    return torch.cat(out)


def code_length_bits(logprobs: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor) -> float:
    """Total -log2 p of the real stream tokens given their log-probability tensor."""
    targets = rows[:, 1:]
    nll = -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return float(nll[mask].sum() / math.log(2))


def utf8_bytes(texts: Sequence[str]) -> int:
    """Bytes of a text file with one document per line."""
    return sum(len(t.encode("utf-8")) + 1 for t in texts)


def bits_per_byte(logits_fn: LogitsFn, texts: Sequence[str], docs: Sequence[Sequence[int]], *,
                  context: int, bos_id: int, eos_id: int, pad_id: int) -> float:
    """bpb of ``texts`` (tokenised as ``docs``) under a model given as a logits function."""
    rows, mask = stream_rows(docs, context=context, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    bits = code_length_bits(stream_logprobs(logits_fn, rows), rows, mask)
    return bits / utf8_bytes(texts)


def model_logits(model) -> LogitsFn:
    """Wrap a causal LM as a function from input ids to logits."""
    return lambda ids: model(input_ids=ids).logits
