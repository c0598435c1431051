"""Checkpoints as LoRA adapters, and fine-tuning through TRL's SFTTrainer (the GPU path), on CPU.

- TRL's SFTTrainer, fed the plain loop's examples in the same order, reaches the plain loop's
  weights and save points (fp32, no clipping);
- a fresh LoRA adapter leaves the model equal to its base; training moves the adapter only;
  snapshot / restore and seeding are exact;
- a LoRA rebound job keeps adapter folders that load back onto the base and give the metrics
  recorded in memory.
"""

from __future__ import annotations

import torch

from springback.models import build_llama

VOCAB, PAD = 61, 0  # PAD: the tiny tokenizer's pad id (TRL pads with it)
TOL = 1e-4


def model(seed: int = 0):
    torch.set_num_threads(1)
    return build_llama(VOCAB, hidden=32, layers=2, heads=2, intermediate=64, context=64,
                       seed=seed, bos_id=PAD, eos_id=PAD, pad_id=PAD)


def examples(seed: int, n: int):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        p = torch.randint(3, VOCAB, (int(torch.randint(2, 10, (1,), generator=g)),), generator=g)
        c = torch.randint(3, VOCAB, (int(torch.randint(1, 8, (1,), generator=g)),), generator=g)
        out.append(([PAD] + p.tolist(), c.tolist() + [PAD]))
    return out


def trained(tune, save_at, **kw):
    m = model()
    seen = {}
    tune(m, examples(1, max(save_at)), save_at=save_at, batch_size=4, lr=1e-2, seed=3,
         pad_id=PAD, save=lambda mm, n: seen.__setitem__(
             n, {k: v.detach().clone() for k, v in mm.named_parameters()}), **kw)
    return seen


def worst(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max() / b[k].abs().max()) for k in b)


def test_trl_sft_equals_plain_loop(tiny_tokenizer, tmp_path, monkeypatch):
    """The model's vocabulary is smaller than the tokenizer's: TRL only pads with its pad id."""
    from springback.algorithms import finetune_trl
    from springback.train import finetune

    assert tiny_tokenizer.pad_token_id == PAD  # the examples pad and end with PAD
    monkeypatch.chdir(tmp_path)
    save_at = [0, 8, 16]
    plain = trained(finetune, save_at)
    trl = trained(finetune_trl, save_at, tokenizer=tiny_tokenizer)
    assert sorted(plain) == sorted(trl) == save_at
    assert worst(plain[0], trl[0]) == 0.0
    assert worst(plain[8], plain[0]) > 1e-3  # training moved the weights
    gaps = {n: worst(trl[n], plain[n]) for n in (8, 16)}
    print(gaps)
    assert max(gaps.values()) < TOL, gaps


def test_lora_adapter_starts_at_base_and_trains_alone():
    from springback.adapters import Trainable
    from springback.train import finetune

    base = model()
    before = {k: v.detach().clone() for k, v in base.state_dict().items()}
    ids = torch.tensor([[PAD, 5, 9, 11, 4]])
    with torch.no_grad():
        ref = base(input_ids=ids).logits
    t = Trainable(base, {"kind": "lora", "r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]})
    m = t.fresh(seed=1)
    with torch.no_grad():
        assert torch.equal(m(input_ids=ids).logits, ref)  # B = 0: the adapter adds nothing
    start = t.snapshot()
    assert start and all("lora_" in k for k in start)
    assert t.trainable_params() == sum(v.numel() for v in start.values())
    finetune(m, examples(1, 8), save_at=[8], batch_size=4, lr=1e-2, seed=1, pad_id=PAD,
             save=lambda *_: None)
    with torch.no_grad():
        moved = m(input_ids=ids).logits
    assert (moved - ref).abs().max() > 1e-4
    frozen = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
              for k, v in m.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(frozen[k], v) for k, v in before.items())  # the base never moved
    t.restore(start)
    with torch.no_grad():
        assert torch.equal(m(input_ids=ids).logits, ref)
    again = Trainable(model(), {"kind": "lora", "r": 4, "alpha": 8,
                                "targets": ["q_proj", "v_proj"]})
    again.fresh(seed=1)
    assert all(torch.equal(v, again.snapshot()[k]) for k, v in start.items())  # seeded init


def test_adapter_spec_errors_name_the_key():
    import pytest

    from springback.adapters import Trainable, check_spec

    with pytest.raises(ValueError, match="rebound.adapter.kind 'qlora'"):
        check_spec({"kind": "qlora"})
    with pytest.raises(ValueError, match="no key 'rank'"):
        check_spec({"kind": "lora", "rank": 8})
    with pytest.raises(ValueError, match=r"targets \['c_attn'\]"):
        Trainable(model(), {"kind": "lora", "targets": ["c_attn"]})


def test_lora_rebound_keeps_adapters_that_reload(pretrained_model, tiny_tokenizer, tiny_world_files,
                                                 tmp_path, monkeypatch):
    """No base log-probs cached (as for a real vocabulary): the KL reference is recomputed from
    the wrapped base with its adapter off, and must equal KL to the base loaded on its own."""
    import json

    from springback import evaluate

    monkeypatch.setattr(evaluate, "CACHE_LIMIT", 0)

    import pandas as pd

    from springback import data, models, runs
    from springback.evaluate import eval_set, evaluate_checkpoint, set_base
    from springback.pipeline import rebound

    base = tmp_path / "base"
    models.save_model(pretrained_model, base, {"size": "s", "tokens": 1, "seed": 0,
                                               "n_params": models.n_params(pretrained_model)},
                      tokenizer=tiny_tokenizer)
    eval_cfg = {"max_new_tokens": 4, "temperature": 1.0, "sample": False, "context": 32,
                "text_at": None, "batch_size": 64, "documents": {}}
    out = tmp_path / "run"
    rebound.rebound(
        base_dir=base, files=tiny_world_files, tasks=["sentiment"], directions=["forward"],
        seeds=[1], n_pos=[8, 16], n_neg=[0, 8, 16],
        train={"lr": 1e-2, "batch_size": 8, "loss": "completion"}, eval_cfg=eval_cfg,
        keep="grid", out_metrics=out / "metrics.csv", out_prompts=out / "prompts.parquet",
        out_documents=out / "documents.parquet", out_models=out / "models", ensemble=True,
        adapter={"kind": "lora", "r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]})
    rows = pd.read_csv(out / "metrics.csv")
    assert len(rows) == 3 * 3
    assert json.loads((out / "metrics.csv.provenance.json").read_text())["params"]["adapter"]["kind"] == "lora"
    kept = runs.run_dir(out / "models", "sentiment", "forward", 1, 16, 16)
    assert (kept / "adapter_model.safetensors").is_file() and not (kept / "config.json").exists()
    loaded = models.load_model(kept)
    ev = eval_set(tiny_tokenizer, task="sentiment",
                  tables=data.task_files(tiny_world_files, "sentiment"),
                  pretrain_heldout=tiny_world_files["pretrain_heldout"], eval_cfg=eval_cfg)
    set_base(models.load_model(base), ev)
    metrics, _ = evaluate_checkpoint(loaded, tiny_tokenizer, ev, seed=1, text=True, sample=False)
    row = rows.query("n_pos == 16 and n_neg == 16").iloc[0]
    compared = ["logodds", "cue_gap", "kl_to_base"] + [c for c in metrics if c.startswith("bpb_")]
    assert len(compared) > 3 and metrics["kl_to_base"] > 1e-4  # the adapter moved the model
    for col in compared:
        assert abs(metrics[col] - row[col]) < 1e-4, col
    assert abs(rows.query("n_pos == 16 and n_neg == 0")["logodds"].iloc[0]
               - rows.query("n_pos == 0 and n_neg == 0")["logodds"].iloc[0]) > 1e-3


def test_full_trainable_once_trains_the_given_model_without_a_copy():
    from springback.adapters import Trainable
    from springback.train import finetune

    given = model()
    before = {k: v.detach().clone() for k, v in given.state_dict().items()}
    t = Trainable(given, {"kind": "full"}, once=True)
    assert t.fresh(seed=1) is given and t._base is None
    finetune(given, examples(1, 8), save_at=[8], batch_size=4, lr=1e-2, seed=1, pad_id=PAD,
             save=lambda *_: None)
    assert any(not torch.equal(v, given.state_dict()[k]) for k, v in before.items())
    other = model()
    kept = Trainable(other, {"kind": "full"})  # the default copies and can return to the base
    assert kept.fresh(seed=1) is not other and kept._base is not None
