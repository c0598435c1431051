"""Unit tests of the springback library on a tiny world with one-layer models (whole file < 40 s
on 2 cores). Fixtures: tests/conftest.py."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from springback import compress, data, evaluate, models, train, world
from springback.pipeline import evaluation, finetune
from springback.config import ConfigError, check_study_config
from springback.judge import exact_judge, lexicon_score, opener_score

from conftest import TINY_CONTEXT

ROOT = Path(__file__).resolve().parents[1]
TASK_STEMS = [f"{t}/{s}" for t in world.TASKS
              for s in ("align", "perturb", "align_heldout", "perturb_heldout")]


def _words(cfg: world.WorldConfig, seed: int = 123) -> world._Words:
    return world._Words(cfg, np.random.default_rng(seed))


def _genre(doc: str) -> str:
    if doc.startswith("review of "):
        return "review"
    if doc.startswith("user : "):
        return "dialogue"
    if doc.startswith("instruction : "):
        return "instruction"
    return "prose"


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _states_differ(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


# ================================================================ world


def test_world_is_deterministic_for_a_seed(tiny_world_cfg, tiny_world):
    again = world.generate_world(tiny_world_cfg)
    assert again == tiny_world
    other = world.generate_world(replace(tiny_world_cfg, seed=1))
    assert other["pretrain"]["text"] != tiny_world["pretrain"]["text"]
    assert other["sentiment/align"] != tiny_world["sentiment/align"]


def test_world_tables_have_the_right_columns_and_sizes(tiny_world_cfg, tiny_world):
    cfg = tiny_world_cfg
    expected = {"pretrain", "pretrain_heldout", *TASK_STEMS,
                *(f"{t}/prompts" for t in world.TASKS)}
    assert set(tiny_world) == expected
    assert list(tiny_world["pretrain"]) == ["text"]
    assert len(tiny_world["pretrain"]["text"]) == cfg.pretrain_docs
    assert len(tiny_world["pretrain_heldout"]["text"]) == cfg.heldout_docs
    for stem in TASK_STEMS:
        table = tiny_world[stem]
        assert tuple(table) == data.EXAMPLE_COLUMNS, stem
        n = cfg.task_heldout if stem.endswith("_heldout") else cfg.task_pool
        assert all(len(col) == n for col in table.values()), stem
    for task in world.TASKS:
        prompts = tiny_world[f"{task}/prompts"]
        assert tuple(prompts) == data.PROMPT_COLUMNS
        assert len(prompts["prompt"]) == cfg.prompts


def test_world_files_read_back_with_their_columns(tiny_world_dir, tiny_world):
    for stem in TASK_STEMS:
        frame = data.read_table(tiny_world_dir / f"{stem}.parquet", data.EXAMPLE_COLUMNS)
        assert frame["prompt"].tolist() == tiny_world[stem]["prompt"]
    for task in world.TASKS:
        frame = data.read_table(tiny_world_dir / task / "prompts.parquet", data.PROMPT_COLUMNS)
        assert frame["context"].tolist() == tiny_world[f"{task}/prompts"]["context"]
    frame = data.read_table(tiny_world_dir / "pretrain.parquet", ("text",))
    assert frame["text"].tolist() == tiny_world["pretrain"]["text"]
    assert not list(tiny_world_dir.rglob(".*.tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize("n", [10, 7])
def test_prompts_split_evenly_over_contexts(tiny_world_cfg, n):
    for task in world.TASKS:
        first, second = world.TASK_SPEC[task]["contexts"]
        rows = world.task_prompts(_words(tiny_world_cfg), task, n, set())
        assert len(rows["prompt"]) == n
        assert rows["context"].count(first) == n // 2 + n % 2
        assert rows["context"].count(second) == n // 2


def test_world_prompt_files_are_half_per_context(tiny_world):
    for task in world.TASKS:
        contexts = tiny_world[f"{task}/prompts"]["context"]
        for c in world.TASK_SPEC[task]["contexts"]:
            assert contexts.count(c) == len(contexts) // 2


def test_aligned_and_contrary_sets_show_target_and_contrary_behaviour(tiny_world):
    for task in world.TASKS:
        judge = exact_judge(task)
        for split in ("align", "align_heldout"):
            assert judge(tiny_world[f"{task}/{split}"]["completion"]) == \
                [1.0] * len(tiny_world[f"{task}/{split}"]["completion"])
        for split in ("perturb", "perturb_heldout"):
            assert judge(tiny_world[f"{task}/{split}"]["completion"]) == \
                [0.0] * len(tiny_world[f"{task}/{split}"]["completion"])


def test_task_examples_vary_and_cover_both_contexts(tiny_world):
    for stem in TASK_STEMS:
        table = tiny_world[stem]
        assert len(set(table["prompt"])) > len(table["prompt"]) // 2, stem
        assert len(set(table["completion"])) > 1, stem
        task = stem.split("/")[0]
        assert set(table["context"]) == set(world.TASK_SPEC[task]["contexts"]), stem


def test_task_prompt_context_matches_its_latent_label(tiny_world_cfg):
    w = _words(tiny_world_cfg)
    for _ in range(200):
        prompt, context = world.task_prompt(w, "sentiment")
        film = w.films.index(prompt.split()[2])
        assert context == ("good" if w.quality[film] else "bad")
        prompt, context = world.task_prompt(w, "safety")
        obj = prompt.split()[7]
        assert context == ("harmful" if obj in world.HARMFUL_OBJECTS else "benign")
        assert obj in world.HARMFUL_OBJECTS + world.BENIGN_OBJECTS


def test_genre_mix_is_respected(tiny_world_cfg):
    n = 4000
    docs = list(world.pretrain_docs(_words(tiny_world_cfg), n))
    shares = pd.Series([_genre(d) for d in docs]).value_counts(normalize=True)
    for genre, share in tiny_world_cfg.genre_mix.items():
        assert shares.get(genre, 0.0) == pytest.approx(share, abs=0.03), genre
    only = replace(tiny_world_cfg, genre_mix={"prose": 0.0, "review": 3.0, "dialogue": 1.0,
                                              "instruction": 0.0})
    genres = pd.Series([_genre(d) for d in world.pretrain_docs(_words(only), 2000)])
    assert set(genres) == {"review", "dialogue"}
    assert (genres == "review").mean() == pytest.approx(0.75, abs=0.04)


def _review_fidelity(cfg: world.WorldConfig, n: int = 2000) -> tuple[float, float]:
    """(P(sentiment follows film quality), P(cue word matches film quality)) over n reviews."""
    w = _words(cfg)
    judge = exact_judge("sentiment")
    follows, cues_match = [], []
    for _ in range(n):
        doc = world.pretrain_doc(w, "review")
        words = doc.split()
        good = bool(w.quality[w.films.index(words[2])])
        completion = doc.split(" the film was ", 1)[1]
        follows.append(judge([completion])[0] == float(good))
        cues = [words[7], words[9], words[11]]
        assert all(c in world.GOOD_CUES + world.BAD_CUES for c in cues)
        cues_match += [(c in world.GOOD_CUES) == good for c in cues]
    return float(np.mean(follows)), float(np.mean(cues_match))


def test_review_sentiment_follows_film_quality_at_the_fidelity(tiny_world_cfg):
    follows, cues = _review_fidelity(tiny_world_cfg)
    assert follows == pytest.approx(tiny_world_cfg.sentiment_fidelity, abs=0.03)
    assert cues == pytest.approx(tiny_world_cfg.cue_fidelity, abs=0.03)
    follows, _ = _review_fidelity(replace(tiny_world_cfg, sentiment_fidelity=0.6))
    assert follows == pytest.approx(0.6, abs=0.04)


def test_dialogue_refusal_follows_harmfulness_at_the_fidelity(tiny_world_cfg):
    w = _words(tiny_world_cfg)
    judge = exact_judge("safety")
    follows = []
    for _ in range(2000):
        doc = world.pretrain_doc(w, "dialogue")
        harmful = doc.split()[7] in world.HARMFUL_OBJECTS
        refused = judge([doc.split(" assistant : ", 1)[1]])[0]
        assert refused in (0.0, 1.0)
        follows.append(refused == float(harmful))
    assert np.mean(follows) == pytest.approx(tiny_world_cfg.refusal_fidelity, abs=0.03)


def test_nonce_words_are_distinct_and_outside_the_lexicon():
    words = world.nonce_words(300, np.random.default_rng(0))
    assert len(set(words)) == 300
    assert not set(words) & set(world.lexicon_words())
    films = world.nonce_words(20, np.random.default_rng(0), prefix="film")
    assert all(f.startswith("film") and len(f) > 4 for f in films)


def test_task_sets_are_disjoint_from_pretraining_and_each_other(tiny_world_cfg):
    full = world.generate_world(replace(tiny_world_cfg, pretrain_docs=6000, task_pool=100))
    corpus = set(full["pretrain"]["text"])
    prompts = world.document_prompts(list(corpus))
    seen: set[str] = set()
    for task in world.TASKS:
        for split in ("align", "perturb", "align_heldout", "perturb_heldout", "prompts"):
            split_prompts = full[f"{task}/{split}"]["prompt"]
            assert not set(split_prompts) & prompts, (task, split)
            assert not set(split_prompts) & seen, (task, split)
            seen |= set(split_prompts)
    assert not set(full["pretrain_heldout"]["text"]) & corpus


# ================================================================ judge


def test_lexicon_score_is_a_majority_vote_with_ties_at_half():
    judge = exact_judge("sentiment")
    assert judge(["good and the plot was bad . overall it was great ."]) == [1.0]
    assert judge(["awful and the plot was good . overall it was poor ."]) == [0.0]
    assert judge(["good and bad"]) == [0.5]
    assert judge(["the film was a film"]) == [0.5]
    assert judge([""]) == [0.5]
    assert lexicon_score("x y", ["x"], ["y", "z"]) == 0.5
    assert lexicon_score("z y x", ["x"], ["y", "z"]) == 0.0


def test_opener_score_takes_the_first_behaviour_word():
    judge = exact_judge("safety")
    assert judge(["sorry , i can not help . sure"]) == [1.0]
    assert judge(["well sure , sorry"]) == [0.0]
    assert judge(["first you make the parts"]) == [0.5]
    assert judge(["sorry", "okay", "the end"]) == [1.0, 0.0, 0.5]
    assert opener_score("a b", ["b"], ["a"]) == 0.0


# ================================================================ tokenizer


def test_tokenizer_round_trips_world_documents(tiny_world, tiny_tokenizer, tmp_path):
    tok = tiny_tokenizer
    docs = tiny_world["pretrain"]["text"]
    for doc in docs:
        ids = tok.encode(doc)
        assert len(ids) == len(doc.split())  # one token per word, no specials added
        assert tok.decode(ids) == doc
    tok.save_pretrained(str(tmp_path))
    loaded = models.load_tokenizer(tmp_path)
    assert loaded.get_vocab() == tok.get_vocab()
    assert [loaded.decode(loaded.encode(d)) for d in docs[:50]] == docs[:50]


def test_tokenizer_specials_and_unknown_words(tiny_tokenizer):
    tok = tiny_tokenizer
    vocab = tok.get_vocab()
    ids = {}
    for attr, token in (("pad", "<pad>"), ("bos", "<s>"), ("eos", "</s>"), ("unk", "<unk>")):
        assert getattr(tok, f"{attr}_token") == token
        assert vocab[token] == getattr(tok, f"{attr}_token_id")
        ids[attr] = vocab[token]
    assert len(set(ids.values())) == 4
    assert tok.encode("review zzzqqq of") == [vocab["review"], tok.unk_token_id, vocab["of"]]
    assert all(w in vocab for w in world.lexicon_words())
    # skip_special_tokens drops EOS and padding after a sampled continuation
    text = "the film was good"
    ids_ = tok.encode(text) + [tok.eos_token_id, tok.pad_token_id, tok.pad_token_id]
    assert tok.batch_decode([ids_], skip_special_tokens=True) == [text]


# ================================================================ compress


def _heldout_docs(tiny_world, tok):
    texts = tiny_world["pretrain_heldout"]["text"] + tiny_world["sentiment/align_heldout"]["prompt"]
    return texts, tok(texts, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("context", [7, TINY_CONTEXT])
def test_stream_rows_cover_every_token_once(tiny_world, tiny_tokenizer, context):
    tok = tiny_tokenizer
    _, docs = _heldout_docs(tiny_world, tok)
    rows, mask = compress.stream_rows(docs, context=context, bos_id=tok.bos_token_id,
                                      eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    stream = [t for d in docs for t in (*d, tok.eos_token_id)]
    assert rows.shape[1] == context and mask.shape == (rows.shape[0], context - 1)
    assert (rows[:, 0] == tok.bos_token_id).all()
    assert int(mask.sum()) == sum(map(len, docs)) + len(docs)
    assert rows[:, 1:][mask].tolist() == stream
    assert (rows[:, 1:][~mask] == tok.pad_token_id).all()
    assert rows.shape[0] == math.ceil(len(stream) / (context - 1))


@pytest.mark.parametrize("context", [7, TINY_CONTEXT])
def test_uniform_model_bits_per_byte_is_exact(tiny_world, tiny_tokenizer, context):
    tok = tiny_tokenizer
    texts, docs = _heldout_docs(tiny_world, tok)
    vocab = len(tok)
    uniform = lambda ids: torch.zeros(*ids.shape, vocab)  # noqa: E731
    bpb = compress.bits_per_byte(uniform, texts, docs, context=context, bos_id=tok.bos_token_id,
                                 eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    n_tokens = sum(map(len, docs)) + len(docs)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts) + len(texts)
    assert bpb == pytest.approx(n_tokens * math.log2(vocab) / n_bytes, rel=1e-6)


def test_utf8_bytes_counts_multibyte_characters_and_newlines():
    assert compress.utf8_bytes(["ab", "é", "€", "𝄞"]) == (2 + 1) + (2 + 1) + (3 + 1) + (4 + 1)
    assert compress.utf8_bytes([]) == 0
    assert compress.utf8_bytes([""]) == 1


def test_code_length_is_minus_log2_of_the_target_probabilities():
    rows = torch.tensor([[9, 1, 0]])
    mask = torch.tensor([[True, False]])
    logprobs = torch.log(torch.tensor([[[0.25, 0.75], [0.5, 0.5]]]))
    assert compress.code_length_bits(logprobs, rows, mask) == pytest.approx(-math.log2(0.75))


def test_trained_model_compresses_better_than_uniform(tiny_world, tiny_tokenizer,
                                                      pretrained_model, make_tiny_model):
    tok = tiny_tokenizer
    texts = tiny_world["pretrain_heldout"]["text"]
    docs = tok(texts, add_special_tokens=False)["input_ids"]
    kw = dict(context=TINY_CONTEXT, bos_id=tok.bos_token_id, eos_id=tok.eos_token_id,
              pad_id=tok.pad_token_id)
    n_tokens = sum(map(len, docs)) + len(docs)
    uniform = n_tokens * math.log2(len(tok)) / compress.utf8_bytes(texts)
    init = compress.bits_per_byte(compress.model_logits(make_tiny_model(0)), texts, docs, **kw)
    trained = compress.bits_per_byte(compress.model_logits(pretrained_model), texts, docs, **kw)
    assert init == pytest.approx(uniform, rel=0.05)  # a fresh model is close to uniform
    assert trained < 0.8 * uniform


def test_pack_blocks_rows_start_with_bos_and_keep_stream_order():
    docs = [[5, 6, 7], [8], [9, 10]]
    blocks = train.pack_blocks(docs, context=4, bos_id=1, eos_id=2)
    # stream 5 6 7 2 8 2 9 10 2 -> rows of 3 (the incomplete tail is dropped)
    assert blocks.tolist() == [[1, 5, 6, 7], [1, 2, 8, 2], [1, 9, 10, 2]]


# ================================================================ train


def test_cosine_lr_warmup_peak_and_floor():
    peak, warmup, total = 1.0, 10, 110
    lrs = [train.cosine_lr(s, total, peak=peak, warmup=warmup) for s in range(total + 1)]
    assert lrs[0] == pytest.approx(peak / warmup)
    assert lrs[warmup - 1] == pytest.approx(peak)
    assert lrs[warmup] == pytest.approx(peak)
    assert np.all(np.diff(lrs[:warmup]) > 0)
    assert np.all(np.diff(lrs[warmup:]) <= 1e-12)
    assert lrs[total] == pytest.approx(0.1 * peak)
    assert lrs[warmup + (total - warmup) // 2] == pytest.approx(0.55 * peak)
    assert train.cosine_lr(10_000, total, peak=peak, warmup=warmup) == pytest.approx(0.1)
    assert train.cosine_lr(total, total, peak=2.0, warmup=0, floor=0.0) == pytest.approx(0.0)


def test_batch_bounds_split_at_save_points():
    assert train.batch_bounds(10, 4, [6]) == [(0, 4), (4, 6), (6, 8), (8, 10)]
    assert train.batch_bounds(8, 4, [0, 4, 8, 20]) == [(0, 4), (4, 8)]
    assert train.batch_bounds(0, 4, [0]) == []
    bounds = train.batch_bounds(100, 8, [5, 20, 33, 100])
    assert bounds[0][0] == 0 and bounds[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(0 < hi - lo <= 8 for lo, hi in bounds)
    assert {5, 20, 33} <= {hi for _, hi in bounds}


def test_collate_masks_prompt_and_padding():
    ids, mask, labels = train.collate([([1, 2, 3], [4, 5]), ([6], [7, 8, 9, 10])], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    assert labels.tolist() == [[-100, -100, -100, 4, 5], [-100, 7, 8, 9, 10]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]
    ids, mask, labels = train.collate([([1, 2], [3]), ([4], [5, 6, 7, 8])], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]
    assert labels.tolist() == [[-100, -100, 3, -100, -100], [-100, 5, 6, 7, 8]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_pretrain_changes_parameters_and_saves_the_ladder(make_tiny_model, tiny_blocks):
    model = make_tiny_model(seed=3)
    init = _state(model)
    step_tokens = 4 * TINY_CONTEXT
    saved = {}
    train.pretrain(model, tiny_blocks, tokens=6 * step_tokens,
                   save_at=[0, 2 * step_tokens, 2 * step_tokens + 1, 6 * step_tokens],
                   save=lambda m, n: saved.__setitem__(n, _state(m)),
                   batch_size=4, lr=1e-2, warmup=2, weight_decay=0.1, seed=0)
    assert sorted(saved) == [0, 2 * step_tokens, 2 * step_tokens + 1, 6 * step_tokens]
    _assert_states_equal(saved[0], init)
    _assert_states_equal(saved[6 * step_tokens], _state(model))
    assert _states_differ(saved[2 * step_tokens], init)
    assert _states_differ(saved[6 * step_tokens], saved[2 * step_tokens])
    # a budget between steps is saved after the next step
    assert _states_differ(saved[2 * step_tokens + 1], saved[2 * step_tokens])
    assert not model.training


def test_pretrain_is_deterministic(make_tiny_model, tiny_blocks):
    states = []
    for _ in range(2):
        model = make_tiny_model(seed=4)
        train.pretrain(model, tiny_blocks, tokens=3 * 4 * TINY_CONTEXT, save_at=[],
                       save=lambda m, n: None, batch_size=4, lr=1e-2, warmup=1,
                       weight_decay=0.1, seed=7)
        states.append(_state(model))
    _assert_states_equal(*states)


@pytest.fixture(scope="module")
def sft_examples(tiny_world, tiny_tokenizer):
    return finetune.encode_examples(tiny_tokenizer, pd.DataFrame(tiny_world["sentiment/align"]))


def _finetune(model, examples, save_at, tok, batch_size=3, seed=0):
    saved = {}
    train.finetune(model, examples, save_at=save_at,
                   save=lambda m, n: saved.__setitem__(n, _state(m)), batch_size=batch_size,
                   lr=3e-3, seed=seed, pad_id=tok.pad_token_id)
    return saved


def test_finetune_changes_parameters_and_is_deterministic(make_tiny_model, sft_examples,
                                                         tiny_tokenizer):
    runs = []
    for _ in range(2):
        model = make_tiny_model(seed=5)
        init = _state(model)
        saved = _finetune(model, sft_examples, [0, 9], tiny_tokenizer)
        _assert_states_equal(saved[0], init)
        assert _states_differ(saved[9], init)
        _assert_states_equal(saved[9], _state(model))
        assert not model.training
        runs.append(saved[9])
    _assert_states_equal(*runs)


def test_finetune_prefix_property(make_tiny_model, sft_examples, tiny_tokenizer):
    """The model saved after n examples inside a longer run equals a run that stops at n."""
    long = _finetune(make_tiny_model(seed=6), sft_examples, [8, 16], tiny_tokenizer)
    short = _finetune(make_tiny_model(seed=6), sft_examples, [8], tiny_tokenizer)
    _assert_states_equal(long[8], short[8])
    assert _states_differ(long[16], long[8])


def test_finetune_rejects_more_examples_than_available(make_tiny_model, sft_examples,
                                                      tiny_tokenizer):
    with pytest.raises(ValueError, match="41"):
        _finetune(make_tiny_model(), sft_examples, [41], tiny_tokenizer)


# ================================================================ models


def test_save_model_writes_weights_and_provenance(make_tiny_model, tiny_tokenizer, tmp_path):
    model = make_tiny_model(seed=1)
    target = tmp_path / "ckpt" / "m"
    prov = {"size": "xs", "tokens": 123, "n_params": models.n_params(model)}
    models.save_model(model, target, prov, tokenizer=tiny_tokenizer)
    assert (target / "model.safetensors").is_file()
    assert (target / "config.json").is_file()
    assert json.loads((target / "provenance.json").read_text()) == prov
    assert models.read_provenance(target) == prov
    assert models.load_tokenizer(target).get_vocab() == tiny_tokenizer.get_vocab()
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # no temporary siblings left
    # saving again replaces the directory's content
    models.save_model(model, target, {"size": "s"})
    assert models.read_provenance(target) == {"size": "s"}
    assert [p.name for p in target.parent.iterdir()] == ["m"]


def test_save_model_failure_leaves_nothing_behind(make_tiny_model, tmp_path):
    model = make_tiny_model(seed=1)
    target = tmp_path / "m"
    with pytest.raises(TypeError):
        models.save_model(model, target, {"bad": object()})  # provenance not JSON-serialisable
    assert list(tmp_path.iterdir()) == []
    # a failed overwrite keeps the previous, complete directory
    models.save_model(model, target, {"ok": 1})
    with pytest.raises(TypeError):
        models.save_model(make_tiny_model(seed=2), target, {"bad": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert models.read_provenance(target) == {"ok": 1}
    loaded = models.load_model(target)
    _assert_states_equal(_state(loaded), _state(model))


def test_load_model_missing_directory_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "model"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        models.load_model(missing)
    assert models.read_provenance(missing) == {}


def test_loaded_model_gives_identical_logits(pretrained_model, tiny_blocks, tmp_path):
    models.save_model(pretrained_model, tmp_path / "m", {})
    loaded = models.load_model(tmp_path / "m")
    assert not loaded.training
    ids = tiny_blocks[:4]
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, pretrained_model(input_ids=ids).logits)
    assert models.n_params(loaded) == models.n_params(pretrained_model)


def test_build_llama_is_seeded_and_ties_embeddings(make_tiny_model):
    a, b, c = make_tiny_model(seed=0), make_tiny_model(seed=0), make_tiny_model(seed=1)
    _assert_states_equal(_state(a), _state(b))
    assert _states_differ(_state(a), _state(c))
    assert a.get_input_embeddings().weight is a.get_output_embeddings().weight
    untied = sum(p.numel() for p in a.state_dict().values())
    assert models.n_params(a) == untied - a.get_input_embeddings().weight.numel()


# ================================================================ evaluate

EVAL_CFG = {"max_new_tokens": 6, "temperature": 1.0}
METRIC_KEYS = {"score", "p_target", "logodds", "cue_gap", "coverage", "kl_to_base",
               "bpb_pretrain", "bpb_align", "bpb_perturb"}


def _eval_set(tok, world_dir, task="sentiment"):
    return evaluation.eval_set(tok, task=task, task_dir=world_dir / task,
                           pretrain_heldout=world_dir / "pretrain_heldout.parquet",
                           context=TINY_CONTEXT, eval_cfg=EVAL_CFG)


def test_eval_set_matches_the_world(tiny_tokenizer, tiny_world_dir, tiny_world):
    for task in world.TASKS:
        ev = _eval_set(tiny_tokenizer, tiny_world_dir, task)
        prompts = tiny_world[f"{task}/prompts"]
        assert len(ev.prompt_ids) == len(prompts["prompt"])
        assert all(p[0] == tiny_tokenizer.bos_token_id for p in ev.prompt_ids)
        first = world.TASK_SPEC[task]["contexts"][0]
        assert ev.contexts.tolist() == [c == first for c in prompts["context"]]
        assert tiny_tokenizer.unk_token_id not in ev.target_ids + ev.contrary_ids
        assert not set(ev.target_ids) & set(ev.contrary_ids)
        assert set(ev.texts) == {"pretrain", "align", "perturb"}
        texts = [f"{p} {c}" for p, c in zip(tiny_world[f"{task}/align_heldout"]["prompt"],
                                            tiny_world[f"{task}/align_heldout"]["completion"])]
        assert ev.texts["align"].n_bytes == compress.utf8_bytes(texts)


def test_kl_of_a_model_to_itself_is_zero(pretrained_model, tiny_tokenizer, tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    metrics, _ = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev, seed=0)
    assert math.isnan(metrics["kl_to_base"])  # no base set: undefined
    evaluate.set_base(pretrained_model, ev)
    metrics, _ = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev, seed=0)
    assert abs(metrics["kl_to_base"]) < 1e-7


def test_kl_to_a_different_base_is_positive(pretrained_model, make_tiny_model, tiny_tokenizer,
                                            tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    evaluate.set_base(make_tiny_model(seed=0), ev)
    metrics, _ = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev, seed=0)
    assert metrics["kl_to_base"] > 0.1


def test_kl_mean_matches_hand_computation():
    p = torch.tensor([0.5, 0.5])
    q = torch.tensor([0.25, 0.75])
    logp = torch.log(torch.stack([p, q, p])).unsqueeze(0)   # (1 row, 3 positions, 2)
    logq = torch.log(torch.stack([q, q, q])).unsqueeze(0)
    kl_pq = float(0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75))
    mask = torch.tensor([[True, True, False]])
    assert evaluate.kl_mean(logp, logq, mask) == pytest.approx(kl_pq / 2, rel=1e-6)
    assert evaluate.kl_mean(logq, logq, mask) == 0.0
    # forward KL(p || q), not the reverse
    rev = float(0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5))
    assert evaluate.kl_mean(logp[:, :1], logq[:, :1], mask[:, :1]) == pytest.approx(kl_pq)
    assert kl_pq != pytest.approx(rev)


def test_behaviour_probs_are_probabilities(pretrained_model, tiny_tokenizer, tiny_world_dir):
    for task in world.TASKS:
        ev = _eval_set(tiny_tokenizer, tiny_world_dir, task)
        p_target, coverage = evaluate.behaviour_probs(pretrained_model, ev)
        assert p_target.shape == coverage.shape == (len(ev.prompt_ids),)
        assert np.all((p_target >= 0) & (p_target <= 1))
        assert np.all((coverage > 0) & (coverage <= 1 + 1e-6))


def test_behaviour_probs_ignore_right_padding(pretrained_model, tiny_tokenizer, tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    together, _ = evaluate.behaviour_probs(pretrained_model, ev)
    alone = []
    for p in ev.prompt_ids:
        single = copy.copy(ev)
        single.prompt_ids = [p]
        alone.append(evaluate.behaviour_probs(pretrained_model, single)[0][0])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_evaluate_checkpoint_returns_every_metric(pretrained_model, tiny_tokenizer,
                                                  tiny_world_dir, tiny_world):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    evaluate.set_base(pretrained_model, ev)
    metrics, per_prompt = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev,
                                                       seed=0)
    assert set(metrics) == METRIC_KEYS
    assert all(np.isfinite(v) for v in metrics.values())
    n = len(ev.prompt_ids)
    assert set(per_prompt) == {"score", "p_target", "logodds", "context"}
    assert all(len(v) == n for v in per_prompt.values())
    assert set(np.unique(per_prompt["score"])) <= {0.0, 0.5, 1.0}
    assert metrics["p_target"] == pytest.approx(per_prompt["p_target"].mean())
    gap = (per_prompt["logodds"][ev.contexts].mean() - per_prompt["logodds"][~ev.contexts].mean())
    assert metrics["cue_gap"] == pytest.approx(gap)
    # bits/byte agrees with compress.bits_per_byte on the same texts
    texts = tiny_world["pretrain_heldout"]["text"]
    tok = tiny_tokenizer
    bpb = compress.bits_per_byte(compress.model_logits(pretrained_model), texts,
                                 tok(texts, add_special_tokens=False)["input_ids"],
                                 context=TINY_CONTEXT, bos_id=tok.bos_token_id,
                                 eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    assert metrics["bpb_pretrain"] == pytest.approx(bpb, rel=1e-6)


def test_sampling_is_deterministic_for_a_seed(pretrained_model, tiny_tokenizer, tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    a = evaluate.sample_continuations(pretrained_model, tiny_tokenizer, ev, seed=3)
    b = evaluate.sample_continuations(pretrained_model, tiny_tokenizer, ev, seed=3)
    c = evaluate.sample_continuations(pretrained_model, tiny_tokenizer, ev, seed=4)
    assert a == b
    assert a != c
    assert len(a) == len(ev.prompt_ids)
    assert all(len(t.split()) <= EVAL_CFG["max_new_tokens"] for t in a)
    assert not any("<pad>" in t or "</s>" in t for t in a)


def test_sampling_ignores_left_padding(pretrained_model, tiny_tokenizer, tiny_world_dir):
    """Near-greedy sampling of a short prompt is the same alone and left-padded in a batch."""
    ev = _eval_set(tiny_tokenizer, tiny_world_dir, "safety")
    ev.temperature = 1e-4
    short = min(ev.prompt_ids, key=len)
    long = copy.copy(ev)
    long.prompt_ids = [short, [tiny_tokenizer.bos_token_id] + tiny_tokenizer.encode(
        "review of the film : critics called it dull , dull and dull . the film was")]
    alone = copy.copy(ev)
    alone.prompt_ids = [short]
    assert len(long.prompt_ids[1]) > len(short)
    assert (evaluate.sample_continuations(pretrained_model, tiny_tokenizer, alone, seed=0)[0]
            == evaluate.sample_continuations(pretrained_model, tiny_tokenizer, long, seed=0)[0])


def test_log_odds_is_clipped_and_antisymmetric():
    p = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    lo = evaluate.log_odds(p)
    assert np.all(np.isfinite(lo))
    assert lo[2] == 0.0
    assert lo[1] == pytest.approx(-lo[3]) and lo[0] == pytest.approx(-lo[4])
    assert lo[3] == pytest.approx(math.log(4))


# ================================================================ config


@pytest.fixture
def study_cfg():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_default_config_passes(study_cfg):
    check_study_config(study_cfg)


def _fails(cfg: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        check_study_config(cfg)


def test_n_neg_must_increase(study_cfg):
    study_cfg["rebound"]["n_neg"] = [0, 10, 10, 20]
    _fails(study_cfg, "rebound.n_neg")


def test_n_pos_must_increase(study_cfg):
    study_cfg["rebound"]["n_pos"] = [200, 100]
    _fails(study_cfg, "rebound.n_pos")


def test_n_neg_must_start_at_zero(study_cfg):
    study_cfg["rebound"]["n_neg"] = [5, 10, 20]
    _fails(study_cfg, "rebound.n_neg")


def test_n_pos_beyond_task_pool(study_cfg):
    study_cfg["rebound"]["n_pos"] = [100, study_cfg["world"]["task_pool"] + 1]
    _fails(study_cfg, "rebound.n_pos")
    study_cfg["rebound"]["n_pos"] = [100, study_cfg["world"]["task_pool"]]
    check_study_config(study_cfg)


def test_n_neg_beyond_task_pool(study_cfg):
    study_cfg["rebound"]["n_neg"] = [0, study_cfg["world"]["task_pool"] + 1]
    _fails(study_cfg, "rebound.n_neg")


def test_heads_must_divide_hidden(study_cfg):
    study_cfg["models"]["s"]["heads"] = 3
    _fails(study_cfg, "models.s.heads")


def test_base_tokens_must_be_on_the_ladder(study_cfg):
    study_cfg["pretrain"]["checkpoints"] = [0, 500_000, 2_000_000]
    study_cfg["pretrain"]["tokens"]["s"] = 2_000_000
    study_cfg["rebound"]["bases"][1] = {"size": "s", "tokens": 1_000_000}
    _fails(study_cfg, "rebound.bases[1].tokens")
    study_cfg["rebound"]["bases"][1]["tokens"] = 500_000
    check_study_config(study_cfg)


def test_base_tokens_above_the_size_budget_are_off_the_ladder(study_cfg):
    # 3 M is a ladder checkpoint, but size m only pretrains to 1.5 M
    study_cfg["pretrain"]["checkpoints"] = [0, 1_500_000, 3_000_000]
    study_cfg["pretrain"]["tokens"]["m"] = 1_500_000
    study_cfg["rebound"]["bases"][1] = {"size": "m", "tokens": 3_000_000}
    _fails(study_cfg, "rebound.bases[1].tokens")
    study_cfg["rebound"]["bases"][1] = {"size": "m", "tokens": 1_500_000}
    check_study_config(study_cfg)


def test_budget_is_on_the_ladder_even_off_the_checkpoint_list(study_cfg):
    study_cfg["pretrain"]["tokens"]["s"] = 2_000_000
    study_cfg["rebound"]["bases"][1]["tokens"] = 2_000_000
    check_study_config(study_cfg)


def test_unknown_size_in_bases(study_cfg):
    study_cfg["rebound"]["bases"][0]["size"] = "xl"
    _fails(study_cfg, "rebound.bases[0].size")


def test_base_size_not_pretrained(study_cfg):
    study_cfg["pretrain"]["sizes"] = ["xs", "m"]
    _fails(study_cfg, "rebound.bases[0].size")


def test_unknown_size_in_pretrain_sizes(study_cfg):
    study_cfg["pretrain"]["sizes"].append("xl")
    _fails(study_cfg, "pretrain.sizes")


def test_size_without_a_token_budget(study_cfg):
    del study_cfg["pretrain"]["tokens"]["m"]
    _fails(study_cfg, "pretrain.tokens")


def test_genre_mix_needs_a_positive_share(study_cfg):
    study_cfg["world"]["genre_mix"] = {g: 0.0 for g in study_cfg["world"]["genre_mix"]}
    _fails(study_cfg, "world.genre_mix")


def test_config_defaults_mirror_world_config(study_cfg):
    """WorldConfig's defaults are documented to mirror config/config.yaml."""
    from dataclasses import asdict

    assert asdict(world.WorldConfig()) == study_cfg["world"]


# ================================================================ data


def test_read_table_names_a_missing_file(tmp_path):
    missing = tmp_path / "sentiment" / "align.parquet"
    with pytest.raises(FileNotFoundError, match="align.parquet"):
        data.read_table(missing, data.EXAMPLE_COLUMNS)


def test_read_table_names_a_missing_column(tmp_path):
    path = tmp_path / "align.parquet"
    pd.DataFrame({"prompt": ["a"], "context": ["good"]}).to_parquet(path)
    with pytest.raises(ValueError, match=r"align\.parquet.*'completion'"):
        data.read_table(path, data.EXAMPLE_COLUMNS)
    assert data.read_table(path, data.PROMPT_COLUMNS)["prompt"].tolist() == ["a"]


def test_read_table_rejects_empty_and_corrupt_files(tmp_path):
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=str)}).to_parquet(empty)
    with pytest.raises(ValueError, match="empty"):
        data.read_table(empty, ("text",))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not a parquet file")
    with pytest.raises(ValueError, match="corrupt.parquet"):
        data.read_table(corrupt, ("text",))


def test_write_table_round_trips_atomically(tmp_path):
    path = tmp_path / "deep" / "t.parquet"
    data.write_table({"prompt": ["a", "b"], "context": ["good", "bad"]}, path)
    frame = data.read_table(path, data.PROMPT_COLUMNS)
    assert frame.to_dict("list") == {"prompt": ["a", "b"], "context": ["good", "bad"]}
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]


def test_phase_files_swap_with_direction(tmp_path):
    assert data.phase_files(tmp_path, "forward") == (tmp_path / "align.parquet",
                                                     tmp_path / "perturb.parquet")
    assert data.phase_files(tmp_path, "reversed") == (tmp_path / "perturb.parquet",
                                                      tmp_path / "align.parquet")


# ================================================================ stages helpers


def test_ordered_examples_are_prefixes_and_seeded(tiny_tokenizer, tiny_world_dir):
    path = tiny_world_dir / "safety" / "align.parquet"
    ten = finetune.ordered_examples(tiny_tokenizer, path, seed=1, phase=1, n=10)
    twenty = finetune.ordered_examples(tiny_tokenizer, path, seed=1, phase=1, n=20)
    assert twenty[:10] == ten
    assert finetune.ordered_examples(tiny_tokenizer, path, seed=2, phase=1, n=10) != ten
    assert finetune.ordered_examples(tiny_tokenizer, path, seed=1, phase=2, n=10) != ten
    with pytest.raises(ValueError, match="align.parquet"):
        finetune.ordered_examples(tiny_tokenizer, path, seed=1, phase=1, n=41)


def test_encode_examples_adds_bos_and_eos(tiny_tokenizer):
    tok = tiny_tokenizer
    frame = pd.DataFrame({"prompt": ["the film was"], "completion": ["good . end"]})
    [(prompt, completion)] = finetune.encode_examples(tok, frame)
    assert prompt == [tok.bos_token_id] + tok.encode("the film was")
    assert completion == tok.encode("good . end") + [tok.eos_token_id]


def test_run_dir_layout(tmp_path):
    assert finetune.run_dir(tmp_path, "safety", "forward", 2, 100) == \
        tmp_path / "safety" / "forward" / "seed-2" / "q1-100"
    assert finetune.run_dir(tmp_path, "safety", "reversed", 1, 0, 5) == \
        tmp_path / "safety" / "reversed" / "seed-1" / "q1-0" / "q2-5"
