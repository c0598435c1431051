"""Stage `compression` (rules/compression.smk): a real compressor and the Pareto assumption, on
one main base (first pretraining seed), toy mode.

- True compressed sizes: the range coder (``springback.coder``) driven by the base, by the base
  aligned on the largest n_pos of one task (forward, fine-tuning seed = the first of the study),
  and by that model perturbed with the largest n_neg, on held-out D_p, D_a and D_t, beside the
  model's NLL and gzip / bz2 / xz / zstd of the same bytes (every coded stream is decoded back
  and checked); and each coded document's model code length (the NLL the coder's stream
  approaches; one shared stream has no per-document size of its own) and bytes.
- Rates against the truth: held-out D_p bits/byte per genre, and D_a / D_t response bits/byte
  beside the ideal rate under the world's generator, at the same three stages.
- The Pareto assumption (paper A.7): the rank-frequency of whole responses and of their word
  prefixes in the world's pretraining reviews and dialogues, in the task sets, and in responses
  sampled from the base model, with a power-law fit against exponential and log-normal tails.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Mapping

import pandas as pd

from springback import coder, data, ideal, models, pareto
from springback.compress import (code_length, document_bytes, document_lengths, layout,
                                 model_logits)
from springback.evaluate import sample_continuations, text_set
from springback.tokenizer import special_ids
from springback.train import finetune

log = logging.getLogger(__name__)

MARKS = {"sentiment": " the film was ", "safety": " assistant : "}


def stages(base, tok, tables: Mapping[str, Path], *, n_pos: int, n_neg: int, seed: int,
           train: dict):
    """(name, model) at the base, after alignment and after perturbation (forward)."""
    pad = special_ids(tok)["pad"]
    model = copy.deepcopy(base)
    yield "base", base
    for name, file, n in (("aligned", "align", n_pos), ("perturbed", "perturb", n_neg)):
        examples = data.ordered_examples(tok, tables[file], seed=seed,
                                         phase=1 if file == "align" else 2, n=n)
        finetune(model, examples, save_at=[n], save=lambda m, _: None, seed=seed, pad_id=pad,
                 **train)
        yield name, model.eval()


GENRES = {"review of ": "review", "user : ": "dialogue", "instruction : ": "instruction"}


def genre(text: str) -> str:
    """The genre of a pretraining document (prose when no genre's opening matches)."""
    return next((g for opening, g in GENRES.items() if text.startswith(opening)), "prose")


def rates(model, tok, *, pretrain: list[str], pairs: dict[str, list[tuple[str, str]]],
          context: int) -> list[dict]:
    """Bits/byte of held-out D_p per genre, and response-only bits/byte of D_a and D_t beside
    their ideal rate under the world's generator (``springback.ideal``)."""
    rows, logits = [], model_logits(model)
    for name in sorted({genre(t) for t in pretrain}):
        docs = [t for t in pretrain if genre(t) == name]
        s = text_set(tok, docs, context)
        rows.append({"dataset": f"D_p {name}", "documents": len(docs),
                     "model_bpb": code_length(logits, s.batches)[0] / s.n_bytes,
                     "ideal_bpb": float("nan")})
    for name, items in pairs.items():
        s = text_set(tok, items, context)
        rows.append({"dataset": f"{name} responses", "documents": len(items),
                     "model_bpb": code_length(logits, s.batches)[1] / s.response_bytes,
                     "ideal_bpb": ideal.response_bpb([c for _, c in items])})
    return rows


def document_table(model, tok, texts: list[str], *, context: int) -> pd.DataFrame:
    """Each document's model code length in bits and its bytes (UTF-8 + 1 newline), coded as the
    range coder codes it (``springback.compress``)."""
    ids, docs = special_ids(tok), coder.tokenize_losslessly(tok, texts)
    batches = layout(docs, context=context, bos_id=ids["start"], eos_id=ids["eos"],
                     pad_id=ids["pad"])
    return pd.DataFrame({"document": range(len(docs)),
                         "bits": document_lengths(model_logits(model), batches, len(docs)),
                         "bytes": document_bytes(texts)})


def compressors(*, base_dir, tables: Mapping[str, Path], pretrain_heldout, n_docs: int,
                context: int, **run):
    """Bits and bits/byte of every method, dataset and stage; each coded document's model code
    length; and the rates per genre and against the generator's ideal (tables/ideal.csv)."""
    tok, base = models.load_tokenizer(base_dir), models.load_model(base_dir)
    pretrain = data.read_table(pretrain_heldout, ("text",))["text"].tolist()
    pairs = {}
    for name, file in (("D_a", "align_heldout"), ("D_t", "perturb_heldout")):
        frame = data.read_table(tables[file], data.EXAMPLE_COLUMNS)
        pairs[name] = list(zip(frame["prompt"], frame["completion"]))
    # the coded sets: the first n_docs documents of each (the range coder is one pass a token)
    sets = {"D_p": pretrain[:n_docs]} | {name: [f"{p} {c}" for p, c in items[:n_docs]]
                                         for name, items in pairs.items()}
    frames, documents, ideal_rows = [], [], []
    for stage, model in stages(base, tok, tables, **run):
        for name, texts in sets.items():
            frames.append(coder.compare(model, tok, texts, context=context).assign(
                stage=stage, dataset=name, documents=len(texts)))
            log.info("coded %s at %s", name, stage)
            documents.append(document_table(model, tok, texts, context=context).assign(
                stage=stage, dataset=name))
        ideal_rows += [r | {"stage": stage} for r in rates(model, tok, pretrain=pretrain,
                                                            pairs=pairs, context=context)]
    table = pd.DataFrame(ideal_rows)
    table["redundancy_bpb"] = table["model_bpb"] - table["ideal_bpb"]
    return (base, tok, pd.concat(frames, ignore_index=True),
            pd.concat(documents, ignore_index=True), table)


def responses(texts: list[str], mark: str) -> list[str]:
    """What follows the behaviour mark (the response) in every document that has it."""
    return [t.split(mark, 1)[1] for t in texts if mark in t]


def sampled_responses(model, tok, prompts: list[str], *, max_new_tokens: int,
                      seed: int) -> list[str]:
    """One sampled continuation per prompt text (BOS + the prompt's tokens; temperature 1, up
    to EOS; ``springback.evaluate.sample_continuations``), stripped of surrounding spaces."""
    ids = special_ids(tok)
    encoded = [[ids["start"]] + p for p in tok(prompts, add_special_tokens=False)["input_ids"]]
    out = sample_continuations(model, tok, encoded, pad_id=ids["pad"], eos_id=ids["eos"],
                               max_new_tokens=max_new_tokens, seed=seed)
    return [o.strip() for o in out]


def compression_study(*, base_dir, files: Mapping[str, str | Path], tasks: list[str],
                      coded_task: str, n_docs: int, context: int, n_pos: list[int],
                      n_neg: list[int], seeds: list[int], train: dict, max_new_tokens: int,
                      out: dict[str, str]) -> None:
    """tables/compressors.csv, tables/ideal.csv, tables/pareto.csv,
    tables/rank_frequency.csv (top 200 responses of D_p and of the base's samples, the figure) and
    compression/documents.csv (each coded document's model code length). ``files``: the job's
    named inputs (``<task>_<table>`` of every task, corpus: D_p, pretrain_heldout); the coded
    task is aligned on the largest of the study's ``n_pos`` and perturbed on the largest of its
    ``n_neg``, with its first fine-tuning seed."""
    tables, seed = {task: data.task_files(files, task) for task in tasks}, seeds[0]
    base, tok, table, documents, rates_table = compressors(
        base_dir=base_dir, tables=tables[coded_task], pretrain_heldout=files["pretrain_heldout"],
        n_docs=n_docs, context=context, n_pos=max(n_pos), n_neg=max(n_neg), seed=seed,
        train=train)
    table.assign(task=coded_task).to_csv(out["compressors"], index=False)
    columns = ["task", "stage", "dataset", "document", "bits", "bytes"]
    documents.assign(task=coded_task)[columns].to_csv(out["documents"], index=False)
    rates_table.assign(task=coded_task).to_csv(out["ideal"], index=False)
    texts = data.read_table(files["corpus"], ("text",))["text"].tolist()
    fits, ranks = [], []
    for task in tasks:
        sources = {"D_p": responses(texts, MARKS[task])}
        frames = {f: data.read_table(tables[task][f], data.EXAMPLE_COLUMNS)
                  for f in ("align", "perturb")}
        sources |= {f"task {f}": frame["completion"].tolist() for f, frame in frames.items()}
        sources["base samples"] = sampled_responses(  # the base answers the alignment prompts
            base, tok, frames["align"]["prompt"].tolist(), max_new_tokens=max_new_tokens,
            seed=seed)
        for source, items in sources.items():
            fits.append(pareto.pareto_table(items).assign(task=task, source=source))
            if source in ("D_p", "base samples"):
                ranks.append(pareto.rank_frequency(items).head(200).assign(task=task,
                                                                           source=source))
    pd.concat(fits, ignore_index=True).to_csv(out["pareto"], index=False)
    pd.concat(ranks, ignore_index=True).to_csv(out["ranks"], index=False)
