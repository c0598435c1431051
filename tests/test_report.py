"""The report's captions (report/*.rst) render without a docutils message, as
``snakemake --report`` renders them (Jinja first, then reStructuredText to HTML)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from docutils.core import publish_parts

REPORT = Path(__file__).resolve().parents[1] / "report"


def docutils_messages(text: str) -> str:
    """Every docutils warning or error of rendering ``text`` to HTML (empty when clean)."""
    stream = io.StringIO()
    publish_parts(text, writer="html",
                  settings_overrides={"warning_stream": stream, "report_level": 2})
    return stream.getvalue()


def test_a_stray_substitution_is_caught():
    assert "Undefined substitution" in docutils_messages("k = |D_p| / |D_a|")
    assert docutils_messages("k = ``|D_p| / |D_a|``") == ""


@pytest.mark.parametrize("caption", sorted(p.name for p in REPORT.glob("*.rst")))
def test_caption_renders_without_a_docutils_message(caption):
    snakemake = SimpleNamespace(wildcards=SimpleNamespace(pair="a_pair"), config={})
    text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        (REPORT / caption).read_text()).render(snakemake=snakemake, categories={}, files={})
    assert docutils_messages(text) == "", caption
