"""Generated documentation stays in step with the models it is generated from."""

from __future__ import annotations

from pathlib import Path

from esb.config.reference import generate

ROOT = Path(__file__).resolve().parents[2]


def test_reference_doc_is_current() -> None:
    """docs/reference.md equals what the models generate (run `python -m esb.config.reference`)."""
    assert (ROOT / "docs" / "reference.md").read_text(encoding="utf-8") == generate()
