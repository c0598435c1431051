"""Training loops: pretraining from scratch and fine-tuning on prompt/completion examples.

Plain PyTorch loops over a Hugging Face model: on 2 CPU cores they run ~1.5x faster than TRL's
SFTTrainer at these sizes (shared/notes/stack.md; see benchmarks/throughput.py) and keep every
step deterministic for a given seed and thread count.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

SaveFn = Callable[[object, int], None]
LOSS_ROWS = 512  # rows per chunk of the fused loss: 512 x a 600-word head = 1.2 MB, in cache


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of the logits ``hidden @ weight.T`` against ``targets``, computed chunk
    by chunk of LOSS_ROWS rows with its gradient in the same pass: the full logits, their
    log-softmax and its backward are never materialised. The gradient of the logits is formed as
    ``F.cross_entropy``'s backward forms it ((softmax - one-hot) / n, scaled before the matrix
    products), so values and gradients equal ``F.cross_entropy(hidden @ weight.T, targets)`` up
    to float rounding."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor):
        n, total = len(hidden), hidden.new_zeros(())
        grad_h, grad_w = torch.empty_like(hidden), torch.zeros_like(weight)
        for lo in range(0, n, LOSS_ROWS):
            h, t = hidden[lo: lo + LOSS_ROWS], targets[lo: lo + LOSS_ROWS]
            rows = torch.arange(len(t), device=t.device)
            logp = torch.log_softmax(h @ weight.T, -1)
            total -= logp[rows, t].sum()
            grad = logp.exp_().mul_(1 / n)
            grad[rows, t] -= 1 / n
            torch.mm(grad, weight, out=grad_h[lo: lo + LOSS_ROWS])
            grad_w.addmm_(grad.T, h)
        ctx.save_for_backward(grad_h, grad_w)
        return total / n

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None


def next_token_loss(model, ids: torch.Tensor) -> torch.Tensor:
    """The causal-LM loss HF computes for ``model(input_ids=ids, labels=ids)`` on unpadded rows
    (mean over every position but the last), through ``LinearCrossEntropy``: the output head
    runs on the predicting positions only and no key/value cache is built."""
    hidden = model.model(input_ids=ids, use_cache=False).last_hidden_state[:, :-1]
    return LinearCrossEntropy.apply(hidden.flatten(0, 1), model.lm_head.weight,
                                    ids[:, 1:].flatten())


def pack_blocks(docs: Sequence[Sequence[int]], *, context: int, bos_id: int,
                eos_id: int) -> torch.Tensor:
    """Concatenate documents (each followed by EOS) and cut into rows of BOS + context-1 tokens."""
    stream = np.fromiter((t for d in docs for t in (*d, eos_id)), dtype=np.int64)
    width = context - 1
    n_rows = len(stream) // width
    rows = stream[: n_rows * width].reshape(n_rows, width)
    bos = np.full((n_rows, 1), bos_id, dtype=np.int64)
    return torch.from_numpy(np.concatenate([bos, rows], axis=1))


def cosine_lr(step: int, total: int, *, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``floor * peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain(model, blocks: torch.Tensor, *, tokens: int, save_at: Sequence[int], save: SaveFn,
             batch_size: int, lr: float, warmup: int, weight_decay: float, seed: int,
             device: str = "cpu") -> None:
    """Next-token training on packed blocks for ``tokens`` tokens (cycling the corpus if needed).

    Tokens are counted as batch_size x context per step; ``save(model, n_tokens)`` is called at each
    budget in ``save_at`` (0 = the random initialisation). The model and the blocks move to
    ``device``; the loss is ``next_token_loss``, the optimiser a fused AdamW (equal to the
    for-loop AdamW up to float rounding).
    """
    torch.manual_seed(seed)
    context = blocks.shape[1]
    total = math.ceil(tokens / (batch_size * context))
    order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))
    model.to(device)
    blocks, order = blocks.to(device), order.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                            betas=(0.9, 0.95), fused=True)
    pending = sorted(save_at)
    model.train()
    start = time.time()
    for step in range(total + 1):
        seen = step * batch_size * context
        while pending and pending[0] <= seen:
            save(model, pending.pop(0))
        if step == total:
            break
        rows = torch.arange(step * batch_size, (step + 1) * batch_size, device=device)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, total, peak=lr, warmup=warmup)
        loss = next_token_loss(model, blocks[order[rows % len(blocks)]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _progress(step + 1, total, loss.detach(), (step + 1) * batch_size * context, start)
    model.eval()


def _progress(step: int, total: int, loss: torch.Tensor | float, tokens: int,
              start: float) -> None:
    """Log the loss and throughput every 5 % of the steps (``loss`` is read only then: on a GPU
    reading it waits for the step)."""
    if step % max(1, total // 20) == 0 or step == total:
        elapsed = time.time() - start
        rate = tokens / max(elapsed, 1e-9)
        eta = elapsed * (total - step) / step
        log.info("step %d/%d loss %.4f tokens %d (%.0f tok/s, eta %.0fs)",
                 step, total, float(loss), tokens, rate, eta)


def collate(examples: Sequence[tuple[list[int], list[int]]], pad_id: int, *,
            loss: str = "completion"):
    """Right-padded input ids, attention mask and labels. ``loss="completion"`` masks the prompt
    (the loss is on the answer only); ``"full"`` trains on every token after the start symbol."""
    width = max(len(p) + len(c) for p, c in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (prompt, completion) in enumerate(examples):
        seq = prompt + completion
        first = len(prompt) if loss == "completion" else 1
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, first: len(seq)] = torch.tensor(seq[first:])
        mask[i, : len(seq)] = 1
    return ids, mask, labels


LOSSES = ("completion", "full")
BETAS = (0.9, 0.999)  # AdamW betas of fine-tuning (PyTorch defaults; eps 1e-8, no weight decay)


def check_save_points(save_at: Sequence[int], batch_size: int, n_examples: int) -> None:
    """Every save point must be a whole number of batches, so every optimiser step sees exactly
    ``batch_size`` examples wherever the grid puts its points."""
    off = [n for n in save_at if n % batch_size]
    if off:
        raise ValueError(f"save points {off} are not multiples of the batch size {batch_size}")
    if max(save_at) > n_examples:
        raise ValueError(f"asked for {max(save_at)} examples but the dataset has {n_examples}")


def finetune(model, examples: Sequence[tuple[list[int], list[int]]], *, save_at: Sequence[int],
             save: SaveFn, batch_size: int, lr: float, seed: int, pad_id: int,
             loss: str = "completion") -> None:
    """One pass of SFT over ``examples`` in the given order: constant learning rate, a fresh
    AdamW (betas ``BETAS``, no weight decay), every step exactly ``batch_size`` examples.

    Because every save point is a batch boundary of the same run, the model handed to
    ``save(model, n)`` equals a model trained the same way on the first n examples alone
    (0 = before any step; the model is in eval mode during the call and must not be kept).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r} (one of {LOSSES})")
    check_save_points(save_at, batch_size, len(examples))
    torch.manual_seed(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]  # a LoRA adapter's alone
    opt = torch.optim.AdamW(trainable, lr=lr, betas=BETAS, weight_decay=0.0)
    pending = sorted(save_at)
    model.eval()
    for lo in range(0, max(save_at) + 1, batch_size):
        while pending and pending[0] == lo:
            save(model, pending.pop(0))
        if not pending:
            break
        model.train()
        batch = collate(examples[lo: lo + batch_size], pad_id, loss=loss)
        ids, mask, labels = (t.to(model.device) for t in batch)
        step_loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        step_loss.backward()
        opt.step()
        model.eval()
