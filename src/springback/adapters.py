"""What a rebound run trains: the whole model (``full``) or a LoRA adapter on a frozen, resident
base (``lora``, peft).

A :class:`Trainable` holds the model one process trains run after run. ``fresh(seed)`` returns it
to the base (full: the base's weights copied back; LoRA: the adapter re-initialised from the
seed, B = 0, so the model *is* the base), ``snapshot()`` / ``restore()`` save and reload what
training changes (every weight, or the adapter's alone: a few MB for a 7B model), and a kept
checkpoint of a LoRA run is the adapter folder (``adapter_config.json`` +
``adapter_model.safetensors``), loaded back onto the base by ``models.load_model``.

LoRA on a frozen base is also how real models train without pure-bf16 rounding: the base may be
bf16 while peft keeps the adapter in fp32 (``autocast_adapter_dtype``), and full fine-tuning on
a GPU keeps fp32 master weights with bf16 autocast (``train.finetune_trl``).
"""

from __future__ import annotations

import copy

import torch

from springback.models import snapshot

KINDS = ("full", "lora")
LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.0,
                 "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def lora_config(spec: dict):
    from peft import LoraConfig

    spec = {**LORA_DEFAULTS, **spec}
    return LoraConfig(r=spec["r"], lora_alpha=spec["alpha"], lora_dropout=spec["dropout"],
                      target_modules=list(spec["targets"]), bias="none", task_type="CAUSAL_LM")


def check_spec(spec: dict | None) -> dict:
    """The adapter spec with defaults, or a one-line error naming the bad key."""
    spec = dict(spec or {"kind": "full"})
    kind = spec.get("kind", "full")
    if kind not in KINDS:
        raise ValueError(f"rebound.adapter.kind {kind!r} is not one of {', '.join(KINDS)}")
    unknown = sorted(set(spec) - {"kind"} - (set(LORA_DEFAULTS) if kind == "lora" else set()))
    if unknown:
        raise ValueError(f"rebound.adapter takes no key {unknown[0]!r} for kind {kind!r}")
    return {"kind": kind, **({**LORA_DEFAULTS, **spec} if kind == "lora" else {})}


class Trainable:
    """The model of a job's runs, trained in place; the base itself stays untouched (full) or
    frozen under the adapter (LoRA)."""

    def __init__(self, base, spec: dict | None = None, *, once: bool = False):
        """``once``: ``base`` is handed over to be trained a single time (a released pair's arm):
        full fine-tuning then trains it in place, with no copy and no snapshot to return to."""
        self.spec = check_spec(spec)
        self._base = None
        if self.spec["kind"] == "full":
            self.model = base if once else copy.deepcopy(base)
            if not once:
                self._base = self.snapshot()
        else:
            from peft import get_peft_model

            missing = [t for t in self.spec["targets"]
                       if not any(n.endswith(t) for n, _ in base.named_modules())]
            if missing:
                raise ValueError(f"rebound.adapter.targets {missing} name no module of "
                                 f"{type(base).__name__}")
            self.model = get_peft_model(base, lora_config(self.spec))
        self.model.eval()

    @property
    def lora(self) -> bool:
        return self.spec["kind"] == "lora"

    def fresh(self, seed: int):
        """The model reset to the base: LoRA, a new adapter drawn from ``seed`` (B = 0)."""
        if not self.lora:
            if self._base is not None:
                self.restore(self._base)
            return self.model
        from peft.tuners.lora import LoraLayer

        torch.manual_seed(seed)
        for module in self.model.modules():
            if isinstance(module, LoraLayer):
                module.reset_lora_parameters("default", True)
        return self.model

    def snapshot(self) -> dict:
        """What training changes, cloned: every weight (full) or the adapter's trainable ones."""
        if not self.lora:
            return snapshot(self.model)
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def restore(self, saved: dict) -> None:
        if not self.lora:
            self.model.load_state_dict(saved)
            return
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)

    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)
