"""docs/canonical-model-rules.md: its generated tables match the code and code lists."""

from __future__ import annotations

from pathlib import Path

from esb.model.codelists import load_codelists
from esb.model.rulesdoc import RULES_DOC, codelists_markdown, render, states_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_rules_doc_is_current() -> None:
    """The generated sections equal what rulesdoc renders now (run `python -m esb.model.rulesdoc .`)."""
    text = (ROOT / RULES_DOC).read_text(encoding="utf-8")
    assert render(text, ROOT) == text


def test_generated_sections_hold_the_tables() -> None:
    """The document contains the states table and every code list."""
    text = (ROOT / RULES_DOC).read_text(encoding="utf-8")
    assert states_markdown() in text
    assert codelists_markdown(load_codelists(ROOT)) in text
    assert "| `preReserved` |" in text


def test_render_replaces_stale_section() -> None:
    """A stale generated section is replaced, text outside it is kept."""
    stale = "intro\n<!-- BEGIN GENERATED states -->\nSTALE-TEXT\n<!-- END GENERATED states -->\nend\n"
    out = render(stale, ROOT)
    assert out.startswith("intro\n")
    assert out.endswith("end\n")
    assert "STALE-TEXT" not in out
    assert "`product_order`" in out
