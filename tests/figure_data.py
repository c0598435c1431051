"""Read a plotnine figure back as a reader sees it: the data its layers draw, the panel strips
and the legend, so that tests compare what is drawn with the tables it was drawn from."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd

from springback.plots import DATASETS

BASE_LABEL = re.compile(r"^(?P<role>\w+)(?: \((?P<world>\w+) world\))? · (?P<size>\S+) @ "
                        r"(?P<tokens>[\d,]+)$")
CONDITION = ["task", "world", "size", "pretrain_tokens", "direction", "role"]


def built(plot):
    """A built copy of a plot (scales trained, layers' data mapped to what is drawn)."""
    out = copy.deepcopy(plot)
    out._build()
    return out


def legend(plot, aes: str = "color") -> dict[str, str]:
    """The legend of an aesthetic: its labels and the colour each is drawn in."""
    scale = plot._build_objs.scales.get_scales(aes)
    breaks = list(scale.get_breaks())
    return dict(zip(map(str, breaks), scale.map(pd.Series(breaks))))


def layer_data(plot, geom: str) -> pd.DataFrame:
    """What the first layer drawn by ``geom`` (e.g. "geom_line") draws, with each row's facet
    values (the panel strips)."""
    layer = next(lay for lay in plot.layers if type(lay.geom).__name__ == geom)
    layout = plot._build_objs.layout.layout
    facets = [c for c in layout.columns if c not in ("ROW", "COL", "SCALE_X", "SCALE_Y",
                                                     "AXIS_X", "AXIS_Y")]
    return layer.data.merge(layout[facets], on="PANEL")


def parse_base(label: str, worlds: set[str]) -> dict:
    """The base a strip names: role, world (where the label names none: the role's own world if
    the role is a world, else hub in a hub-mode study, else main), size and pretraining tokens."""
    m = BASE_LABEL.match(label)
    assert m, f"not a base label: {label!r}"
    role = m["role"]
    world = m["world"] or (role if role in worlds else "hub" if worlds == {"hub"} else "main")
    return {"role": role, "world": world, "size": m["size"],
            "pretrain_tokens": int(m["tokens"].replace(",", ""))}


def check_lines(plot, curves: pd.DataFrame, value, keys_of) -> int:
    """Every line of the figure is one curve of ``curves`` (its n_neg and its ``value``
    column, or the column ``value(row)`` names for a line's first row), the one its panel
    strips (``keys_of(row) -> {column: value}``) and its legend colour (n_pos) name; no curve is
    drawn twice. Returns the number of lines."""
    b = built(plot)
    colour_of = {c: int(n) for n, c in legend(b).items()}
    lines = layer_data(b, "geom_line")
    drawn = set()
    for (_, colour), line in lines.groupby(["PANEL", "color"]):
        column = value(line.iloc[0]) if callable(value) else value
        keys = keys_of(line.iloc[0]) | {"n_pos": colour_of[colour]}
        want = curves.loc[(curves[list(keys)] == pd.Series(keys)).all(axis=1)]
        want = want.dropna(subset=[column]).sort_values("n_neg")
        line = line.sort_values("x")
        assert len(want) and list(line["x"]) == list(want["n_neg"]), keys
        assert np.allclose(line["y"], want[column], rtol=0, atol=1e-12), keys
        drawn.add((column, *sorted((k, str(v)) for k, v in keys.items())))
    assert len(drawn) == lines.groupby(["PANEL", "color"]).ngroups
    return len(drawn)


def n_curves(curves: pd.DataFrame, columns: list[str]) -> int:
    """How many (condition, n_pos, column) curves have a value: what a figure must draw."""
    keys = [*CONDITION, "n_pos"]
    return sum(curves.dropna(subset=[c]).groupby(keys).ngroups for c in columns)


def curve_readers(curves: pd.DataFrame, tasks: list[str]) -> dict:
    """Per figure whose colour is n_pos (by file stem): (the value column, or how a line's first
    row names it; how a line's panel strips name its keys; how many curves it must draw), for
    figures drawn from ``curves`` (the SFT rows of curves.csv)."""
    w = set(curves["world"])
    forward = curves[curves["direction"] == "forward"]
    dataset = {label: column for column, label in DATASETS.items()}
    out = {}
    for task in tasks:
        def rebound_keys(row, task=task):
            direction, base = row["panel"].split("\n")
            return parse_base(base, w) | {"task": task, "direction": direction}

        def compression_keys(row, task=task):
            return parse_base(row["base"], w) | {"task": task, "direction": "forward"}

        out[f"rebound_{task}"] = ("level", rebound_keys,
                                  n_curves(curves[curves["task"] == task], ["level"]))
        out[f"compression_{task}"] = (lambda row: dataset[row["dataset"]], compression_keys,
                                      n_curves(forward[forward["task"] == task], list(DATASETS)))

    def task_keys(row):
        base, task = row["panel"].split("\n")
        return parse_base(base, w) | {"task": task, "direction": "forward"}

    out["cue_gap"] = ("cue_gap", task_keys, n_curves(forward, ["cue_gap"]))
    out["kl_rebound"] = ("kl_to_base", task_keys, n_curves(forward, ["kl_to_base"]))
    return out


def check_curve_figures(plots: dict, curves: pd.DataFrame, tasks: list[str]) -> dict[str, str]:
    """``check_lines`` on every n_pos-coloured figure of ``plots`` (by file stem), each drawing
    every curve it must; returns the one colour of each n_pos across all of them."""
    colours: dict[str, set[str]] = {}
    for name, (value, keys_of, expected) in curve_readers(curves, tasks).items():
        assert check_lines(plots[name], curves, value, keys_of) == expected, name
        for n_pos, colour in legend(built(plots[name])).items():
            colours.setdefault(n_pos, set()).add(colour)
    assert all(len(c) == 1 for c in colours.values()), colours
    assert len({c for cs in colours.values() for c in cs}) == len(colours)
    return {n: c.pop() for n, c in colours.items()}
