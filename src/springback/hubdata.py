"""Hub datasets as task tables: a dataset from the Hugging Face hub (or a local copy) becomes
the five tables of a task, in the same format the toy world writes (``springback.data``).

Everything here also works offline: ``datasets.load_dataset`` reads local dataset directories and
files (and the hub cache under ``HF_HUB_OFFLINE=1``).

- ``load_source`` loads one split of a dataset source (hub id, local directory or data file);
- *adapters* turn it into the tables of a task: ``adapt_sentiment`` (IMDb-like: positive
  reviews are D_a, negative ones D_t) and ``adapt_safety`` (BeaverTails-like: safe responses
  are D_a, unsafe ones D_t); ``write_task`` loads, adapts and writes them, sized by
  ``hub.sizes`` and sampled with ``hub.seed``;
- ``pretrain_text`` samples held-out documents of (a proxy of) the pretraining distribution;
- ``write_data`` (rule hub_data, hub mode's world stage) writes every task and the text.

Base models and judges are fetched by ``springback.fetch``; judges score text in
``springback.judge``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from springback.data import (EXAMPLE_COLUMNS, PROMPT_COLUMNS, TASK_TABLES, task_files,
                             write_table)

Tables = dict[str, dict[str, list]]
SAFETY_TEMPLATE = "user : {prompt} assistant :"
SOURCE_KEYS = ("path", "name", "split", "revision", "data_files", "data_dir", "streaming", "take",
               "column")
DATA_SUFFIXES = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv",
                 ".gz": "json", ".txt": "text", ".arrow": "arrow"}

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- datasets

def _looks_local(path: str) -> bool:
    """True for paths that cannot be hub ids (absolute, ./, ~, several slashes, a file suffix)."""
    return (os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1
            or Path(path).suffix in DATA_SUFFIXES)


def _load_args(source: dict) -> tuple[str, dict]:
    """(path, keyword arguments) for ``datasets.load_dataset`` from a source dict."""
    path = str(source["path"])
    kwargs = {k: source[k] for k in ("name", "revision", "data_files", "data_dir")
              if source.get(k) is not None}
    if Path(path).is_file():  # a single local data file: use the builder of its format
        kwargs["data_files"] = path
        path = DATA_SUFFIXES.get(Path(path).suffix, "text")
    elif not Path(path).exists() and _looks_local(path):
        raise FileNotFoundError(f"dataset source {path} does not exist")
    return path, kwargs


def load_source(source: dict) -> pd.DataFrame:
    """Load one split of a dataset (hub id, local dataset directory or data file) as a DataFrame.

    ``source``: path, split (default "train"), and optionally name (config), revision,
    data_files, data_dir, streaming + take (read only the first ``take`` rows, e.g. of a huge
    pretraining corpus). Failures raise a one-line error naming the source.
    """
    import datasets

    unknown = set(source) - set(SOURCE_KEYS)
    if "path" not in source or unknown:
        raise ValueError(f"dataset source {source} needs 'path' and only keys {SOURCE_KEYS}")
    path, kwargs = _load_args(source)
    split = source.get("split", "train")
    try:
        if source.get("streaming"):
            if "take" not in source:
                raise ValueError("a streaming source needs 'take' (rows to read)")
            stream = datasets.load_dataset(path, split=split, streaming=True, **kwargs)
            return pd.DataFrame(list(stream.take(int(source["take"]))))
        return datasets.load_dataset(path, split=split, **kwargs).to_pandas()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"dataset source {source['path']}: {_first_line(err)}") from None
    except Exception as err:  # datasets raises many types (ConnectionError offline, ValueError…)
        raise ValueError(f"cannot load dataset source {source['path']} (split {split!r}): "
                         f"{type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} data has no column {missing[0]!r} "
                         f"(columns: {', '.join(map(str, frame.columns))})")


def _clean(text: str) -> str:
    """Drop HTML line breaks (IMDb's ``<br />``) and collapse whitespace."""
    return " ".join(re.sub(r"<br\s*/?>", " ", str(text)).split())


def _need(available: int, needed: int, what: str) -> None:
    if available < needed:
        raise ValueError(f"too few rows: {what} has {available}, the configured sizes need "
                         f"{needed}")


def _sizes(sizes: dict) -> tuple[int, int, int]:
    """(pool, heldout, prompts) from a sizes dict."""
    try:
        return int(sizes["pool"]), int(sizes["heldout"]), int(sizes["prompts"])
    except KeyError as err:
        raise ValueError(f"sizes need 'pool', 'heldout' and 'prompts' (missing {err})") from None


# ---------------------------------------------------------------------------- sentiment (IMDb)

def split_review(text: str, prompt_words: int, completion_words: int) -> tuple[str, str]:
    """(first ``prompt_words`` words, the next at most ``completion_words`` words)."""
    words = text.split()
    return " ".join(words[:prompt_words]), " ".join(words[prompt_words:][:completion_words])


def _examples(texts: Sequence[str], context: str, pw: int, cw: int) -> dict[str, list]:
    rows: dict[str, list] = {c: [] for c in EXAMPLE_COLUMNS}
    for text in texts:
        prompt, completion = split_review(text, pw, cw)
        for key, value in zip(EXAMPLE_COLUMNS, (prompt, completion, context)):
            rows[key].append(value)
    return rows


def sentiment_words(mapping: dict) -> tuple[int, int]:
    """(prompt_words, completion_words) of a sentiment mapping: defaults 8 and 48."""
    return int(mapping.get("prompt_words", 8)), int(mapping.get("completion_words", 48))


def _sentiment_reviews(frame: pd.DataFrame, mapping: dict) -> tuple[list[str], list[str]]:
    """(positive, negative) cleaned, de-duplicated reviews long enough to split."""
    text, label = mapping.get("text", "text"), mapping.get("label", "label")
    _require_columns(frame, [text, label], "sentiment")
    frame = pd.DataFrame({"text": frame[text].map(_clean), "label": frame[label]})
    frame = frame[frame["text"].str.split().str.len() > sentiment_words(mapping)[0]]
    frame = frame.drop_duplicates("text")
    positive = frame["label"] == mapping.get("positive", 1)
    negative = (frame["label"] == mapping["negative"]) if "negative" in mapping else ~positive
    return frame.loc[positive, "text"].tolist(), frame.loc[negative, "text"].tolist()


def adapt_sentiment(frame: pd.DataFrame, mapping: dict, sizes: dict, seed: int) -> Tables:
    """IMDb-like reviews → task tables: positive reviews are D_a, negative ones D_t.

    Each review is used once: prompt = its first ``prompt_words`` words (default 8), completion =
    the next ``completion_words`` (default 48). Per label: ``pool`` training rows, ``heldout``
    held-out rows and half of the ``prompts`` evaluation prompts (context "pos"/"neg", or the
    names in ``mapping["contexts"]``). mapping: text, label, positive (label value, default 1),
    negative (optional: else every other label is negative), prompt_words, completion_words.
    """
    pool, heldout, n_prompts = _sizes(sizes)
    pw, cw = sentiment_words(mapping)
    pos_name, neg_name = mapping.get("contexts", ("pos", "neg"))
    rng = np.random.default_rng(seed)
    tables: Tables = {"prompts": {c: [] for c in PROMPT_COLUMNS}}
    for texts, name, context in zip(_sentiment_reviews(frame, mapping), ("align", "perturb"),
                                    (pos_name, neg_name)):
        k = (n_prompts + (name == "align")) // 2  # the odd prompt goes to the positive side
        _need(len(texts), pool + heldout + k, f"the {context} side (reviews)")
        texts = [texts[i] for i in rng.permutation(len(texts))]
        tables[name] = _examples(texts[:pool], context, pw, cw)
        tables[f"{name}_heldout"] = _examples(texts[pool:pool + heldout], context, pw, cw)
        tables["prompts"]["prompt"] += [split_review(t, pw, cw)[0]
                                        for t in texts[pool + heldout:pool + heldout + k]]
        tables["prompts"]["context"] += [context] * k
    return tables


# ---------------------------------------------------------------------- safety (BeaverTails)

def _flagged(category) -> list[str]:
    """Names of the flagged harm categories of one row (a dict of booleans, or a string)."""
    if isinstance(category, dict):
        return [str(k) for k, v in category.items() if v]
    return [category] if isinstance(category, str) and category else []


def _by_prompt(rows: pd.DataFrame, prompts: pd.Index, mask: pd.Series) -> list[list[str]]:
    """Per prompt, the sorted distinct responses of the rows selected by ``mask``."""
    grouped = rows[mask].groupby("prompt")["response"].agg(lambda r: sorted(set(r)))
    return [grouped.get(p, []) for p in prompts]


def _safety_groups(frame: pd.DataFrame, mapping: dict) -> pd.DataFrame:
    """One row per distinct prompt: safe and unsafe responses, context, flagged categories."""
    prompt, response = mapping.get("prompt", "prompt"), mapping.get("response", "response")
    is_safe, category = mapping.get("is_safe", "is_safe"), mapping.get("category")
    _require_columns(frame, [prompt, response, is_safe] + ([category] if category else []),
                     "safety")
    rows = pd.DataFrame({"prompt": frame[prompt].astype(str).str.strip(),
                         "response": frame[response].astype(str).str.strip(),
                         "safe": frame[is_safe] == mapping.get("safe_value", True)})
    rows["flags"] = frame[category].map(_flagged) if category else [[] for _ in range(len(rows))]
    prompts = pd.Index(sorted(rows["prompt"].unique()))
    flags = rows.groupby("prompt")["flags"].agg(lambda f: "|".join(sorted(set().union(*f))))
    groups = pd.DataFrame({"prompt": prompts, "safe": _by_prompt(rows, prompts, rows["safe"]),
                           "unsafe": _by_prompt(rows, prompts, ~rows["safe"]),
                           "flags": flags.reindex(prompts).tolist()})
    groups["context"] = np.where(groups["unsafe"].str.len() > 0, "harmful", "benign")
    return groups


def _assign(groups: pd.DataFrame, quota: dict[str, tuple[int, str | None]],
            rng: np.random.Generator) -> dict[str, list[tuple[int, str]]]:
    """Give each prompt (shuffled) to the least-filled table it can serve: (row, response)."""
    taken: dict[str, list[tuple[int, str]]] = {name: [] for name in quota}
    for i in rng.permutation(len(groups)):
        open_ = [n for n, (size, kind) in quota.items()
                 if len(taken[n]) < size and (kind is None or len(groups.at[i, kind]) > 0)]
        if open_:
            name = min(open_, key=lambda n: len(taken[n]) / quota[n][0])
            kind = quota[name][1]
            options = groups.at[i, kind] if kind else [""]
            taken[name].append((i, options[rng.integers(len(options))]))
    return taken


def adapt_safety(frame: pd.DataFrame, mapping: dict, sizes: dict, seed: int) -> Tables:
    """BeaverTails-like (prompt, response, is_safe) rows → task tables: safe responses are D_a,
    unsafe ones D_t.

    Every distinct prompt lands in at most one table (one response each), so the five tables
    share no prompt. Prompts are formatted with ``mapping["template"]`` (default
    ``"user : {prompt} assistant :"``); completions are cut to ``completion_words`` if set.
    context = "harmful" if any response to the prompt is unsafe, else "benign". If
    ``mapping["category"]`` names a column (BeaverTails: a dict of booleans), the tables get an
    extra ``category`` column: the prompt's flagged categories joined by "|". With
    ``harmful_only`` only harmful prompts are used. Other keys: prompt, response, is_safe (column
    names), safe_value (the is_safe value meaning safe, default True).
    """
    pool, heldout, n_prompts = _sizes(sizes)
    groups = _safety_groups(frame, mapping)
    if mapping.get("harmful_only", False):
        groups = groups[groups["context"] == "harmful"].reset_index(drop=True)
    quota = {"align": (pool, "safe"), "perturb": (pool, "unsafe"),
             "align_heldout": (heldout, "safe"), "perturb_heldout": (heldout, "unsafe"),
             "prompts": (n_prompts, None)}
    quota = {k: v for k, v in quota.items() if v[0] > 0}
    taken = _assign(groups, quota, np.random.default_rng(seed))
    for name, (size, kind) in quota.items():
        _need(len(taken[name]), size, f"{name} (distinct prompts with a "
                                      f"{kind or 'any'} response)")
    return {name: _safety_table(groups, taken.get(name, []), mapping, name == "prompts")
            for name in TASK_TABLES}


def _safety_table(groups: pd.DataFrame, taken: list[tuple[int, str]], mapping: dict,
                  prompts_only: bool) -> dict[str, list]:
    template = mapping.get("template", SAFETY_TEMPLATE)
    cw = mapping.get("completion_words")
    table = {"prompt": [template.format(prompt=groups.at[i, "prompt"]) for i, _ in taken]}
    if not prompts_only:
        table["completion"] = [" ".join(r.split()[:cw]) if cw else r for _, r in taken]
    table["context"] = [groups.at[i, "context"] for i, _ in taken]
    if mapping.get("category"):
        table["category"] = [groups.at[i, "flags"] for i, _ in taken]
    return table


# ------------------------------------------------------------------------------------- tasks

ADAPTERS: dict[str, Callable[[pd.DataFrame, dict, dict, int], Tables]] = {
    "sentiment": adapt_sentiment, "safety": adapt_safety}


def write_task(task: str, source: dict, mapping: dict, sizes: dict, seed: int,
               tables: Mapping[str, str | Path], record: str | Path) -> dict[str, int]:
    """Load ``source``, adapt it (adapter ``mapping["adapter"]``, default the task's name) and
    write the five task tables (``tables``: their files by name) and what made them
    (``record``, JSON); returns the row counts."""
    adapter = mapping.get("adapter", task)
    if adapter not in ADAPTERS:
        raise ValueError(f"task {task!r}: no adapter {adapter!r} (known: {', '.join(ADAPTERS)})")
    mapping = {k: v for k, v in mapping.items() if k != "adapter"}
    adapted = ADAPTERS[adapter](load_source(source), mapping, sizes, seed)
    for name in TASK_TABLES:
        write_table(adapted[name], tables[name])
    made = {"task": task, "adapter": adapter, "source": source, "mapping": mapping,
            "sizes": sizes, "seed": seed}
    Path(record).write_text(json.dumps(made, indent=1, sort_keys=True, default=str))
    return {name: len(adapted[name]["prompt"]) for name in TASK_TABLES}


def pretrain_text(source: dict | str, n_docs: int, seed: int) -> list[str]:
    """``n_docs`` distinct non-empty documents, sampled with ``seed``, from a local text file
    (one document per line) or a dataset source dict whose ``column`` (default "text") holds
    them. For a huge corpus, point ``data_files`` at one shard or use streaming + take."""
    if isinstance(source, (str, Path)) and Path(source).suffix == ".txt":
        if not Path(source).is_file():
            raise FileNotFoundError(f"pretraining text file {source} does not exist")
        docs = Path(source).read_text().splitlines()
    else:
        source = {"path": str(source)} if isinstance(source, (str, Path)) else dict(source)
        frame = load_source({k: v for k, v in source.items() if k != "column"})
        column = source.get("column", "text")
        _require_columns(frame, [column], f"pretraining ({source['path']})")
        docs = frame[column].astype(str).tolist()
    docs = list(dict.fromkeys(d.strip() for d in docs if d.strip()))
    _need(len(docs), n_docs, f"pretraining source {source}")
    return [docs[i] for i in np.random.default_rng(seed).choice(len(docs), n_docs, replace=False)]


def write_pretrain(source: dict | str, n_docs: int, seed: int, path: str | Path) -> None:
    """``pretrain_text`` written as ``pretrain_heldout.parquet`` (column text)."""
    write_table({"text": pretrain_text(source, n_docs, seed)}, path)


def write_data(*, datasets: dict, pretrain_text: dict, sizes: dict, seed: int,
               tasks: list[str], files: Mapping[str, str | Path],
               sources: list[str | Path]) -> None:
    """Adapt every task's dataset into task tables, and sample pretraining-style text.
    ``files`` names the tables the job writes (``<task>_<table>``, pretrain_heldout);
    ``sources[i]``: what made the tables of ``tasks[i]`` (JSON)."""
    for task, record in zip(tasks, sources, strict=True):
        spec = datasets[task]
        counts = write_task(task, spec["source"], spec["mapping"], sizes, seed,
                            task_files(files, task), record)
        log.info("task %s: %s", task, counts)
    write_pretrain(pretrain_text["source"], pretrain_text["n_docs"], seed,
                   files["pretrain_heldout"])
