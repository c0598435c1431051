"""Stage `base` (rules/base.smk): pretraining a model size from scratch, saving the ladder."""

from __future__ import annotations

import logging
from pathlib import Path

from springback import data, models, provenance
from springback.models import load_tokenizer
from springback.train import pack_blocks, pretrain

log = logging.getLogger(__name__)


def pretrain_ladder(*, corpus: str | Path, tokenizer_dir: str | Path, world: str, size: str,
                    seed: int, arch: dict, train_cfg: dict, tokens: int,
                    outdirs: dict[int, str], device: str = "cpu") -> None:
    """Pretrain one model size from scratch on one world's corpus with one seed (initialisation
    and data order), saving a checkpoint at each ladder budget; the model trains on ``device``
    (the weights are initialised on the CPU, so every device starts from the same ones)."""
    models.check_device(device)
    tok = load_tokenizer(tokenizer_dir)
    docs = tok(data.read_table(corpus, ("text",))["text"].tolist(),
               add_special_tokens=False)["input_ids"]
    blocks = pack_blocks(docs, context=train_cfg["context"], bos_id=tok.bos_token_id,
                         eos_id=tok.eos_token_id)
    model = models.build_llama(len(tok), **arch, context=train_cfg["context"],
                               seed=seed, bos_id=tok.bos_token_id,
                               eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    params = {"arch": arch, "pretrain": train_cfg, "tokens": tokens, "world": world}
    log.info("pretrain %s: %d parameters, %d corpus tokens, budget %d, on %s",
             size, models.n_params(model), blocks.numel(), tokens, device)

    def save(m, n_tokens: int) -> None:
        models.save_model(m, outdirs[n_tokens], provenance.record(
            params, world=world, size=size, tokens=n_tokens, seed=seed,
            n_params=models.n_params(m),
            n_params_nonembedding=models.n_params_nonembedding(m), parent=None), tokenizer=tok)

    pretrain(model, blocks, tokens=tokens, save_at=sorted(outdirs), save=save,
             batch_size=train_cfg["batch_size"], lr=train_cfg["lr"], warmup=train_cfg["warmup"],
             weight_decay=train_cfg["weight_decay"], seed=seed, device=device)
