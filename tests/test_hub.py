"""Hub mode, fully offline: adapters and pretraining text (springback.hubdata), model fetching
(springback.fetch) and model judges (springback.judge) on a fake hub (tests/fakehub.py) of tiny
datasets and one-layer models."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fakehub  # noqa: E402

from springback import fetch, hubdata  # noqa: E402
from springback.judge import (JUDGES, MODEL_JUDGES, classifier_judge, exact_judge,  # noqa: E402
                              make_judge, reward_judge, reward_scores)
from springback.data import (EXAMPLE_COLUMNS, PROMPT_COLUMNS, TASK_TABLES,  # noqa: E402
                             read_table)

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT_MAP = {"text": "text", "label": "label", "positive": 1, "prompt_words": 8}
SIZES = {"pool": 20, "heldout": 5, "prompts": 11}
SAFETY_SIZES = {"pool": 10, "heldout": 3, "prompts": 8}
EXAMPLE_TABLES = ("align", "perturb", "align_heldout", "perturb_heldout")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """The fake hub (paths by kind); offline even without HF_HUB_OFFLINE=1 in the environment;
    the datasets cache goes to a temporary folder."""
    import datasets
    import huggingface_hub
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fakehub")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", root / "datasets-cache")
        yield fakehub.write_all(root)


@pytest.fixture(scope="module")
def imdb(fake):
    return hubdata.load_source({"path": str(fake["imdb"]), "split": "train"})


@pytest.fixture(scope="module")
def beaver(fake):
    return hubdata.load_source({"path": str(fake["beavertails"]), "split": "30k_train"})


def all_prompts(tables) -> list[str]:
    return [p for name in TASK_TABLES for p in tables[name]["prompt"]]


# ------------------------------------------------------------------------------ load_source

def test_load_source_dir_file_and_custom_split(fake, imdb, beaver):
    assert list(imdb.columns) == ["text", "label"] and len(imdb) == 120
    one_file = fake["imdb"] / "data" / "test-00000-of-00001.parquet"
    assert len(hubdata.load_source({"path": str(one_file)})) == 120
    assert {"prompt", "response", "category", "is_safe"} <= set(beaver.columns)
    assert isinstance(beaver["category"].iloc[0], dict)  # a struct column, as in BeaverTails
    streamed = hubdata.load_source({"path": str(fake["imdb"]), "streaming": True, "take": 7})
    assert len(streamed) == 7 and streamed["text"].tolist() == imdb["text"][:7].tolist()


@pytest.mark.parametrize("source, error, words", [
    ({"path": "/no/such/dataset"}, FileNotFoundError, ["/no/such/dataset"]),
    ({"path": "./relative/missing"}, FileNotFoundError, ["./relative/missing"]),
    ({"path": "nobody/no-such-dataset"}, ValueError, ["nobody/no-such-dataset"]),
    ({"path": "IMDB", "split": "validation"}, ValueError, ["validation"]),
    ({"path": "IMDB", "splt": "train"}, ValueError, ["splt"]),
    ({"path": "IMDB", "streaming": True}, ValueError, ["take"]),
])
def test_load_source_errors(fake, source, error, words):
    source = {k: (str(fake["imdb"]) if v == "IMDB" else v) for k, v in source.items()}
    with pytest.raises(error) as info:
        hubdata.load_source(source)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words)


# -------------------------------------------------------------------------------- sentiment

def test_adapt_sentiment_tables(imdb):
    tables = hubdata.adapt_sentiment(imdb, SENTIMENT_MAP, SIZES, seed=0)
    for name in EXAMPLE_TABLES:
        assert list(tables[name]) == list(EXAMPLE_COLUMNS)
    assert list(tables["prompts"]) == list(PROMPT_COLUMNS)
    sizes = {name: len(tables[name]["prompt"]) for name in TASK_TABLES}
    assert sizes == {"align": 20, "perturb": 20, "align_heldout": 5, "perturb_heldout": 5,
                     "prompts": 11}
    assert sorted(tables["prompts"]["context"]) == ["neg"] * 5 + ["pos"] * 6
    prompts = all_prompts(tables)  # every prompt opens with "review <i>": one per review
    assert len(set(prompts)) == len(prompts)
    assert all(len(p.split()) == 8 for p in prompts)
    for name in EXAMPLE_TABLES:
        positive = name.startswith("align")
        assert set(tables[name]["context"]) == {"pos" if positive else "neg"}
        for completion in tables[name]["completion"]:
            words = set(completion.split())
            assert words & set(fakehub.POSITIVE if positive else fakehub.NEGATIVE)
            assert not words & set(fakehub.NEGATIVE if positive else fakehub.POSITIVE)
            assert "<br" not in completion and 0 < len(completion.split()) <= 48


def test_adapt_sentiment_deterministic_and_options(imdb):
    first = hubdata.adapt_sentiment(imdb, SENTIMENT_MAP, SIZES, seed=3)
    assert first == hubdata.adapt_sentiment(imdb, SENTIMENT_MAP, SIZES, seed=3)
    assert first != hubdata.adapt_sentiment(imdb, SENTIMENT_MAP, SIZES, seed=4)
    renamed = imdb.rename(columns={"text": "review", "label": "stars"})
    mapping = {"text": "review", "label": "stars", "prompt_words": 4, "completion_words": 5,
               "contexts": ["good", "bad"]}
    short = hubdata.adapt_sentiment(renamed, mapping, SIZES, seed=3)
    assert all(len(c.split()) <= 5 for c in short["align"]["completion"])
    assert all(len(p.split()) == 4 for p in short["prompts"]["prompt"])
    assert set(short["prompts"]["context"]) == {"good", "bad"}


@pytest.mark.parametrize("mapping, sizes, words", [
    ({**SENTIMENT_MAP, "text": "review"}, SIZES, ["'review'", "columns: text, label"]),
    ({**SENTIMENT_MAP, "label": "stars"}, SIZES, ["'stars'"]),
    (SENTIMENT_MAP, {**SIZES, "pool": 60}, ["too few rows", "pos"]),
    (SENTIMENT_MAP, {"pool": 10, "heldout": 2}, ["prompts"]),
])
def test_adapt_sentiment_errors(imdb, mapping, sizes, words):
    with pytest.raises(ValueError) as info:
        hubdata.adapt_sentiment(imdb, mapping, sizes, seed=0)
    assert all(w in str(info.value) for w in words)


# ----------------------------------------------------------------------------------- safety

def test_adapt_safety_tables(beaver):
    tables = hubdata.adapt_safety(beaver, {"category": "category"}, SAFETY_SIZES, seed=0)
    sizes = {name: len(tables[name]["prompt"]) for name in TASK_TABLES}
    assert sizes == {"align": 10, "perturb": 10, "align_heldout": 3, "perturb_heldout": 3,
                     "prompts": 8}
    assert list(tables["prompts"]) == ["prompt", "context", "category"]
    prompts = all_prompts(tables)
    assert len(set(prompts)) == len(prompts)  # no prompt shared between any two tables
    safe = {(f"user : {p} assistant :", r): s
            for p, r, s in zip(beaver["prompt"], beaver["response"], beaver["is_safe"])}
    harmful = {f"user : {p} assistant :" for p, s in zip(beaver["prompt"], beaver["is_safe"])
               if not s}
    for name in EXAMPLE_TABLES:
        rows = zip(tables[name]["prompt"], tables[name]["completion"])
        assert all(safe[row] == name.startswith("align") for row in rows)
    for name in TASK_TABLES:
        t = tables[name]
        assert t["context"] == ["harmful" if p in harmful else "benign" for p in t["prompt"]]
        assert all((c != "") == (x == "harmful") for c, x in zip(t["category"], t["context"]))
    assert set(tables["perturb"]["context"]) == {"harmful"}


def test_adapt_safety_options_and_determinism(beaver):
    mapping = {"template": "Q: {prompt}\nA:", "completion_words": 3, "harmful_only": True}
    sizes = {"pool": 6, "heldout": 3, "prompts": 6}  # 30 of the 60 fake prompts are harmful
    tables = hubdata.adapt_safety(beaver, mapping, sizes, seed=1)
    assert tables == hubdata.adapt_safety(beaver, mapping, sizes, seed=1)
    assert tables != hubdata.adapt_safety(beaver, mapping, sizes, seed=2)
    assert all(p.startswith("Q: ") and p.endswith("\nA:") for p in all_prompts(tables))
    assert all(len(c.split()) <= 3 for c in tables["align"]["completion"])
    assert all(set(tables[name]["context"]) == {"harmful"} for name in TASK_TABLES)
    assert "category" not in tables["align"]
    strings = beaver.assign(is_safe=beaver["is_safe"].map({True: "yes", False: "no"}))
    as_strings = hubdata.adapt_safety(strings, {**mapping, "safe_value": "yes"}, sizes, 1)
    assert as_strings == tables


@pytest.mark.parametrize("mapping, sizes, words", [
    ({"is_safe": "safe"}, SAFETY_SIZES, ["'safe'"]),
    ({"category": "harm"}, SAFETY_SIZES, ["'harm'"]),
    ({}, {**SAFETY_SIZES, "pool": 40}, ["too few rows", "align"]),
])
def test_adapt_safety_errors(beaver, mapping, sizes, words):
    with pytest.raises(ValueError) as info:
        hubdata.adapt_safety(beaver, mapping, sizes, seed=0)
    assert all(w in str(info.value) for w in words)


# ------------------------------------------------------------------------------- write_task

def task_tables(root: Path) -> dict[str, Path]:
    """A task's five table files under ``root``, by name."""
    return {name: root / f"{name}.parquet" for name in TASK_TABLES}


def test_write_task(fake, tmp_path):
    source = {"path": str(fake["imdb"]), "split": "train"}
    counts = hubdata.write_task("sentiment", source, SENTIMENT_MAP, SIZES, 0,
                                task_tables(tmp_path / "sentiment"),
                                tmp_path / "sentiment" / "source.json")
    assert counts["align"] == 20 and counts["prompts"] == 11
    for name in EXAMPLE_TABLES:
        assert len(read_table(tmp_path / "sentiment" / f"{name}.parquet", EXAMPLE_COLUMNS)) > 0
    prompts = read_table(tmp_path / "sentiment" / "prompts.parquet", PROMPT_COLUMNS)
    assert len(prompts) == 11
    record = json.loads((tmp_path / "sentiment" / "source.json").read_text())
    assert record["source"] == source and record["seed"] == 0
    beaver = {"path": str(fake["beavertails"]), "split": "30k_train"}
    counts = hubdata.write_task("refusal", beaver, {"adapter": "safety"}, SAFETY_SIZES, 0,
                                task_tables(tmp_path / "refusal"), tmp_path / "refusal.json")
    assert counts["perturb"] == 10
    with pytest.raises(ValueError, match="no adapter 'chat'.*sentiment, safety"):
        hubdata.write_task("chat", source, {}, SIZES, 0, task_tables(tmp_path / "chat"),
                           tmp_path / "chat.json")
    with pytest.raises(FileNotFoundError, match="/no/such"):
        hubdata.write_task("sentiment", {"path": "/no/such"}, SENTIMENT_MAP, SIZES, 0,
                           task_tables(tmp_path / "x"), tmp_path / "x.json")


# ---------------------------------------------------------------------------- pretrain_text

def test_pretrain_text(fake, tmp_path):
    docs = hubdata.pretrain_text(str(fake["pretrain_txt"]), 10, seed=0)
    assert len(docs) == len(set(docs)) == 10 and all(d.startswith("doc ") for d in docs)
    assert docs == hubdata.pretrain_text(fake["pretrain_txt"], 10, seed=0)
    assert docs != hubdata.pretrain_text(fake["pretrain_txt"], 10, seed=1)
    source = {"path": str(fake["pretrain_ds"]), "column": "content"}
    from_ds = hubdata.pretrain_text(source, 50, seed=0)
    assert sorted(from_ds) == sorted(fakehub.prose(50))
    with pytest.raises(ValueError, match="too few rows"):
        hubdata.pretrain_text(fake["pretrain_txt"], 51, seed=0)
    with pytest.raises(ValueError, match="'text'.*content, id"):
        hubdata.pretrain_text({"path": str(fake["pretrain_ds"])}, 5, seed=0)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        hubdata.pretrain_text(str(tmp_path / "missing.txt"), 5, seed=0)
    hubdata.write_pretrain(source, 5, 0, tmp_path / "pretrain_heldout.parquet")
    assert len(read_table(tmp_path / "pretrain_heldout.parquet", ("text",))) == 5


# ------------------------------------------------------------------------------ fetch_model

def test_fetch_model_local(fake, tmp_path):
    from springback.models import load_model

    dest = fetch.fetch_model(str(fake["base"]), tmp_path / "models" / "base")
    record = json.loads((dest / "provenance.json").read_text())
    assert record["id"] == str(fake["base"]) and record["source"] == "local"
    assert "model.safetensors" in record["files"] and "tokenizer.json" in record["files"]
    model = load_model(dest)
    assert model.config.hidden_size == 16
    fetch.fetch_model(str(fake["base"]), dest)  # replaces an existing copy
    assert sorted(p.name for p in dest.parent.iterdir()) == ["base"]  # no temporaries left
    with pytest.raises(ValueError, match="bin-model.*safetensors only"):
        fetch.fetch_model(str(fake["bin_only"]), tmp_path / "models" / "bin")
    with pytest.raises(FileNotFoundError, match="/no/such/model"):
        fetch.fetch_model("/no/such/model", tmp_path / "models" / "none")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["base"]


def test_fetch_base_with_random_twin(fake, tmp_path):
    """tokens 0 of a hub model: the same architecture and tokenizer at a seeded random init."""
    import torch

    from springback.models import load_model, load_tokenizer, read_provenance
    from springback.pipeline.hub import fetch_base

    out = tmp_path / "base"
    fetch_base(model={"id": str(fake["base"]), "tokens": 1000}, size="tiny",
               checkpoints={1000: out / "tokens-1000", 0: out / "tokens-0"}, seed=3)
    assert sorted(p.name for p in out.iterdir()) == ["tokens-0", "tokens-1000"]
    released, twin = (out / "tokens-1000", out / "tokens-0")
    assert read_provenance(twin)["tokens"] == 0 and read_provenance(twin)["size"] == "tiny"
    assert read_provenance(twin)["n_params"] == read_provenance(released)["n_params"]
    a, b = load_model(released), load_model(twin)
    same = lambda c: {k: v for k, v in c.to_dict().items() if "name_or_path" not in k}  # noqa: E731
    assert same(a.config) == same(b.config)
    assert not torch.equal(a.model.layers[0].mlp.up_proj.weight, b.model.layers[0].mlp.up_proj.weight)
    assert load_tokenizer(twin).get_vocab() == load_tokenizer(released).get_vocab()
    fetch_base(model={"id": str(fake["base"]), "tokens": 1000}, size="tiny",
               checkpoints={1000: tmp_path / "again" / "tokens-1000",
                            0: tmp_path / "again" / "tokens-0"}, seed=3)
    c = load_model(tmp_path / "again" / "tokens-0")
    assert all(torch.equal(x, y) for x, y in zip(b.parameters(), c.parameters()))  # seeded


def test_fetch_model_hub_download(fake, tmp_path, monkeypatch):
    """The hub path, with snapshot_download replaced by a local copy that records a commit."""
    import huggingface_hub

    calls = []

    def fake_download(repo_id, *, revision=None, allow_patterns=None, local_dir=None, **kw):
        calls.append((repo_id, revision, allow_patterns))
        for file in Path(fake["base"]).iterdir():
            (Path(local_dir) / file.name).write_bytes(file.read_bytes())
        meta = Path(local_dir) / ".cache" / "huggingface" / "download"
        meta.mkdir(parents=True)
        (meta / "config.json.metadata").write_text("a" * 40 + "\netag\n0\n")
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    dest = fetch.fetch_model("org/tiny-llama", tmp_path / "base", revision="step-1k")
    record = json.loads((dest / "provenance.json").read_text())
    assert record["commit"] == "a" * 40 and record["revision"] == "step-1k"
    assert record["source"] == "hub" and not (dest / ".cache").exists()
    assert calls[0][:2] == ("org/tiny-llama", "step-1k") and "*.safetensors" in calls[0][2]


# ----------------------------------------------------------------------------------- judges

TEXTS = ["the acting was great", "dull and boring", "", "sure , here is how to get a lock",
         "sorry , i can not help"]


def test_classifier_judge(fake):
    judge = classifier_judge(str(fake["classifier"]), "POSITIVE", batch_size=2)
    scores = judge(TEXTS)
    assert len(scores) == len(TEXTS) and all(0.0 <= s <= 1.0 for s in scores)
    negative = classifier_judge(fake["classifier"], "negative")(TEXTS)  # case-insensitive
    assert [a + b for a, b in zip(scores, negative)] == pytest.approx([1.0] * len(TEXTS))
    assert judge([]) == []
    with pytest.raises(ValueError, match="no label 'happy'.*NEGATIVE, POSITIVE"):
        classifier_judge(fake["classifier"], "happy")


def test_reward_judge_threshold_and_sign(fake):
    judge = reward_judge(fake["reward"], batch_size=2)
    raw = reward_scores(judge, TEXTS)
    assert len(set(raw)) == len(TEXTS)  # the fake model spreads its rewards
    middle = sorted(raw)[2]
    for sign in (1.0, -1.0):
        judged = reward_judge(fake["reward"], sign=sign, threshold=sign * middle)
        assert judged(TEXTS) == [float(sign * r > sign * middle) for r in raw]
        assert 0 < sum(judged(TEXTS)) < len(TEXTS)
    with pytest.raises(ValueError, match="2 outputs"):
        reward_judge(fake["classifier"])


def test_judges_refuse_missing_head_and_map_keys(fake):
    with pytest.raises(ValueError, match="lacks weights.*score"):
        reward_judge(fake["base"])  # a causal LM has no scoring head
    with pytest.raises(ValueError, match="lacks weights"):
        reward_judge(fake["score_head"])
    mapped = reward_judge(fake["score_head"], key_mapping={"^score_head": "score"})
    assert mapped.raw(TEXTS) == pytest.approx(reward_judge(fake["reward"]).raw(TEXTS))


def test_make_judge(fake):
    texts = ["good great bad", "awful bad", "sorry , no"]
    assert make_judge({"kind": "exact"}, "sentiment")(texts) == \
        exact_judge("sentiment")(texts)
    spec = {"kind": "classifier", "path": str(fake["classifier"]), "target_label": "POSITIVE",
            "batch_size": 4, "max_length": 16}
    assert len(make_judge(spec, "sentiment")(texts)) == 3
    cost = make_judge({"kind": "reward", "path": str(fake["reward"]), "sign": -1}, "safety")
    assert cost.sign == -1.0 and set(cost(texts)) <= {0.0, 1.0}
    for bad, words in [({"kind": "llm"}, "unknown judge kind 'llm'"),
                       ({"kind": "reward", "path": "x", "target_label": "A"}, "'target_label'"),
                       ({"kind": "classifier", "path": "x"}, "'target_label'"),
                       ({"kind": "exact", "path": "x"}, "takes no option 'path'")]:
        with pytest.raises(ValueError, match=words):
            make_judge(bad, "sentiment")


def test_hub_tables_feed_the_task_reader(fake, tmp_path):
    """The written tables read back as the rest of the workflow reads them."""
    hubdata.write_task("safety", {"path": str(fake["beavertails"]), "split": "30k_train"},
                       {"category": "category"}, SAFETY_SIZES, 0, task_tables(tmp_path),
                       tmp_path / "source.json")
    frame = read_table(tmp_path / "align.parquet", EXAMPLE_COLUMNS)
    assert isinstance(frame, pd.DataFrame) and frame["prompt"].str.endswith("assistant :").all()


# ------------------------------------------------------------------------- one judge registry

PROBE = {"suffix": " overall it was", "target": [" great"], "contrary": [" awful"]}


def test_schema_judge_kinds_are_the_registry():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    judges = schema["properties"]["hub"]["properties"]["judges"]
    assert set(judges["additionalProperties"]["properties"]["kind"]["enum"]) == set(JUDGES)
    assert MODEL_JUDGES == ("classifier", "reward")  # the kinds rule fetch_judge fetches


def test_task_judge_builds_every_kind_from_its_config_spec(fake):
    """A config spec (id, revision and probe beside the kind's options) becomes its judge: the
    model kinds read the fetched folder."""
    from springback.evaluate import task_judge

    texts = ["good great bad", "awful bad", "sorry , no"]
    assert task_judge("sentiment", None, None, "cpu")(texts) == exact_judge("sentiment")(texts)
    probe = task_judge("sentiment", {"kind": "probe", "probe": PROBE}, None, "cpu")
    assert all(math.isnan(s) for s in probe(texts))
    spec = {"kind": "classifier", "id": "org/judge", "revision": "main", "probe": PROBE,
            "target_label": "POSITIVE", "batch_size": 2}
    scores = task_judge("sentiment", spec, fake["classifier"], "cpu")(texts)
    assert scores == pytest.approx(classifier_judge(fake["classifier"], "POSITIVE")(texts))
    cost = task_judge("safety", {"kind": "reward", "id": "org/cost", "sign": -1}, fake["reward"],
                      "cpu")
    assert cost.sign == -1.0


@pytest.fixture
def hub_cfg():
    """config/hub.yaml over the defaults, schema-filled and checked (as the workflow loads it)."""
    from springback.config import load

    return load([ROOT / "config" / "hub.yaml"], defaults=ROOT / "config" / "config.yaml")


@pytest.mark.parametrize("edit, words", [
    (lambda j: j["sentiment"].update(colour="blue"),
     ("hub.judges.sentiment.colour", "classifier takes only")),
    (lambda j: j["sentiment"].pop("target_label"),
     ("hub.judges.sentiment.target_label is required for kind classifier",)),
    (lambda j: j["safety"].pop("id"), ("hub.judges.safety.id is required for kind reward",)),
    (lambda j: j.update(sentiment={"kind": "probe"}),
     ("hub.judges.sentiment.probe is required for kind probe",)),
    (lambda j: j.update(sentiment={"kind": "exact", "sign": -1}),
     ("hub.judges.sentiment.sign", "exact takes only kind, probe")),
], ids=["unknown key", "classifier without target_label", "reward without id",
        "probe without its probe", "exact with an option"])
def test_judge_specs_are_checked_against_their_kind(hub_cfg, edit, words):
    from springback.config import ConfigError, check_hub

    edit(hub_cfg["hub"]["judges"])
    with pytest.raises(ConfigError) as err:
        check_hub(hub_cfg)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_hub_sizes_must_hold_the_largest_grid_point(hub_cfg):
    from springback.config import ConfigError, check_hub

    assert hub_cfg["hub"]["sizes"] == {"pool": 10000, "heldout": 200, "prompts": 200}
    hub_cfg["hub"]["sizes"]["pool"] = 5000
    with pytest.raises(ConfigError, match="rebound.n_pos asks for 10000 examples but "
                                          "hub.sizes.pool is 5000"):
        check_hub(hub_cfg)


def test_fetching_and_hub_data_are_hashed_apart():
    """springback.fetch's claim: an edit to it changes the code hash of the fetch rules only;
    likewise springback.hubdata is hub_data's alone (so neither reruns training)."""
    import springback
    from springback.provenance import import_closure

    library = Path(springback.__file__).parent
    closures = {s.stem: {p.relative_to(library).as_posix() for p in import_closure(library, [s])}
                for s in (ROOT / "workflow" / "scripts").glob("*.py")}
    assert {s for s, c in closures.items() if "fetch.py" in c} == {
        "fetch_base", "fetch_judge", "fetch_pair"}
    assert {s for s, c in closures.items() if "hubdata.py" in c} == {"hub_data"}
