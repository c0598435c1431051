"""Training many tiny Llama models at once: weights stacked on a leading member dimension.

An ``Ensemble`` holds M tied-embedding ``LlamaForCausalLM`` models of one architecture as one set
of stacked tensors (``model.layers.0.self_attn.q_proj.weight`` becomes shape (M, out, in)), with a
hand-written forward (``torch.bmm``, ``scaled_dot_product_attention``) that repeats HF's Llama
arithmetic op for op: RMSNorm, RoPE, SiLU MLP, sdpa with HF's mask rule, tied lm_head, and
``nn.Embedding(padding_idx=pad)``, whose lookup sends no gradient to the pad row (the lm_head
path still does). Members never mix: the training loss is the SUM of each member's own mean
loss, so each member's gradient is exactly its own; AdamW is elementwise, so one AdamW over the
stacked tensors is M independent AdamWs. What is not bitwise is float rounding (bmm vs addmm,
sdpa with a padding mask where HF had none): trained weights match ``train.finetune`` /
``train.pretrain`` to ~1e-6 relative (tests/test_ensemble.py; shared/notes/stack.md, method C).
The ensemble runs where its weights live (``Ensemble.device``, CPU or CUDA); batches move there.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from springback.train import (BETAS, LOSSES, LinearCrossEntropy, _progress, check_save_points,
                              collate, cosine_lr)

Example = tuple[list[int], list[int]]
EnsembleSaveFn = Callable[["Ensemble", int, int], None]  # save(ensemble, member, n)

LAYER = ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
         "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
         "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")
EMBED = "model.embed_tokens.weight"


def param_names(config) -> list[str]:
    """The distinct parameter names of a tied LlamaForCausalLM (``lm_head.weight`` is EMBED)."""
    layers = [f"model.layers.{i}.{p}" for i in range(config.num_hidden_layers) for p in LAYER]
    return [EMBED, *layers, "model.norm.weight"]


def check_config(config) -> None:
    """Refuse the Llama variants this forward does not reproduce."""
    rope = getattr(config, "rope_parameters", None) or {"rope_type": "default"}
    unsupported = {
        "tie_word_embeddings": not config.tie_word_embeddings,
        "attention_bias": config.attention_bias, "mlp_bias": config.mlp_bias,
        "num_key_value_heads": config.num_key_value_heads != config.num_attention_heads,
        "hidden_act": config.hidden_act != "silu", "rope_type": rope["rope_type"] != "default",
        "attention_dropout": config.attention_dropout != 0.0}
    bad = [k for k, v in unsupported.items() if v]
    if bad:
        raise ValueError(f"Ensemble supports tied, bias-free, MHA, SiLU, default-RoPE, dropout-free "
                         f"Llama only; this config differs in {bad}")


def unsupported(base) -> str | None:
    """Why ``base`` cannot train in an ensemble (None: it can): the ensemble reproduces tied,
    bias-free, dropout-free Llama in float32, on the base's device (CPU or CUDA)."""
    if getattr(base.config, "model_type", None) != "llama":
        return f"model type {getattr(base.config, 'model_type', None)!r} is not llama"
    if base.dtype != torch.float32:
        return f"{base.dtype}, not float32"
    try:
        check_config(base.config)
    except (ValueError, AttributeError, KeyError, TypeError) as err:
        return str(err)
    return None


class Ensemble(torch.nn.Module):
    """M Llama models of one config; ``weight(name)`` is the (M, ...) stack of HF's ``name``."""

    def __init__(self, config, stacked: dict[str, torch.Tensor]):
        super().__init__()
        check_config(config)
        self.config, self.names = config, list(stacked)
        self.stack = torch.nn.ParameterList(torch.nn.Parameter(t) for t in stacked.values())
        self.index = {n: i for i, n in enumerate(self.names)}
        self.size = len(next(iter(stacked.values())))

    @classmethod
    def from_state_dicts(cls, config, states: Sequence[dict]) -> "Ensemble":
        names = param_names(config)
        for s in states:
            if "lm_head.weight" in s and not torch.equal(s["lm_head.weight"], s[EMBED]):
                raise ValueError("lm_head.weight differs from the embedding: not a tied model")
        return cls(config, {n: torch.stack([s[n].detach().float() for s in states]) for n in names})

    @classmethod
    def from_models(cls, models: Sequence) -> "Ensemble":
        return cls.from_state_dicts(models[0].config, [dict(m.named_parameters()) for m in models])

    def weight(self, name: str) -> torch.Tensor:
        return self.stack[self.index[name]]

    @property
    def device(self) -> torch.device:
        """Where the stacked weights live (the members' device: every batch moves there)."""
        return self.stack[0].device

    def state_dict_of(self, i: int) -> dict[str, torch.Tensor]:
        """Member i as a ``LlamaForCausalLM.state_dict()`` (copies; lm_head shares the embedding)."""
        state = {n: self.weight(n)[i].detach().clone() for n in self.names}
        return {**state, "lm_head.weight": state[EMBED]}

    @torch.no_grad()
    def load_into(self, i: int, model):
        """Copy member i into an HF model of the same config (in place, exact); returns it."""
        for name, p in model.named_parameters():  # tied lm_head is listed once, as EMBED
            p.copy_(self.weight(name)[i])
        return model

    def to_model(self, i: int):
        """Member i as a fresh ``LlamaForCausalLM`` in eval mode."""
        from transformers import LlamaForCausalLM

        return self.load_into(i, LlamaForCausalLM(self.config).float()).eval()

    @torch.no_grad()
    def set_member(self, i: int, state: dict[str, torch.Tensor]) -> None:
        for n in self.names:
            self.weight(n)[i].copy_(state[n])

    def hidden(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final (normed) hidden states (M, B*T, H) for ids (M, B, T) and a 0/1 mask (M, B, T)."""
        c, (m, b, t) = self.config, ids.shape
        x = embed(self.weight(EMBED), ids, c.pad_token_id)
        cos, sin = rope(c, t, ids.device)
        attn_mask = None if mask is None or bool(mask.all()) else padding_mask(mask)
        for layer in range(c.num_hidden_layers):
            w = lambda p: self.weight(f"model.layers.{layer}.{p}")  # noqa: E731
            h = rms_norm(x, w("input_layernorm.weight"), c.rms_norm_eps)
            x = x + self.attention(h, w, cos, sin, attn_mask, b, t)
            h = rms_norm(x, w("post_attention_layernorm.weight"), c.rms_norm_eps)
            gate, up = linear(h, w("mlp.gate_proj.weight")), linear(h, w("mlp.up_proj.weight"))
            x = x + linear(F.silu(gate) * up, w("mlp.down_proj.weight"))
        return rms_norm(x, self.weight("model.norm.weight"), c.rms_norm_eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (M, B, T, V), equal to each member's HF logits (tied lm_head)."""
        return linear(self.hidden(ids, mask), self.weight(EMBED)).view(*ids.shape, -1)

    def losses(self, ids: torch.Tensor, mask: torch.Tensor | None,
               labels: torch.Tensor) -> torch.Tensor:
        """Each member's HF causal-LM loss (M,). The lm_head runs only at positions with a
        label (a completion-only batch is mostly prompt): the skipped logits add 0 to loss and
        gradient, so this equals HF's loss, at a third of the lm_head cost."""
        m, hidden = ids.shape[0], self.config.hidden_size
        targets = F.pad(labels, (0, 1), value=-100)[..., 1:].reshape(m, -1)  # HF's shift
        keep = targets != -100
        order = torch.argsort(~keep, dim=1, stable=True)[:, : int(keep.sum(1).max())]
        h = self.hidden(ids, mask).gather(1, order[..., None].expand(-1, -1, hidden))
        return member_losses(linear(h, self.weight(EMBED)), targets.gather(1, order))

    def attention(self, h, w, cos, sin, attn_mask, b: int, t: int) -> torch.Tensor:
        m, heads = h.shape[0], self.config.num_attention_heads
        dim = getattr(self.config, "head_dim", None) or h.shape[-1] // heads
        split = lambda y: y.view(m * b, t, heads, dim).transpose(1, 2)  # noqa: E731
        q, k, v = (split(linear(h, w(f"self_attn.{p}_proj.weight"))) for p in "qkv")
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=dim**-0.5,
                                             is_causal=attn_mask is None and t > 1)
        return linear(out.transpose(1, 2).reshape(m, b * t, -1), w("self_attn.o_proj.weight"))


def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-member ``F.linear`` without bias: x (M, N, in), w (M, out, in) -> (M, N, out)."""
    return torch.bmm(x, w.transpose(1, 2))


def embed(table: torch.Tensor, ids: torch.Tensor, pad_id: int | None) -> torch.Tensor:
    """Per-member lookup (M, B*T, H) with ``nn.Embedding(padding_idx=pad_id)``'s gradient rule:
    positions holding the pad id send no gradient to the table through the lookup."""
    m, vocab, hidden = table.shape
    flat = ids.reshape(m, -1)
    x = F.embedding(flat + vocab * torch.arange(m, device=ids.device)[:, None],
                    table.reshape(m * vocab, hidden))
    return x if pad_id is None else torch.where((flat == pad_id)[..., None], x.detach(), x)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """HF's LlamaRMSNorm (fp32) with a per-member weight (M, H)."""
    return weight[:, None] * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(config, t: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (T, head_dim) of HF's default LlamaRotaryEmbedding at positions 0..T-1."""
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    theta = config.rope_parameters["rope_theta"]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float, device=device) / dim))
    freqs = torch.arange(t, device=device).float()[:, None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def padding_mask(mask: torch.Tensor) -> torch.Tensor:
    """Boolean sdpa mask (M*B, 1, T, T): causal and key not padding (HF's sdpa mask)."""
    t = mask.shape[-1]
    causal = torch.ones(t, t, dtype=torch.bool, device=mask.device).tril()
    return causal & mask.reshape(-1, 1, 1, t).bool()


def member_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each member's own mean cross-entropy (M,) over targets != -100 (HF's ForCausalLMLoss
    after the shift); one call per member keeps HF's reduction and the logits in cache."""
    return torch.stack([F.cross_entropy(x, y, ignore_index=-100) for x, y in zip(logits, targets)])


def next_token_losses(ens: Ensemble, ids: torch.Tensor) -> torch.Tensor:
    """Each member's ``train.next_token_loss`` on its unpadded rows ids (M, B, T): the fused
    loss over every position but the last of each row (M,)."""
    m, b, t = ids.shape
    hidden = ens.hidden(ids).view(m, b, t, -1)[:, :, :-1].flatten(1, 2)
    targets, head = ids[:, :, 1:].flatten(1), ens.weight(EMBED)
    return torch.stack([LinearCrossEntropy.apply(hidden[i], head[i], targets[i])
                        for i in range(m)])


def train_step(ens: Ensemble, opt, ids, mask, labels) -> torch.Tensor:
    """One step on every member; the SUM of member losses keeps each member's gradient its own.
    ``mask`` and ``labels`` None: pretraining rows (``next_token_losses``)."""
    losses = (next_token_losses(ens, ids) if labels is None else ens.losses(ids, mask, labels))
    opt.zero_grad(set_to_none=True)
    losses.sum().backward()
    opt.step()
    return losses.detach()


def stack_batches(batches: Sequence[tuple], pad_id: int):
    """Stack per-member (ids, mask, labels) to (M, B, W), right-padding to the widest member."""
    width = max(ids.shape[1] for ids, _, _ in batches)
    fill = (pad_id, 0, -100)
    return tuple(torch.stack([F.pad(b[k], (0, width - b[k].shape[1]), value=fill[k])
                              for b in batches]) for k in range(3))


def _save_all(ens: Ensemble, save: EnsembleSaveFn, n: int) -> None:
    ens.eval()
    for i in range(ens.size):
        save(ens, i, n)
    ens.train()


def finetune_ensemble(ens: Ensemble, examples: Sequence[Sequence[Example]], *,
                      save_at: Sequence[int], save: EnsembleSaveFn, batch_size: int, lr: float,
                      seed: int, pad_id: int, loss: str = "completion") -> list[list[float]]:
    """``train.finetune`` for every member at once, member i on ``examples[i]``: the same batches
    (``train.collate``), constant lr, fresh AdamW (``BETAS``, no decay) and save points;
    ``save(ens, i, n)`` at each point (read member i with ``load_into``/``state_dict_of``; do not
    keep ``ens``). Returns each step's member losses. ``seed`` seeds torch as finetune does."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r} (one of {LOSSES})")
    if len(examples) != ens.size:
        raise ValueError(f"{len(examples)} example lists for {ens.size} members")
    for member in examples:
        check_save_points(save_at, batch_size, len(member))
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(ens.parameters(), lr=lr, betas=BETAS, weight_decay=0.0)
    pending, history = sorted(save_at), []
    for lo in range(0, max(save_at) + 1, batch_size):
        while pending and pending[0] == lo:
            _save_all(ens, save, pending.pop(0))
        if not pending:
            break
        batch = stack_batches([collate(m[lo: lo + batch_size], pad_id, loss=loss)
                               for m in examples], pad_id)
        history.append(train_step(ens, opt, *(t.to(ens.device) for t in batch)).tolist())
    ens.eval()
    return history


def pretrain_ensemble(ens: Ensemble, blocks: Sequence[torch.Tensor], *, seeds: Sequence[int],
                      tokens: int, save_at: Sequence[int], save: EnsembleSaveFn, batch_size: int,
                      lr: float, warmup: int, weight_decay: float) -> None:
    """``train.pretrain`` for every member at once: member i reads ``blocks[i]`` (its own corpus;
    every corpus has the same context) in the order of ``seeds[i]``; the same token budget,
    cosine schedule, weight decay and betas (0.9, 0.95); ``save(ens, i, n_tokens)`` at each
    budget. Build the members with ``models.build_llama(seed=...)`` and ``Ensemble.from_models``."""
    if not len(blocks) == len(seeds) == ens.size:
        raise ValueError(f"{len(blocks)} corpora and {len(seeds)} seeds for {ens.size} members")
    context = blocks[0].shape[1]
    if any(b.shape[1] != context for b in blocks):
        raise ValueError("every member's blocks must have the same context")
    total = math.ceil(tokens / (batch_size * context))
    orders = [torch.randperm(len(b), generator=torch.Generator().manual_seed(s))
              for b, s in zip(blocks, seeds)]
    opt = torch.optim.AdamW(ens.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95),
                            fused=True)
    pending, start = sorted(save_at), time.time()
    ens.train()
    for step in range(total + 1):
        while pending and pending[0] <= step * batch_size * context:
            _save_all(ens, save, pending.pop(0))
        if step == total:
            break
        rows = torch.arange(step * batch_size, (step + 1) * batch_size)
        batch = torch.stack([b[o[rows % len(b)]] for b, o in zip(blocks, orders)]).to(ens.device)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, total, peak=lr, warmup=warmup)
        losses = train_step(ens, opt, batch, None, None)
        _progress(step + 1, total, losses.mean(), (step + 1) * batch_size * context, start)
    ens.eval()
