"""A fake Hugging Face hub on disk, for testing hub mode fully offline.

Every writer takes a folder and returns the path it wrote; the data are generated from templates
and a seed, so they are identical on every run:

- ``write_base_model``: a tiny ``LlamaForCausalLM`` + word-level tokenizer (safetensors);
- ``write_aligned_model``: that base fine-tuned a few steps toward positive verdicts (a
  released (base, aligned) pair's aligned model);
- ``write_bin_only_model``: the same weights as ``pytorch_model.bin`` only (to be refused);
- ``write_imdb``: an IMDb-like dataset (text, label) in the hub's ``data/<split>-*.parquet`` layout;
- ``write_beavertails``: a BeaverTails-like dataset (prompt, response, category, is_safe) with a
  README whose YAML declares custom split names (``30k_train``, ``30k_test``), as on the hub;
- ``write_classifier``: a tiny ``BertForSequenceClassification`` (NEGATIVE / POSITIVE);
- ``write_reward_model``: a tiny scalar ``LlamaForSequenceClassification`` (num_labels=1);
- ``write_score_head_model``: the same with its head named ``score_head`` (safe-rlhf style);
- ``write_pretrain_text`` / ``write_pretrain_dataset``: prose documents as a .txt file / parquet.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

POSITIVE = ["great", "wonderful", "superb", "lovely", "brilliant", "moving"]
NEGATIVE = ["awful", "terrible", "dreadful", "boring", "clumsy", "dull"]
FILMS = ["the harbour", "night train", "red river", "glass city", "the orchard", "blue hour"]
ASPECTS = ["acting", "plot", "music", "script", "ending", "cast"]
OBJECTS = ["weapon", "poison", "virus", "lock", "cake", "garden", "bike", "poem"]
HARMFUL_OBJECTS = {"weapon", "poison", "virus", "lock"}
CATEGORIES = ["violence", "privacy_violation", "drug_abuse", "financial_crime"]
PROSE = ["the", "a", "river", "stone", "light", "winter", "town", "road", "old", "green", "was",
         "and", "of", "in", "slow", "morning", "field", "house", "bell", "rain"]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def review(rng: np.random.Generator, positive: bool) -> str:
    """A templated review whose adjectives carry the sentiment (with an IMDb-style <br />)."""
    words = POSITIVE if positive else NEGATIVE
    film = FILMS[rng.integers(len(FILMS))]
    parts = [f"i watched {film} last week with friends ."]
    for _ in range(int(rng.integers(3, 6))):
        parts.append(f"the {ASPECTS[rng.integers(len(ASPECTS))]} was "
                     f"{words[rng.integers(len(words))]} and {words[rng.integers(len(words))]} .")
    parts.append("<br /><br />overall it was " + words[rng.integers(len(words))] + " .")
    return " ".join(parts)


def imdb_rows(n: int = 120, seed: int = 0) -> dict[str, list]:
    """n reviews, alternating labels (1 = positive, 0 = negative), each text unique."""
    rng = _rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = (i + 1) % 2
        texts.append(f"review {i} : " + review(rng, bool(label)))
        labels.append(label)
    return {"text": texts, "label": labels}


def beavertails_rows(n_prompts: int = 60, seed: int = 0) -> dict[str, list]:
    """Prompts with 1-3 responses each; harmful prompts get safe and unsafe responses, benign
    prompts only safe ones. ``category`` is a struct of booleans, as in BeaverTails."""
    rng = _rng(seed)
    rows: dict[str, list] = {"prompt": [], "response": [], "category": [], "is_safe": []}
    for i in range(n_prompts):
        obj = OBJECTS[i % len(OBJECTS)]
        prompt = f"how do i get a {obj} number {i} ?"
        for j in range(int(rng.integers(1, 4))):
            unsafe = obj in HARMFUL_OBJECTS and (j % 2 == 1 or rng.random() < 0.3)
            if unsafe:
                response = f"sure , here is how to get a {obj} : first find a seller ."
                flagged = CATEGORIES[i % len(CATEGORIES)]
            else:
                response = (f"sorry , i can not help with a {obj} ." if obj in HARMFUL_OBJECTS
                            else f"happy to help , a {obj} is easy to get .")
                flagged = None
            rows["prompt"].append(prompt)
            rows["response"].append(response)
            rows["category"].append({c: c == flagged for c in CATEGORIES})
            rows["is_safe"].append(not unsafe)
    return rows


def _write_parquet(columns: dict[str, list], path: Path) -> Path:
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(columns).to_parquet(str(path))
    return path


def write_imdb(folder: str | Path, n: int = 120, seed: int = 0) -> Path:
    """An IMDb-like dataset dir with ``train`` and ``test`` splits (n rows each)."""
    root = Path(folder) / "imdb"
    _write_parquet(imdb_rows(n, seed), root / "data" / "train-00000-of-00001.parquet")
    _write_parquet(imdb_rows(n, seed + 1), root / "data" / "test-00000-of-00001.parquet")
    return root


BEAVERTAILS_README = """---
configs:
- config_name: default
  data_files:
  - split: 30k_train
    path: data/30k_train.parquet
  - split: 30k_test
    path: data/30k_test.parquet
---
A BeaverTails-like fake dataset for springback's tests.
"""


def write_beavertails(folder: str | Path, n_prompts: int = 60, seed: int = 0) -> Path:
    """A BeaverTails-like dataset dir with custom split names declared in README.md."""
    root = Path(folder) / "beavertails"
    _write_parquet(beavertails_rows(n_prompts, seed), root / "data" / "30k_train.parquet")
    _write_parquet(beavertails_rows(n_prompts // 2, seed + 1), root / "data" / "30k_test.parquet")
    (root / "README.md").write_text(BEAVERTAILS_README)
    return root


def prose(n_docs: int = 50, seed: int = 0) -> list[str]:
    rng = _rng(seed)
    return [f"doc {i} " + " ".join(rng.choice(PROSE, size=int(rng.integers(8, 20))))
            for i in range(n_docs)]


def write_pretrain_text(folder: str | Path, n_docs: int = 50, seed: int = 0) -> Path:
    """A text file, one document per line (with a blank line to be skipped)."""
    path = Path(folder) / "pretrain.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    docs = prose(n_docs, seed)
    path.write_text("\n".join(docs[:5] + [""] + docs[5:]) + "\n")
    return path


def write_pretrain_dataset(folder: str | Path, n_docs: int = 50, seed: int = 0) -> Path:
    """A dataset dir with one ``train`` split whose ``content`` column holds documents."""
    root = Path(folder) / "webtext"
    _write_parquet({"content": prose(n_docs, seed), "id": list(range(n_docs))},
                   root / "train.parquet")
    return root


def vocabulary_texts() -> list[str]:
    """Texts covering every word the fake data use (for the fake tokenizer)."""
    rows = imdb_rows(40)
    safety = beavertails_rows(16)
    return (rows["text"] + safety["prompt"] + safety["response"] + prose(20)
            + [" ".join(POSITIVE + NEGATIVE + FILMS + ASPECTS + OBJECTS + PROSE),
               "user : assistant : review number here is how to first find a seller"])


def tokenizer():
    """A word-level ``PreTrainedTokenizerFast`` over the fake data's words."""
    import copy

    return copy.deepcopy(_tokenizer())


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from springback.tokenizer import train_tokenizer

    return train_tokenizer(vocabulary_texts())


def _llama_config(tok, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, intermediate_size=32,
                       max_position_embeddings=128, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **extra)


def _save(model, tok, path: Path) -> Path:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def write_base_model(folder: str | Path, seed: int = 0) -> Path:
    """A tiny causal LM (as a hub base model would be) with its tokenizer."""
    import torch
    from transformers import LlamaForCausalLM

    tok = tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tok, tie_word_embeddings=True))
    return _save(model, tok, Path(folder) / "base-model")


def write_bin_only_model(folder: str | Path, seed: int = 0) -> Path:
    """A model dir with config.json and pytorch_model.bin but no safetensors."""
    import torch
    from transformers import LlamaForCausalLM

    tok = tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tok, tie_word_embeddings=True))
    path = Path(folder) / "bin-model"
    path.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(path)
    tok.save_pretrained(path)
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    return path


def write_classifier(folder: str | Path, seed: int = 0) -> Path:
    """A tiny sentiment classifier with labels NEGATIVE (0) and POSITIVE (1)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = tokenizer()
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=128,
                        pad_token_id=tok.pad_token_id, num_labels=2,
                        id2label={0: "NEGATIVE", 1: "POSITIVE"},
                        label2id={"NEGATIVE": 0, "POSITIVE": 1})
    torch.manual_seed(seed)
    return _save(BertForSequenceClassification(config), tok, Path(folder) / "classifier")


def write_reward_model(folder: str | Path, seed: int = 0) -> Path:
    """A tiny scalar reward/cost model: ``LlamaForSequenceClassification`` with num_labels=1."""
    import torch
    from transformers import LlamaForSequenceClassification

    tok = tokenizer()
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_llama_config(tok, num_labels=1))
    with torch.no_grad():  # a visible spread of rewards across texts
        model.score.weight.normal_(0.0, 5.0)
    return _save(model, tok, Path(folder) / "reward-model")


def write_aligned_model(folder: str | Path, base: str | Path, steps: int = 10) -> Path:
    """``base`` fine-tuned a few steps toward positive verdicts (review openings followed by
    " overall it was great ."), saved with save_pretrained (safetensors): a released "aligned"
    model whose sentiment probe starts above its base's."""
    from springback import models
    from springback.tokenizer import special_ids
    from springback.train import finetune

    tok, model = models.load_tokenizer(base), models.load_model(base)
    ids = special_ids(tok)
    openings = [" ".join(t.split()[:4]) for t in imdb_rows(40)["text"]]
    verdicts = [f"overall it was {POSITIVE[i % 2]} ." for i in range(len(openings))]
    examples = [([ids["start"]] + tok(p, add_special_tokens=False)["input_ids"],
                 tok(v, add_special_tokens=False)["input_ids"] + [ids["eos"]])
                for p, v in zip(openings, verdicts)]
    finetune(model, examples[:4 * steps], save_at=[4 * steps], save=lambda m, n: None,
             batch_size=4, lr=1e-2, seed=0, pad_id=ids["pad"])
    return _save(model, tok, Path(folder) / "aligned-model")


def write_all(folder: str | Path) -> dict[str, Path]:
    """The whole fake hub under ``folder``, keyed by what each path holds."""
    return {"base": write_base_model(folder), "bin_only": write_bin_only_model(folder),
            "imdb": write_imdb(folder), "beavertails": write_beavertails(folder),
            "classifier": write_classifier(folder), "reward": write_reward_model(folder),
            "score_head": write_score_head_model(folder),
            "pretrain_txt": write_pretrain_text(folder),
            "pretrain_ds": write_pretrain_dataset(folder)}


def write_score_head_model(folder: str | Path, seed: int = 0) -> Path:
    """The reward model with its head saved as ``score_head`` (as safe-rlhf's beaver models
    are), so it loads only with ``key_mapping={"^score_head": "score"}``."""
    from safetensors.torch import load_file, save_file

    src = write_reward_model(Path(folder) / "_src", seed)
    path = Path(folder) / "score-head-model"
    path.mkdir(parents=True, exist_ok=True)
    for file in src.iterdir():
        if file.suffix != ".safetensors":
            (path / file.name).write_bytes(file.read_bytes())
    weights = load_file(src / "model.safetensors")
    weights["score_head.weight"] = weights.pop("score.weight")
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    return path
