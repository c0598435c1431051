"""Building, saving and loading causal language models.

Toy mode builds tiny Llama-style models from scratch; hub mode loads real ones. Either way a model
is a ``save_pretrained`` directory with safetensors weights and a ``provenance.json`` beside them,
written atomically (into a temporary sibling, then renamed), so a half-written directory is never
taken for a finished one.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator
import os
import shutil
import tempfile
from pathlib import Path

import torch


def build_llama(vocab_size: int, *, hidden: int, layers: int, heads: int, intermediate: int,
                context: int, seed: int, bos_id: int, eos_id: int, pad_id: int):
    """A freshly initialised, tied-embedding ``LlamaForCausalLM`` (fp32, CPU)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads,
                         intermediate_size=intermediate, max_position_embeddings=context,
                         tie_word_embeddings=True, bos_token_id=bos_id, eos_token_id=eos_id,
                         pad_token_id=pad_id)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).float()


def check_device(device: str) -> None:
    """Refuse a CUDA device that torch cannot see, with one line naming it (a job asked for
    toy.device cuda, or a hub runtime, on a machine without one)."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but torch {torch.__version__} sees no "
                           "CUDA device here")


def n_params(model) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


EMBEDDING_NAMES = ("embed_tokens", "lm_head")  # token embedding and output head (Llama naming)


def n_params_nonembedding(model) -> int:
    """Parameters outside the token embedding and output head (the size axis of scaling
    studies: attention, MLP and norms)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not any(e in name for e in EMBEDDING_NAMES))


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to fill; on success it replaces ``path`` in one
    rename, on any error it is removed, so a half-written directory is never taken as done."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_model(model, path: str | Path, provenance: dict, tokenizer=None) -> None:
    """save_pretrained (safetensors) + provenance.json into ``path``, atomically."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1, sort_keys=True))


OTHER_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt")


def check_model_dir(path: Path) -> None:
    """Refuse a model directory that is missing, has no config.json, or has no readable
    safetensors weights, with one line naming the directory or file."""
    from safetensors import safe_open

    if not path.is_dir():
        raise FileNotFoundError(f"model directory {path} does not exist")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model directory {path} has no config.json")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        other = sorted(p.name for p in path.iterdir() if p.suffix in OTHER_WEIGHTS)
        raise FileNotFoundError(f"model directory {path} has no *.safetensors weights (found: "
                                f"{', '.join(other) or 'none'}); springback loads safetensors only")
    for file in weights:
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except Exception as err:  # safetensors raises its own error type for a corrupt header
            raise ValueError(f"model weights {file} are unreadable: {err}") from err


def load_model(path: str | Path, *, dtype: torch.dtype | str = torch.float32,
               device: str = "cpu", trust_remote_code: bool = False,
               device_map: str | None = None):
    """Load a causal LM from a local directory, safetensors only (dtype may be a name). A LoRA
    checkpoint (``adapter_config.json``: a kept checkpoint of a LoRA run) is loaded onto its base,
    named by its provenance (``params.base``) or by peft's ``base_model_name_or_path``.
    ``device_map="auto"``: the layers are spread over every visible GPU by accelerate's big-model
    dispatch (model parallel, one process: a base too large for one GPU; hub.gpus > 1)."""
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    path = Path(path)
    check_device(device)
    if (path / "adapter_config.json").is_file():
        return load_adapter(path, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                            device_map=device_map)
    check_model_dir(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True,
                                                 trust_remote_code=trust_remote_code,
                                                 device_map=device_map)
    return (model if device_map else model.to(device)).eval()


def load_adapter(path: Path, *, dtype: torch.dtype, device: str, trust_remote_code: bool,
                 device_map: str | None = None):
    """A LoRA adapter folder loaded onto its base model (both safetensors)."""
    from peft import PeftModel

    if not (path / "adapter_model.safetensors").is_file():
        raise FileNotFoundError(f"adapter directory {path} has no adapter_model.safetensors")
    config = json.loads((path / "adapter_config.json").read_text())
    base = (read_provenance(path).get("params", {}).get("base")
            or config.get("base_model_name_or_path"))
    if not base:
        raise ValueError(f"adapter directory {path} names no base model")
    model = load_model(base, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                       device_map=device_map)
    adapted = PeftModel.from_pretrained(model, str(path))
    return (adapted if device_map else adapted.to(device)).eval()


def read_provenance(path: str | Path) -> dict:
    file = Path(path) / "provenance.json"
    return json.loads(file.read_text()) if file.is_file() else {}


def load_tokenizer(path: str | Path):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(path))


def snapshot(model) -> dict:
    """Every weight of a model, cloned (``model.load_state_dict`` puts them back)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
