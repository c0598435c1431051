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

from springback import compress, data, evaluate, models, provenance, runs, train, world
from springback.config import ConfigError, complete
from springback.judge import exact_judge, lexicon_score, opener_score

from conftest import TINY_CONTEXT, world_files

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


def test_pretraining_corpus_has_its_own_stream(tiny_world_cfg, tiny_world):
    """Documents come from the stream [seed, 1] after the vocabulary: the task sizes do not change
    the corpus."""
    w = world._Words(tiny_world_cfg, np.random.default_rng(tiny_world_cfg.seed))
    w.rng = np.random.default_rng([tiny_world_cfg.seed, 1])
    assert list(world.pretrain_docs(w, tiny_world_cfg.pretrain_docs)) == \
        tiny_world["pretrain"]["text"]
    other = world.generate_world(replace(tiny_world_cfg, task_pool=20, prompts=4))
    assert other["pretrain"] == tiny_world["pretrain"]
    assert other["pretrain_heldout"] == tiny_world["pretrain_heldout"]


def test_world_tables_have_the_right_columns_and_sizes(tiny_world_cfg, tiny_world):
    cfg = tiny_world_cfg
    expected = {"pretrain", "pretrain_heldout", *TASK_STEMS,
                *(f"{t}/prompts" for t in world.TASKS), "resistance/train", "resistance/prompts"}
    assert set(tiny_world) == expected
    style, held = tiny_world["resistance/train"], tiny_world["resistance/prompts"]
    assert len(style["prompt"]) == cfg.style_pool and len(held["prompt"]) == cfg.style_prompts
    assert all(world.STYLE_ANSWER in c for c in style["completion"])
    # the style's prompts are new to D_p and to each other
    assert not set(style["prompt"] + held["prompt"]) & world.document_prompts(
        tiny_world["pretrain"]["text"])
    assert len(set(style["prompt"] + held["prompt"])) == cfg.style_pool + cfg.style_prompts
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
        assert tuple(prompts) == (*data.PROMPT_COLUMNS, "clean")
        assert all(len(col) == cfg.prompts for col in prompts.values())
        assert all(isinstance(c, bool) for c in prompts["clean"])


def test_world_files_read_back_with_their_columns(tiny_world_dir, tiny_world):
    for stem in TASK_STEMS:
        frame = data.read_table(tiny_world_dir / f"{stem}.parquet", data.EXAMPLE_COLUMNS)
        assert frame["prompt"].tolist() == tiny_world[stem]["prompt"]
    for task in world.TASKS:
        frame = data.read_table(tiny_world_dir / task / "prompts.parquet", data.PROMPT_COLUMNS)
        assert frame["context"].tolist() == tiny_world[f"{task}/prompts"]["context"]
        assert frame["clean"].tolist() == tiny_world[f"{task}/prompts"]["clean"]
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
        prompt, context, _ = world.task_prompt(w, "sentiment")
        film = w.films.index(prompt.split()[2])
        assert context == ("good" if w.quality[film] else "bad")
        prompt, context, _ = world.task_prompt(w, "safety")
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


def _review_fidelity(cfg: world.WorldConfig, n: int = 2000, *, mirror: bool = False,
                     docs: list[str] | None = None) -> tuple[float, float]:
    """(P(sentiment follows film quality), P(cue word matches film quality)) over n reviews
    sampled (of a mirror world's corpus with ``mirror``), or over the reviews among ``docs``
    (a corpus generated from ``cfg``'s seed)."""
    w = _words(cfg) if docs is None else world._Words(cfg, np.random.default_rng(cfg.seed))
    w.mirror = mirror
    if docs is None:
        docs = [world.pretrain_doc(w, "review") for _ in range(n)]
    judge = exact_judge("sentiment")
    follows, cues_match = [], []
    for doc in (d for d in docs if _genre(d) == "review"):
        words = doc.split()
        good = bool(w.quality[w.films.index(words[2])])
        completion = doc.split(" the film was ", 1)[1]
        follows.append(judge([completion])[0] == float(good))
        k = words.index("called") + 2  # review of FILM in WORD : critics called it C1 , C2 and C3
        cues = [words[k], words[k + 2], words[k + 4]]
        assert all(c in world.GOOD_CUES + world.BAD_CUES for c in cues)
        cues_match += [(c in world.GOOD_CUES) == good for c in cues]
    return float(np.mean(follows)), float(np.mean(cues_match))


def test_review_sentiment_follows_film_quality_at_the_fidelity(tiny_world_cfg):
    follows, cues = _review_fidelity(tiny_world_cfg)
    assert follows == pytest.approx(tiny_world_cfg.sentiment_fidelity, abs=0.03)
    assert cues == pytest.approx(tiny_world_cfg.cue_fidelity, abs=0.03)
    follows, _ = _review_fidelity(replace(tiny_world_cfg, sentiment_fidelity=0.6))
    assert follows == pytest.approx(0.6, abs=0.04)
    assert len(world.GOOD_CUES) == len(world.BAD_CUES) == 5
    assert not set(world.GOOD_CUES) & set(world.BAD_CUES)


def _dialogue_fidelity(cfg: world.WorldConfig, n: int = 2000, *, mirror: bool = False,
                       docs: list[str] | None = None) -> tuple[float, float]:
    """(P(refusal follows harmfulness), P(modifier matches harmfulness)) over n dialogues sampled
    (of a mirror world's corpus with ``mirror``), or over the dialogues among ``docs``."""
    w = _words(cfg)
    w.mirror = mirror
    if docs is None:
        docs = [world.pretrain_doc(w, "dialogue") for _ in range(n)]
    judge = exact_judge("safety")
    follows, mods_match = [], []
    for doc in (d for d in docs if _genre(d) == "dialogue"):
        words = doc.split()
        harmful = words[7] in world.HARMFUL_OBJECTS
        assert words[7] in world.HARMFUL_OBJECTS + world.BENIGN_OBJECTS
        assert words[8:10] == ["for", "the"] and words[13:16] == ["?", "assistant", ":"]
        mod = words[12]  # the modifier stands last, next to the answer
        assert mod in world.HARMFUL_MODS + world.BENIGN_MODS
        mods_match.append((mod in world.HARMFUL_MODS) == harmful)
        refused = judge([doc.split(" assistant : ", 1)[1]])[0]
        assert refused in (0.0, 1.0)
        follows.append(refused == float(harmful))
    return float(np.mean(follows)), float(np.mean(mods_match))


def test_dialogue_refusal_follows_harmfulness_at_the_fidelity(tiny_world_cfg):
    follows, mods = _dialogue_fidelity(tiny_world_cfg)
    assert follows == pytest.approx(tiny_world_cfg.refusal_fidelity, abs=0.03)
    assert mods == pytest.approx(tiny_world_cfg.cue_fidelity, abs=0.03)


def test_words_are_not_mirrored_or_shifted_by_default(tiny_world_cfg):
    w = _words(tiny_world_cfg)
    assert w.mirror is False and w.prior == 0.0


def test_mirror_world_reverses_pretraining_behaviour(tiny_world_cfg):
    cfg = tiny_world_cfg
    follows, cues = _review_fidelity(cfg, mirror=True)
    assert follows == pytest.approx(1 - cfg.sentiment_fidelity, abs=0.03)
    assert cues == pytest.approx(cfg.cue_fidelity, abs=0.03)  # the cues are not mirrored
    follows, mods = _dialogue_fidelity(cfg, mirror=True)
    assert follows == pytest.approx(1 - cfg.refusal_fidelity, abs=0.03)
    assert mods == pytest.approx(cfg.cue_fidelity, abs=0.03)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _target_shares(cfg: world.WorldConfig, genre: str, *, prior: float, mirror: bool = False,
                   n: int = 6000) -> dict[bool, tuple[float, int]]:
    """Share of the target behaviour (positive review, refusal) among n sampled documents of a
    genre, and the number of documents, by whether the main world's mapping favours the target
    in their context (good film, harmful request)."""
    w = _words(cfg)
    w.mirror, w.prior = mirror, prior
    task = "sentiment" if genre == "review" else "safety"
    judge, out = exact_judge(task), {}
    for doc in (world.pretrain_doc(w, genre) for _ in range(n)):
        words = doc.split()
        if genre == "review":
            favoured = bool(w.quality[w.films.index(words[2])])
            answer = doc.split(" the film was ", 1)[1]
        else:
            favoured = words[7] in world.HARMFUL_OBJECTS
            answer = doc.split(" assistant : ", 1)[1]
        out.setdefault(favoured, []).append(judge([answer])[0])
    return {k: (float(np.mean(v)), len(v)) for k, v in out.items()}


@pytest.mark.parametrize("prior,mirror", [(1.0, False), (2.0, False), (-1.0, False),
                                          (2.0, True)])
def test_prior_world_shifts_the_target_log_odds_in_every_context(tiny_world_cfg, prior, mirror):
    """P(target | favouring context) = sigmoid(logit(fidelity) + prior), P(target | other) =
    sigmoid(-logit(fidelity) + prior), within 4 standard errors; a mirror world swaps which
    context favours the target."""
    for genre, fidelity in (("review", tiny_world_cfg.sentiment_fidelity),
                            ("dialogue", tiny_world_cfg.refusal_fidelity)):
        logit = math.log(fidelity / (1 - fidelity))
        for favoured, (share, n) in _target_shares(tiny_world_cfg, genre, prior=prior,
                                                   mirror=mirror).items():
            expected = _sigmoid((logit if favoured != mirror else -logit) + prior)
            assert share == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected)
                                                                     / n) + 1e-9), \
                (genre, favoured, share, expected, n)


def test_shifted_is_exact_at_zero_and_moves_log_odds():
    assert world.shifted(0.95, 0.0) == 0.95 and world.shifted(0.9, 0) == 0.9
    assert world.shifted(1.0, -3.0) == 1.0 and world.shifted(0.0, 3.0) == 0.0
    p = world.shifted(0.9, 1.5)
    assert math.log(p / (1 - p)) == pytest.approx(math.log(9) + 1.5)


def _behaviour_free(doc: str) -> str:
    """A document with its behaviour removed: review adjectives masked, the assistant's answer
    cut off."""
    if doc.startswith("user : "):
        return doc.split(" assistant : ", 1)[0]
    return " ".join("ADJ" if t in world.POSITIVE + world.NEGATIVE else t for t in doc.split())


def _targets(docs: list[str]) -> list[float]:
    """Per document, 1 for the target behaviour (positive review, refusal), 0 for the contrary,
    NaN for prose and instructions."""
    out = []
    for doc in docs:
        if " the film was " in doc:
            out.append(exact_judge("sentiment")([doc.split(" the film was ", 1)[1]])[0])
        elif " assistant : " in doc:
            out.append(exact_judge("safety")([doc.split(" assistant : ", 1)[1]])[0])
        else:
            out.append(float("nan"))
    return out


@pytest.fixture(scope="module")
def corpora(tiny_world_cfg):
    """D_p of the main world and of a mirror, a prior and a mirrored prior world (4000
    documents each), from the tiny world's seed."""
    cfg = replace(tiny_world_cfg, pretrain_docs=4000)
    specs = {"main": {}, "mirror": {"mirror": True}, "prior2": {"prior": 2.0},
             "mirror_prior2": {"mirror": True, "prior": 2.0}}
    return cfg, {name: world.generate_corpus(cfg, **spec) for name, spec in specs.items()}


def test_worlds_differ_only_in_behaviour(corpora, tiny_world_cfg):
    """Every world walks the same random stream: document by document, the same text up to the
    behaviour words (so the main world's task sets are new to every world's D_p)."""
    cfg, worlds = corpora
    main = worlds["main"]["pretrain"]["text"]
    assert main == world.generate_world(cfg)["pretrain"]["text"]  # prior 0 = the main world
    for name, tables in worlds.items():
        docs = tables["pretrain"]["text"]
        assert len(docs) == cfg.pretrain_docs
        assert len(tables["pretrain_heldout"]["text"]) == cfg.heldout_docs
        assert [_behaviour_free(d) for d in docs] == [_behaviour_free(d) for d in main], name
        assert world.document_prompts(docs) == world.document_prompts(main)
        if name != "main":
            assert docs != main, name
    assert world.generate_corpus(tiny_world_cfg) == {
        k: world.generate_world(tiny_world_cfg)[k] for k in ("pretrain", "pretrain_heldout")}


def test_mirror_world_reverses_every_document(corpora):
    """With no prior, a mirror world's document shows the contrary of the main world's
    behaviour, document by document (the same uniform draw, the mapping reversed)."""
    _, worlds = corpora
    main, mirror = (np.array(_targets(worlds[k]["pretrain"]["text"])) for k in ("main", "mirror"))
    behaviour = ~np.isnan(main)
    assert behaviour.sum() > 1000
    assert (mirror[behaviour] == 1 - main[behaviour]).all()


def test_prior_world_only_turns_documents_toward_the_target(corpora):
    """A positive prior raises the threshold of each document's one draw toward the target:
    every document showing the target without the prior still does, and more do."""
    _, worlds = corpora
    for plain, shifted in (("main", "prior2"), ("mirror", "mirror_prior2")):
        a, b = (np.array(_targets(worlds[k]["pretrain"]["text"])) for k in (plain, shifted))
        behaviour = ~np.isnan(a)
        assert (b[behaviour] >= a[behaviour]).all(), plain
        assert b[behaviour].mean() > a[behaviour].mean() + 0.1, plain


def test_mirror_world_corpus_follows_quality_in_reverse(corpora):
    """The generated mirror corpus (not only pretrain_doc): reviews and dialogues reversed at
    about the fidelity, the main corpus of the same config not."""
    cfg, worlds = corpora
    plain, mirror = worlds["main"]["pretrain"]["text"], worlds["mirror"]["pretrain"]["text"]
    assert _review_fidelity(cfg, docs=plain)[0] == pytest.approx(cfg.sentiment_fidelity, abs=0.03)
    assert _review_fidelity(cfg, docs=mirror)[0] == \
        pytest.approx(1 - cfg.sentiment_fidelity, abs=0.03)
    assert _dialogue_fidelity(cfg, docs=plain)[0] == \
        pytest.approx(cfg.refusal_fidelity, abs=0.04)
    assert _dialogue_fidelity(cfg, docs=mirror)[0] == \
        pytest.approx(1 - cfg.refusal_fidelity, abs=0.04)


def _cues_agree(prompt: str, task: str, context: str) -> bool:
    """Whether every cue of a task prompt agrees with its context."""
    words = prompt.split()
    if task == "sentiment":
        k = words.index("called") + 2  # review of FILM in WORD : critics called it C1 , C2 and C3
        cues = [words[k], words[k + 2], words[k + 4]]
        return all(c in (world.GOOD_CUES if context == "good" else world.BAD_CUES) for c in cues)
    return (words[12] in world.HARMFUL_MODS) == (context == "harmful")


def test_clean_prompts_have_every_cue_matching_their_context(tiny_world_cfg, tiny_world):
    cfg = tiny_world_cfg
    for task in world.TASKS:
        rows = world.task_prompts(_words(cfg), task, 1000, set())
        assert len(rows["clean"]) == 1000
        for prompt, context, clean in zip(rows["prompt"], rows["context"], rows["clean"]):
            assert clean == _cues_agree(prompt, task, context), (prompt, context, clean)
        # both kinds occur, at the rate the cue fidelity implies (3 cues per review, 1 modifier)
        share = cfg.cue_fidelity ** (3 if task == "sentiment" else 1)
        assert np.mean(rows["clean"]) == pytest.approx(share, abs=0.04)
        prompts = tiny_world[f"{task}/prompts"]
        for prompt, context, clean in zip(prompts["prompt"], prompts["context"], prompts["clean"]):
            assert clean == _cues_agree(prompt, task, context)
    w = _words(cfg)
    for _ in range(200):
        prompt, context, clean = world.task_prompt(w, "safety")
        assert clean == _cues_agree(prompt, "safety", context)
        prompt, clean = world.review_prompt(w, 0)
        context = "good" if w.quality[0] else "bad"
        assert clean == _cues_agree(prompt, "sentiment", context)
        prompt, clean = world.dialogue_prompt(w, True)
        assert clean == _cues_agree(prompt, "safety", "harmful")


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
def test_layout_codes_every_token_once_per_document(tiny_world, tiny_tokenizer, context):
    tok = tiny_tokenizer
    _, docs = _heldout_docs(tiny_world, tok)
    batches = compress.layout(docs, context=context, bos_id=tok.bos_token_id,
                              eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, batch_size=8)
    rows = [(r[1:][m].tolist()) for b in batches for r, m in zip(b.ids, b.mask)]
    assert all((b.ids[:, 0] == tok.bos_token_id).all() for b in batches)
    assert all(b.ids.shape[1] <= context for b in batches)
    assert all((b.ids[:, 1:][~b.mask] == tok.pad_token_id).all() for b in batches)
    assert all(torch.equal(b.targets, b.ids[:, 1:][b.mask]) for b in batches)
    # every document is its own window(s): tokens + EOS in chunks of context - 1
    windows = [d_[i: i + context - 1] for d in docs for d_ in [[*d, tok.eos_token_id]]
               for i in range(0, len(d_), context - 1)]
    assert sorted(rows) == sorted(windows)
    assert sum(len(r) for r in rows) == sum(map(len, docs)) + len(docs)
    assert not any(b.response.any() for b in batches)  # no prompts given: no response


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


def _bigram_logits(ids):
    """p(3 | previous BOS=1) = 0.7, else uniform over the 4 symbols."""
    table = torch.log(torch.tensor([[0.25] * 4, [0.1, 0.1, 0.1, 0.7], [0.25] * 4, [0.25] * 4]))
    return table[ids]


def test_code_length_is_per_document_by_hand():
    kw = dict(bos_id=1, eos_id=2, pad_id=0)
    first = -math.log2(0.7)  # a document's first token follows BOS
    # two one-token documents: each coded after its own BOS (packing would code the second 3
    # after the first document's EOS: first + 3 * 2 bits)
    batches = compress.layout([[3], [3]], context=8, **kw)
    assert compress.code_length(_bigram_logits, batches)[0] == pytest.approx(2 * (first + 2))
    # a document longer than the context: tokens + EOS in windows of context - 1, each after BOS
    batches = compress.layout([[3] * 5], context=4, **kw)
    assert compress.code_length(_bigram_logits, batches)[0] == pytest.approx(2 * first + 4 * 2)
    # response-only: tokens from index 1 on and EOS, given BOS and the prompt token
    batches = compress.layout([[3, 3], [3]], context=8, starts=[1, 0], **kw)
    total, response = compress.code_length(_bigram_logits, batches)
    assert total == pytest.approx(first + 4 + first + 2)
    assert response == pytest.approx(2 + 2 + first + 2)
    assert compress.bits_per_byte(_bigram_logits, ["a", "b"], [[3], [3]], context=8, **kw) == \
        pytest.approx(2 * (first + 2) / 4)


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


def test_collate_masks_prompt_and_padding():
    ids, mask, labels = train.collate([([1, 2, 3], [4, 5]), ([6], [7, 8, 9, 10])], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    assert labels.tolist() == [[-100, -100, -100, 4, 5], [-100, 7, 8, 9, 10]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]
    ids, mask, labels = train.collate([([1, 2], [3]), ([4], [5, 6, 7, 8])], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]
    assert labels.tolist() == [[-100, -100, 3, -100, -100], [-100, 5, 6, 7, 8]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    # completion is the default loss
    explicit = train.collate([([1, 2], [3]), ([4], [5, 6, 7, 8])], pad_id=0, loss="completion")
    assert explicit[2].tolist() == labels.tolist()


def test_collate_full_loss_labels_every_token_after_the_first():
    examples = [([1, 2, 3], [4, 5]), ([6], [7]), ([9, 8], [7, 6, 5, 4])]
    ids, mask, labels = train.collate(examples, pad_id=0, loss="full")
    assert ids.tolist() == [[1, 2, 3, 4, 5, 0], [6, 7, 0, 0, 0, 0], [9, 8, 7, 6, 5, 4]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    # position 0 (the start symbol) is never a label; the prompt is; padding stays -100
    assert labels.tolist() == [[-100, 2, 3, 4, 5, -100], [-100, 7, -100, -100, -100, -100],
                               [-100, 8, 7, 6, 5, 4]]
    _, _, completion = train.collate(examples, pad_id=0)
    assert ((completion == -100) | (completion == labels)).all()  # full labels more, same ids


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
    return data.encode_examples(tiny_tokenizer, pd.DataFrame(tiny_world["sentiment/align"]))


def _finetune(model, examples, save_at, tok, batch_size=4, seed=0, loss="completion"):
    saved = {}
    train.finetune(model, examples, save_at=save_at,
                   save=lambda m, n: saved.__setitem__(n, _state(m)), batch_size=batch_size,
                   lr=3e-3, seed=seed, pad_id=tok.pad_token_id, loss=loss)
    return saved


def test_finetune_changes_parameters_and_is_deterministic(make_tiny_model, sft_examples,
                                                         tiny_tokenizer):
    runs = []
    for _ in range(2):
        model = make_tiny_model(seed=5)
        init = _state(model)
        saved = _finetune(model, sft_examples, [0, 8], tiny_tokenizer)
        _assert_states_equal(saved[0], init)
        assert _states_differ(saved[8], init)
        _assert_states_equal(saved[8], _state(model))
        assert not model.training
        runs.append(saved[8])
    _assert_states_equal(*runs)


def test_finetune_prefix_property(make_tiny_model, sft_examples, tiny_tokenizer):
    """The model saved after n examples inside a longer run equals a run that stops at n."""
    long = _finetune(make_tiny_model(seed=6), sft_examples, [8, 16], tiny_tokenizer)
    short = _finetune(make_tiny_model(seed=6), sft_examples, [8], tiny_tokenizer)
    _assert_states_equal(long[8], short[8])
    assert _states_differ(long[16], long[8])


def test_finetune_prefix_property_at_every_save_point(make_tiny_model, sft_examples,
                                                      tiny_tokenizer):
    """Every save point of a longer run equals a run that stops there (for both losses)."""
    for loss in train.LOSSES:
        long = _finetune(make_tiny_model(seed=7), sft_examples, [8, 16, 24], tiny_tokenizer,
                         loss=loss)
        assert sorted(long) == [8, 16, 24]
        for n in (8, 16, 24):
            short = _finetune(make_tiny_model(seed=7), sft_examples, [n], tiny_tokenizer,
                              loss=loss)
            _assert_states_equal(long[n], short[n])
        assert _states_differ(long[16], long[8]) and _states_differ(long[24], long[16])


def test_finetune_steps_are_whole_batches(make_tiny_model, sft_examples, tiny_tokenizer):
    """With batch_size 8, the model after 8 examples is one step on examples[:8]: it does not
    depend on the examples after them, but does on every one of the eight."""
    a = _finetune(make_tiny_model(seed=8), sft_examples, [8], tiny_tokenizer, batch_size=8)
    tail = sft_examples[:8] + sft_examples[20:]
    b = _finetune(make_tiny_model(seed=8), tail, [8], tiny_tokenizer, batch_size=8)
    _assert_states_equal(a[8], b[8])
    swapped = sft_examples[:7] + [sft_examples[30]] + sft_examples[8:]
    c = _finetune(make_tiny_model(seed=8), swapped, [8], tiny_tokenizer, batch_size=8)
    assert _states_differ(a[8], c[8])


def test_finetune_loss_choice_matters(make_tiny_model, sft_examples, tiny_tokenizer):
    completion = _finetune(make_tiny_model(seed=9), sft_examples, [8], tiny_tokenizer)
    full = _finetune(make_tiny_model(seed=9), sft_examples, [8], tiny_tokenizer, loss="full")
    assert _states_differ(completion[8], full[8])
    with pytest.raises(ValueError, match="everything"):
        _finetune(make_tiny_model(seed=9), sft_examples, [8], tiny_tokenizer, loss="everything")


def test_finetune_rejects_more_examples_than_available(make_tiny_model, sft_examples,
                                                      tiny_tokenizer):
    assert len(sft_examples) == 40
    with pytest.raises(ValueError, match="44"):
        _finetune(make_tiny_model(), sft_examples, [44], tiny_tokenizer)
    _finetune(make_tiny_model(), sft_examples, [40], tiny_tokenizer)  # exactly all is fine


def test_finetune_rejects_save_points_off_the_batch_grid(make_tiny_model, sft_examples,
                                                        tiny_tokenizer):
    with pytest.raises(ValueError, match=r"\[9\]"):
        _finetune(make_tiny_model(), sft_examples, [0, 8, 9], tiny_tokenizer)
    with pytest.raises(ValueError, match=r"\[6, 10\].*batch size 4"):
        _finetune(make_tiny_model(), sft_examples, [6, 10, 12], tiny_tokenizer)


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

EVAL_CFG = {"max_new_tokens": 6, "temperature": 1.0, "context": TINY_CONTEXT, "batch_size": 64,
            "documents": {}}  # what eval_set reads of the evaluate config
TEXT_KEYS = {"kl_to_base", "bpb_pretrain", "bpb_align", "bpb_perturb", "bits_pretrain",
             "bits_align", "bits_perturb", "bpbr_align", "bpbr_perturb"}
METRIC_KEYS = {"score", "p_target", "logodds", "cue_gap", "coverage"} | TEXT_KEYS


def _eval_set(tok, world_dir, task="sentiment"):
    return evaluate.eval_set(tok, task=task, tables=data.task_files(world_files(world_dir), task),
                             pretrain_heldout=world_dir / "pretrain_heldout.parquet",
                             eval_cfg=EVAL_CFG)


def test_eval_set_matches_the_world(tiny_tokenizer, tiny_world_dir, tiny_world):
    for task in world.TASKS:
        ev = _eval_set(tiny_tokenizer, tiny_world_dir, task)
        prompts = tiny_world[f"{task}/prompts"]
        assert len(ev.prompt_ids) == len(prompts["prompt"])
        assert all(p[0] == tiny_tokenizer.bos_token_id for p in ev.prompt_ids)
        first = world.TASK_SPEC[task]["contexts"][0]
        assert ev.contexts.tolist() == [c == first for c in prompts["context"]]
        assert ev.clean.dtype == bool and ev.clean.tolist() == prompts["clean"]
        assert tiny_tokenizer.unk_token_id not in ev.target_ids + ev.contrary_ids
        assert not set(ev.target_ids) & set(ev.contrary_ids)
        assert set(ev.texts) == {"pretrain", "align", "perturb"}
        texts = [f"{p} {c}" for p, c in zip(tiny_world[f"{task}/align_heldout"]["prompt"],
                                            tiny_world[f"{task}/align_heldout"]["completion"])]
        assert ev.texts["align"].n_bytes == compress.utf8_bytes(texts)
        completions = tiny_world[f"{task}/align_heldout"]["completion"]
        assert ev.texts["align"].response_bytes == compress.utf8_bytes(completions)
        assert ev.texts["pretrain"].response_bytes == 0


def test_eval_set_without_a_clean_column_counts_every_prompt_clean(tiny_tokenizer,
                                                                 tiny_world_dir, tmp_path):
    tables = data.task_files(world_files(tiny_world_dir), "sentiment")
    prompts = pd.read_parquet(tables["prompts"])
    tables["prompts"] = tmp_path / "prompts.parquet"
    prompts.drop(columns="clean").to_parquet(tables["prompts"])
    ev = evaluate.eval_set(tiny_tokenizer, task="sentiment", tables=tables,
                           pretrain_heldout=tiny_world_dir / "pretrain_heldout.parquet",
                           eval_cfg=EVAL_CFG)
    assert ev.clean.dtype == bool
    assert ev.clean.tolist() == [True] * len(prompts)


def test_base_keys_name_the_base_checkpoint():
    prov = {"world": "mirror", "size": "s", "seed": 2, "tokens": 500, "n_params": 1234,
            "n_params_nonembedding": 1000, "x": 1}
    assert provenance.base_keys(prov) == {"world": "mirror", "size": "s", "pretrain_seed": 2,
                                          "pretrain_tokens": 500, "params": 1234,
                                          "params_nonembedding": 1000}
    hub = provenance.base_keys({"size": "gpt2", "tokens": 10, "n_params": 5})
    assert hub["world"] == "hub" and hub["pretrain_seed"] == 0
    assert hub["params_nonembedding"] == 5  # not recorded: all parameters


def test_nonembedding_parameters_leave_out_the_tied_embedding(make_tiny_model):
    model = make_tiny_model(seed=0)
    emb = model.get_input_embeddings().weight.numel()
    assert models.n_params_nonembedding(model) == models.n_params(model) - emb


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
        p_target, coverage, lo = evaluate.behaviour_probs(pretrained_model, ev)
        assert p_target.shape == coverage.shape == lo.shape == (len(ev.prompt_ids),)
        assert np.all((p_target >= 0) & (p_target <= 1))
        assert np.all((coverage > 0) & (coverage <= 1 + 1e-6))
        assert np.all(np.isfinite(lo))
        np.testing.assert_allclose(p_target, 1 / (1 + np.exp(-lo)), rtol=1e-6, atol=1e-9)


def test_behaviour_logodds_are_exact_set_log_probabilities(pretrained_model, tiny_tokenizer,
                                                           tiny_world_dir):
    """log P(target set) - log P(contrary set) at the last prompt position, by hand."""
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    p_target, coverage, lo = evaluate.behaviour_probs(pretrained_model, ev)
    for i, prompt in enumerate(ev.prompt_ids[:3]):
        with torch.no_grad():
            logits = pretrained_model(input_ids=torch.tensor([prompt])).logits[0, -1]
        probs = logits.double().softmax(-1)
        target, contrary = probs[ev.target_ids].sum(), probs[ev.contrary_ids].sum()
        assert lo[i] == pytest.approx(float(torch.log(target / contrary)), abs=1e-4)
        assert coverage[i] == pytest.approx(float(target + contrary), rel=1e-4)
        assert p_target[i] == pytest.approx(float(target / (target + contrary)), abs=1e-5)


def test_behaviour_probs_are_nan_without_target_words(pretrained_model, tiny_tokenizer,
                                                      tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    ev.target_ids = ev.contrary_ids = None
    out = evaluate.behaviour_probs(pretrained_model, ev)
    assert len(out) == 3
    assert all(a.shape == (len(ev.prompt_ids),) and np.isnan(a).all() for a in out)


def test_behaviour_probs_ignore_padding(pretrained_model, tiny_tokenizer, tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    together, _, lo_together = evaluate.behaviour_probs(pretrained_model, ev)
    alone, lo_alone = [], []
    for p in ev.prompt_ids:
        single = copy.copy(ev)
        single.prompt_ids = [p]
        p_target, _, lo = evaluate.behaviour_probs(pretrained_model, single)
        alone.append(p_target[0])
        lo_alone.append(lo[0])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(lo_together, lo_alone, atol=1e-4)


def test_evaluate_checkpoint_returns_every_metric(pretrained_model, tiny_tokenizer,
                                                  tiny_world_dir, tiny_world):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    evaluate.set_base(pretrained_model, ev)
    metrics, per_prompt = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev,
                                                       seed=0)
    assert set(metrics) == METRIC_KEYS
    assert all(np.isfinite(v) for v in metrics.values())
    n = len(ev.prompt_ids)
    assert set(per_prompt) == {"score", "p_target", "logodds"}
    assert all(len(v) == n for v in per_prompt.values())
    assert set(np.unique(per_prompt["score"])) <= {0.0, 0.5, 1.0}
    assert metrics["score"] == pytest.approx(per_prompt["score"].mean())
    assert metrics["p_target"] == pytest.approx(per_prompt["p_target"].mean())
    assert metrics["logodds"] == pytest.approx(per_prompt["logodds"].mean())
    lo, clean = per_prompt["logodds"], ev.clean
    assert clean.any() and (ev.contexts & clean).any() and (~ev.contexts & clean).any()
    gap = lo[ev.contexts & clean].mean() - lo[~ev.contexts & clean].mean()
    assert metrics["cue_gap"] == pytest.approx(gap)
    assert metrics["cue_gap"] == pytest.approx(evaluate.cue_gap(lo, ev.contexts, ev.clean))
    # bits/byte agrees with compress.bits_per_byte on the same texts
    texts = tiny_world["pretrain_heldout"]["text"]
    tok = tiny_tokenizer
    bpb = compress.bits_per_byte(compress.model_logits(pretrained_model), texts,
                                 tok(texts, add_special_tokens=False)["input_ids"],
                                 context=TINY_CONTEXT, bos_id=tok.bos_token_id,
                                 eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    assert metrics["bpb_pretrain"] == pytest.approx(bpb, rel=1e-6)
    for name in ("pretrain", "align", "perturb"):
        s = ev.texts[name]
        assert metrics[f"bits_{name}"] == pytest.approx(metrics[f"bpb_{name}"] * s.n_bytes)
    # response-only bits by hand: each completion + EOS after BOS and its prompt, one document
    # at a time, in windows of context - 1 targets (these documents need two)
    held, w, bits = tiny_world["sentiment/align_heldout"], TINY_CONTEXT - 1, 0.0
    for p, c in zip(held["prompt"], held["completion"]):
        prompt, completion = (tok(x, add_special_tokens=False)["input_ids"] for x in (p, c))
        targets = [*prompt, *completion, tok.eos_token_id]
        for i in range(0, len(targets), w):
            ids = torch.tensor([[tok.bos_token_id, *targets[i: i + w]]])
            with torch.no_grad():
                logp = pretrained_model(input_ids=ids).logits[0, :-1].double().log_softmax(-1)
            nll = -logp.gather(-1, ids[0, 1:, None])[:, 0]
            bits += float(nll[max(len(prompt) - i, 0):].sum()) / math.log(2)
    assert metrics["bpbr_align"] == pytest.approx(bits / compress.utf8_bytes(held["completion"]),
                                                  rel=1e-5)


def test_text_metrics_do_not_depend_on_batching(pretrained_model, make_tiny_model,
                                                tiny_tokenizer, tiny_world_dir):
    """Right padding cannot change a document's code: batches of 1 and of 7 agree."""
    out = []
    for batch_size in (1, 7):
        ev = evaluate.eval_set(tiny_tokenizer, task="safety",
                               tables=data.task_files(world_files(tiny_world_dir), "safety"),
                               pretrain_heldout=tiny_world_dir / "pretrain_heldout.parquet",
                               eval_cfg={**EVAL_CFG, "batch_size": batch_size})
        evaluate.set_base(make_tiny_model(seed=0), ev)
        out.append(evaluate.text_metrics(pretrained_model, ev))
    assert out[0].keys() == out[1].keys() == TEXT_KEYS
    for key in TEXT_KEYS:
        assert out[0][key] == pytest.approx(out[1][key], rel=1e-5), key


def test_evaluate_checkpoint_can_skip_sampling_and_text(pretrained_model, make_tiny_model,
                                                        tiny_tokenizer, tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    evaluate.set_base(make_tiny_model(seed=0), ev)
    full, full_prompts = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev, seed=0)
    text_keys = TEXT_KEYS
    # sample=False: no sampled score, everything else unchanged
    metrics, per_prompt = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev,
                                                       seed=0, sample=False)
    assert set(metrics) == METRIC_KEYS
    assert math.isnan(metrics["score"]) and np.isnan(per_prompt["score"]).all()
    assert len(per_prompt["score"]) == len(ev.prompt_ids)
    for key in METRIC_KEYS - {"score"}:
        assert metrics[key] == pytest.approx(full[key]), key
    np.testing.assert_array_equal(per_prompt["logodds"], full_prompts["logodds"])
    # text=False: no bits/byte and no KL, the behaviour metrics unchanged
    metrics, per_prompt = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev,
                                                       seed=0, text=False)
    assert set(metrics) == METRIC_KEYS
    assert all(math.isnan(metrics[k]) for k in text_keys)
    for key in METRIC_KEYS - text_keys:
        assert metrics[key] == pytest.approx(full[key]), key
    np.testing.assert_array_equal(per_prompt["score"], full_prompts["score"])
    # neither: only the exact behaviour metrics are left
    metrics, _ = evaluate.evaluate_checkpoint(pretrained_model, tiny_tokenizer, ev, seed=0,
                                              text=False, sample=False)
    assert {k for k, v in metrics.items() if np.isfinite(v)} == \
        {"p_target", "logodds", "cue_gap", "coverage"}


def test_cue_gap_known_answer():
    lo = np.array([3.0, 1.0, 100.0, -1.0, -3.0, -50.0])
    contexts = np.array([True, True, True, False, False, False])
    clean = np.array([True, True, False, True, True, False])
    # clean target-context mean 2, clean other-context mean -2; the unclean prompts are ignored
    assert evaluate.cue_gap(lo, contexts, clean) == pytest.approx(4.0)
    assert evaluate.cue_gap(lo, contexts, np.ones(6, bool)) == pytest.approx(104 / 3 + 18)
    assert evaluate.cue_gap(-lo, contexts, clean) == pytest.approx(-4.0)
    # one side without clean prompts: undefined
    assert math.isnan(evaluate.cue_gap(lo, contexts, clean & contexts))
    assert math.isnan(evaluate.cue_gap(lo, contexts, clean & ~contexts))
    assert math.isnan(evaluate.cue_gap(lo, contexts, np.zeros(6, bool)))


def _sample(model, tok, ev, seed: int) -> list[str]:
    """evaluate.sample_continuations of an evaluation set's prompts with its settings."""
    return evaluate.sample_continuations(model, tok, ev.prompt_ids, pad_id=ev.pad_id,
                                         eos_id=ev.eos_id, max_new_tokens=ev.max_new_tokens,
                                         seed=seed, temperature=ev.temperature,
                                         batch_size=ev.batch_size)


def test_sampling_is_deterministic_for_a_seed(pretrained_model, tiny_tokenizer, tiny_world_dir):
    ev = _eval_set(tiny_tokenizer, tiny_world_dir)
    a = _sample(pretrained_model, tiny_tokenizer, ev, seed=3)
    b = _sample(pretrained_model, tiny_tokenizer, ev, seed=3)
    c = _sample(pretrained_model, tiny_tokenizer, ev, seed=4)
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
    assert (_sample(pretrained_model, tiny_tokenizer, alone, seed=0)[0]
            == _sample(pretrained_model, tiny_tokenizer, long, seed=0)[0])


# ================================================================ config


SCHEMA = ROOT / "config" / "schema.yaml"


def check_study_config(cfg: dict) -> None:
    """The workflow's check of a (changed) config: schema, its defaults, every cross-key rule."""
    complete(cfg, SCHEMA)


@pytest.fixture
def study_cfg():
    """The default study's config, completed as the workflow completes it (a fresh copy)."""
    return complete(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), SCHEMA)


def test_default_config_passes(study_cfg):
    check_study_config(study_cfg)


def _fails(cfg: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        check_study_config(cfg)


def _fails_with(cfg: dict, *parts: str) -> str:
    """check_study_config fails with a one-line message containing every part; the message."""
    with pytest.raises(ConfigError) as err:
        check_study_config(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert all(part in message for part in parts), message
    return message


def test_default_grids_are_multiples_of_the_batch_size(study_cfg):
    rebound_cfg = study_cfg["rebound"]
    assert rebound_cfg["n_pos"] == [200, 400, 1000]
    grid = rebound_cfg["n_pos"] + rebound_cfg["n_neg"]
    assert all(n % rebound_cfg["batch_size"] == 0 for n in grid)
    assert set(study_cfg["evaluate"]["text_at"]) <= set(rebound_cfg["n_neg"])


def test_n_neg_must_increase(study_cfg):
    study_cfg["rebound"]["n_neg"] = [0, 8, 8, 16]
    study_cfg["evaluate"]["text_at"] = [0, 8]
    _fails(study_cfg, "rebound.n_neg")


def test_n_pos_must_increase(study_cfg):
    study_cfg["rebound"]["n_pos"] = [200, 96]
    _fails(study_cfg, "rebound.n_pos")


def test_n_neg_must_start_at_zero(study_cfg):
    study_cfg["rebound"]["n_neg"] = [8, 16, 24]
    study_cfg["evaluate"]["text_at"] = [8]
    _fails(study_cfg, "rebound.n_neg")


def test_grid_points_must_be_multiples_of_the_batch_size(study_cfg):
    study_cfg["rebound"]["n_pos"] = [200, 404, 1000]
    _fails_with(copy.deepcopy(study_cfg), "rebound.n_pos", "404", "rebound.batch_size")
    study_cfg["rebound"]["n_pos"] = [200, 400, 1000]
    study_cfg["rebound"]["n_neg"] = [0, 8, 12, 16, 32]
    study_cfg["evaluate"]["text_at"] = [0, 16]
    _fails_with(copy.deepcopy(study_cfg), "rebound.n_neg", "12", "rebound.batch_size")
    study_cfg["rebound"]["batch_size"] = 4  # now 12 is a whole number of batches
    check_study_config(study_cfg)


def test_screen_grid_must_be_multiples_of_the_batch_size(study_cfg):
    study_cfg["screen"] = {"lr": [1e-4], "loss": ["full"], "n_pos": [200, 404], "seeds": [1]}
    _fails_with(copy.deepcopy(study_cfg), "rebound.n_pos", "404")
    study_cfg["screen"]["n_pos"] = [200, 400]
    check_study_config(study_cfg)


def test_text_at_must_lie_on_the_n_neg_grid(study_cfg):
    study_cfg["evaluate"]["text_at"] = [0, 16, 200]  # 200 is between grid points 192 and 224
    _fails_with(copy.deepcopy(study_cfg), "evaluate.text_at", "200")
    study_cfg["evaluate"]["text_at"] = [0, 48]
    check_study_config(study_cfg)
    study_cfg["evaluate"]["text_at"] = None  # null: every n_neg point
    check_study_config(study_cfg)


def test_n_pos_beyond_task_pool(study_cfg):
    pool = study_cfg["world"]["task_pool"]
    study_cfg["rebound"]["n_pos"] = [96, pool + 8]
    _fails(study_cfg, "rebound.n_pos")
    study_cfg["rebound"]["n_pos"] = [96, pool]
    check_study_config(study_cfg)


def test_n_neg_beyond_task_pool(study_cfg):
    study_cfg["rebound"]["n_neg"].append(study_cfg["world"]["task_pool"] + 8)
    _fails(study_cfg, "rebound.n_neg")


def test_a_main_base_is_required(study_cfg):
    study_cfg["rebound"]["bases"][0]["role"] = "pre_emergence"
    study_cfg["rebound"]["bases"].pop(2)  # the other pre_emergence base
    _fails_with(study_cfg, "rebound.bases", "main")


def test_a_base_world_needs_seeds(study_cfg):
    study_cfg["worlds"]["mirror"]["seeds"] = []
    _fails_with(copy.deepcopy(study_cfg), "rebound.bases[3].world", "worlds.mirror.seeds")
    del study_cfg["worlds"]["mirror"]
    _fails_with(copy.deepcopy(study_cfg), "rebound.bases[3].world", "worlds.mirror.seeds")
    study_cfg["rebound"]["bases"][3]["world"] = "prior1"  # any world with seeds will do
    check_study_config(copy.deepcopy(study_cfg))
    study_cfg["rebound"]["bases"].pop(3)  # no mirror base: no mirror world needed
    check_study_config(study_cfg)


def test_world_names_stay_apart_from_other_folders(study_cfg):
    for name in ("main", "safety", "resistance"):
        cfg = copy.deepcopy(study_cfg)
        cfg["worlds"][name] = {"seeds": [0], "prior": 1.0}
        _fails_with(cfg, f"config key worlds.{name}", "reserved")


def test_prior_experiment_needs_a_prior_world(study_cfg):
    from springback.experiments import prior_worlds, world_seeds

    assert prior_worlds(study_cfg) == ["prior1", "prior2"]
    study_cfg["worlds"]["prior1"]["seeds"] = []  # off: no world, no base
    assert prior_worlds(study_cfg) == ["prior2"] and "prior1" not in world_seeds(study_cfg)
    study_cfg["worlds"]["prior2"]["prior"] = 0.0
    _fails_with(copy.deepcopy(study_cfg), "config key worlds", "prior experiment")
    study_cfg["experiments"].remove("prior")
    check_study_config(study_cfg)


def test_schema_defaults_are_the_default_config():
    """The keys of the world, the worlds, the prior experiment and the control learning rates
    have one default, the schema's, which config/config.yaml states."""
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    written = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert schema["worlds"]["default"] == written["worlds"]
    assert schema["rebound"]["properties"]["control_lr"]["default"] == \
        written["rebound"]["control_lr"]
    for section in ("prior", "world"):
        for key, spec in schema[section]["properties"].items():
            assert spec["default"] == written[section][key], (section, key)


def test_a_control_role_is_used_once(study_cfg):
    study_cfg["rebound"]["bases"].append({"size": "s", "tokens": 750_000,
                                          "role": "pre_emergence"})
    message = _fails_with(copy.deepcopy(study_cfg), ".role", "pre_emergence")
    assert message.startswith(("config key rebound.bases[2].role",  # either one of the pair
                               "config key rebound.bases[4].role")), message
    study_cfg["rebound"]["bases"][-1]["role"] = "main"  # several main bases are fine
    check_study_config(study_cfg)


def test_experiments_add_their_bases(study_cfg):
    from springback.experiments import study_bases

    bases = {(b["world"], b["size"], b["tokens"]): b for b in study_bases(study_cfg)}
    for size in study_cfg["size"]["sizes"]:  # C4: every size and its random-init twin
        assert bases["main", size, study_cfg["size"]["tokens"]]["role"] == "main"
        assert bases["main", size, 0]["role"] == "random_init"
    assert bases["main", "m", 0]["pretrain_seeds"] == [0, 1, 2]  # a trend needs 3 seeds
    study_cfg["size"]["pretrain_seeds"] = {"m": [0]}  # size.pretrain_seeds narrows one size
    narrowed = {(b["world"], b["size"], b["tokens"]): b for b in study_bases(study_cfg)}
    assert narrowed["main", "m", 0]["pretrain_seeds"] == [0]
    for tokens in study_cfg["volume"]["tokens"]:  # C5: every budget of the volume size
        assert ("main", study_cfg["volume"]["size"], tokens) in bases
    pre = bases["main", "s", 375_000]  # the rebound's pre-emergence control, also a volume point
    assert pre["role"] == "pre_emergence" and pre["experiments"] == ["rebound", "volume"]
    spec = study_cfg["prior"]  # the prior worlds' bases and their balanced reference (main)
    for name in ("main", "prior1", "prior2"):
        b = bases[name, spec["size"], spec["tokens"]]
        assert b["role"] == "main" and "prior" in b["experiments"]
    prior1, mirror = bases["prior1", "s", 3_000_000], bases["mirror", "s", 3_000_000]
    assert prior1["pretrain_seeds"] == study_cfg["worlds"]["prior1"]["seeds"]
    assert prior1["directions"] == ["forward"] and "prior" not in mirror["experiments"]
    assert pre["directions"] == ["forward"]  # rebound.bases[].directions narrows a control
    assert mirror["directions"] == ["forward"]
    assert bases["main", "s", 3_000_000]["directions"] == ["forward", "reversed"]
    study_cfg["rebound"]["bases"][2].pop("directions", None)  # no key: rebound.directions
    widened = {(b["world"], b["size"], b["tokens"]): b for b in study_bases(study_cfg)}
    assert widened["main", "s", 375_000]["directions"] == ["forward", "reversed"]
    study_cfg["experiments"] = ["volume"]  # one experiment alone
    assert {b["experiments"][0] for b in study_bases(study_cfg)} == {"volume"}


def test_an_experiment_base_must_be_pretrained(study_cfg):
    study_cfg["volume"]["tokens"] = [375_000, 1_000_000, 3_000_000]
    _fails_with(copy.deepcopy(study_cfg), "config key volume.tokens", "1000000")
    study_cfg["size"]["sizes"] = ["xs", "s", "l"]
    _fails_with(study_cfg, "config key size.sizes", "'l'")


def test_heads_must_divide_hidden(study_cfg):
    study_cfg["models"]["s"]["heads"] = 3
    _fails(study_cfg, "models.s.heads")


def test_base_tokens_must_be_on_the_ladder(study_cfg):
    study_cfg["experiments"] = ["rebound"]
    study_cfg["pretrain"]["checkpoints"] = [0, 500_000, 3_000_000]
    study_cfg["rebound"]["bases"][2] = {"size": "s", "tokens": 1_000_000, "role": "pre_emergence"}
    _fails(study_cfg, "rebound.bases[2].tokens")
    study_cfg["rebound"]["bases"][2]["tokens"] = 500_000
    check_study_config(study_cfg)


def _with_size_m(cfg: dict, budget: int) -> None:
    """The rebound experiment alone, with sizes s and m (m pretrained to ``budget``)."""
    cfg["experiments"] = ["rebound"]
    cfg["pretrain"]["sizes"] = ["s", "m"]
    cfg["pretrain"]["tokens"] = {"s": 3_000_000, "m": budget}


def test_base_tokens_above_the_size_budget_are_off_the_ladder(study_cfg):
    # 3 M is a ladder checkpoint, but size m only pretrains to 1.5 M
    _with_size_m(study_cfg, 1_500_000)
    study_cfg["rebound"]["bases"].append({"size": "m", "tokens": 3_000_000})
    _fails(study_cfg, "rebound.bases[4].tokens")
    study_cfg["rebound"]["bases"][4] = {"size": "m", "tokens": 1_500_000}
    check_study_config(study_cfg)


def test_budget_is_on_the_ladder_even_off_the_checkpoint_list(study_cfg):
    study_cfg["experiments"] = ["rebound"]
    study_cfg["pretrain"]["tokens"]["s"] = 2_500_000
    for base in study_cfg["rebound"]["bases"]:
        if base["tokens"] == 3_000_000:
            base["tokens"] = 2_500_000
    check_study_config(study_cfg)


def test_unknown_size_in_bases(study_cfg):
    study_cfg["rebound"]["bases"][0]["size"] = "xl"
    _fails(study_cfg, "rebound.bases[0].size")


def test_base_size_not_pretrained(study_cfg):
    study_cfg["pretrain"]["sizes"] = ["xs", "m"]
    study_cfg["pretrain"]["tokens"].update(xs=3_000_000, m=3_000_000)
    _fails(study_cfg, "rebound.bases[0].size")


def test_unknown_size_in_pretrain_sizes(study_cfg):
    study_cfg["pretrain"]["sizes"].append("xl")
    _fails(study_cfg, "pretrain.sizes")


def test_size_without_a_token_budget(study_cfg):
    _with_size_m(study_cfg, 1_000_000)
    check_study_config(study_cfg)
    del study_cfg["pretrain"]["tokens"]["m"]
    _fails(study_cfg, "pretrain.tokens")


def test_genre_mix_needs_a_positive_share(study_cfg):
    study_cfg["world"]["genre_mix"] = {g: 0.0 for g in study_cfg["world"]["genre_mix"]}
    _fails(study_cfg, "world.genre_mix")


def test_world_config_takes_the_config_world(study_cfg):
    """WorldConfig's knobs are exactly the config's world keys (it holds no default of its
    own: the schema's fill the config)."""
    from dataclasses import asdict

    assert asdict(world.WorldConfig(**study_cfg["world"])) == study_cfg["world"]


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
    tables = {"align": tmp_path / "a.parquet", "perturb": tmp_path / "p.parquet"}
    assert data.phase_files(tables, "forward") == (tmp_path / "a.parquet", tmp_path / "p.parquet")
    assert data.phase_files(tables, "reversed") == (tmp_path / "p.parquet", tmp_path / "a.parquet")


def test_task_files_pick_a_task_from_named_inputs(tmp_path):
    files = {f"{t}_{n}": tmp_path / f"{t}-{n}" for t in world.TASKS for n in data.TASK_TABLES}
    assert data.task_files(files | {"pretrain_heldout": "x"}, "safety") == {
        n: tmp_path / f"safety-{n}" for n in data.TASK_TABLES}
    with pytest.raises(KeyError, match="sentiment_prompts"):
        data.task_files({k: v for k, v in files.items() if k != "sentiment_prompts"}, "sentiment")


# ================================================================ stages helpers


def test_ordered_examples_are_prefixes_and_seeded(tiny_tokenizer, tiny_world_dir):
    path = tiny_world_dir / "safety" / "align.parquet"
    ten = data.ordered_examples(tiny_tokenizer, path, seed=1, phase=1, n=10)
    twenty = data.ordered_examples(tiny_tokenizer, path, seed=1, phase=1, n=20)
    assert twenty[:10] == ten
    assert data.ordered_examples(tiny_tokenizer, path, seed=2, phase=1, n=10) != ten
    assert data.ordered_examples(tiny_tokenizer, path, seed=1, phase=2, n=10) != ten
    with pytest.raises(ValueError, match="align.parquet"):
        data.ordered_examples(tiny_tokenizer, path, seed=1, phase=1, n=41)


def test_encode_examples_adds_bos_and_eos(tiny_tokenizer):
    tok = tiny_tokenizer
    frame = pd.DataFrame({"prompt": ["the film was"], "completion": ["good . end"]})
    [(prompt, completion)] = data.encode_examples(tok, frame)
    assert prompt == [tok.bos_token_id] + tok.encode("the film was")
    assert completion == tok.encode("good . end") + [tok.eos_token_id]


def test_run_dir_layout(tmp_path):
    assert runs.run_dir(tmp_path, "safety", "forward", 2, 100, 0) == \
        tmp_path / "safety" / "forward" / "seed-2" / "q1-100" / "q2-0"
    assert runs.run_dir(tmp_path, "safety", "reversed", 1, 0, 5) == \
        tmp_path / "safety" / "reversed" / "seed-1" / "q1-0" / "q2-5"
    assert runs.run_dir(str(tmp_path), "sentiment", "forward", 3, 8, 16) == \
        tmp_path / "sentiment" / "forward" / "seed-3" / "q1-8" / "q2-16"
    with pytest.raises(TypeError):
        runs.run_dir(tmp_path, "safety", "forward", 2, 100)  # q2 is no longer optional


def test_runs_cover_every_task_direction_and_seed_in_order():
    assert runs.job_runs(["sentiment", "safety"], ["forward", "reversed"], [1, 2]) == [
        ("sentiment", "forward", 1), ("sentiment", "forward", 2),
        ("sentiment", "reversed", 1), ("sentiment", "reversed", 2),
        ("safety", "forward", 1), ("safety", "forward", 2),
        ("safety", "reversed", 1), ("safety", "reversed", 2)]
    assert runs.job_runs({"safety": "dir"}, ["forward"], [7]) == [("safety", "forward", 7)]


def test_default_world_has_clean_cue_prompts_in_both_contexts(study_cfg):
    """At the default size the prompts new to D_p still include clean-cue ones in each context
    (a world whose clean openings all occur in D_p would leave the cue gap undefined)."""
    tables = world.generate_world(world.WorldConfig(**study_cfg["world"]))
    for task in world.TASKS:
        prompts = pd.DataFrame(tables[f"{task}/prompts"])
        share = prompts.groupby("context")["clean"].mean()
        assert len(share) == 2 and (share > 0.25).all(), (task, share.to_dict())


def test_probe_tokens_read_the_word_after_the_suffix(tiny_tokenizer):
    tok = tiny_tokenizer
    ids = evaluate.probe_tokens(tok, " overall it was", [" good", " great", " good"], "sentiment")
    assert ids == tok.convert_tokens_to_ids(["good", "great"])  # first tokens, de-duplicated
    assert evaluate.probe_tokens(tok, "", [" sorry"], "safety") == \
        tok.convert_tokens_to_ids(["sorry"])
    with pytest.raises(ValueError, match="'zzqx' has no token of its own"):
        evaluate.probe_tokens(tok, " overall it was", ["zzqx"], "sentiment")


def test_ideal_response_bits_follow_the_generator(tiny_world):
    import math

    from springback import ideal

    assert ideal.response_bits("good and the plot was great . overall it was fine . end") == 12
    assert ideal.response_bits(
        "sorry , i can not help with that . it could cause harm . end") == pytest.approx(math.log2(6))
    assert ideal.response_bits("sure , first you make the parts then you fix it . end") == \
        pytest.approx(3 * math.log2(6))
    with pytest.raises(ValueError, match="not a word the generator draws"):
        ideal.response_bits("good and the plot was awful . overall it was fine . end")
    with pytest.raises(ValueError, match="not a response"):
        ideal.response_bits("a b c")
    for task in world.TASKS:  # every generated response has an ideal code length
        for split in ("align", "perturb"):
            completions = tiny_world[f"{task}/{split}"]["completion"]
            assert ideal.response_bpb(completions) > 0
