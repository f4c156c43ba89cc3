"""The journal's migrations are frozen history: no revision imports live code (docs/journal.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from esb.journal.revisions import MIGRATIONS

#: What a revision may import from ``esb``: stable column types, and the frozen SQL of earlier revisions.
ALLOWED = {"esb.journal.schema": {"JSONType", "UTCDateTime"}}
FROZEN = "esb.journal.migrations._frozen"
HISTORY = sorted((MIGRATIONS / "versions").glob("*.py")) + sorted((MIGRATIONS / "_frozen").glob("*.py"))


def live_imports(source: str) -> list[str]:
    """The imports of ``esb`` code in ``source`` outside :data:`ALLOWED` and the frozen modules (and every
    relative import), each as ``module:name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "esb"]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                found.append("." * node.level + module)
            elif module == FROZEN or module.startswith(FROZEN + "."):
                continue
            elif module.split(".")[0] == "esb":
                allowed = ALLOWED.get(module, set())
                found += [f"{module}:{alias.name}" for alias in node.names if alias.name not in allowed]
    return found


@pytest.mark.parametrize("path", HISTORY, ids=lambda path: path.name)
def test_a_revision_imports_no_live_esb_module(path: Path) -> None:
    """A revision (or a frozen module) imports from esb only the column types and the frozen SQL."""
    assert live_imports(path.read_text(encoding="utf-8")) == []


def test_the_rule_catches_each_kind_of_live_import() -> None:
    """A live module imported in any spelling (in a function too) is found; the allowed ones are not."""
    source = """
import esb.journal.partitions
from esb.journal import lookups
from esb.journal.schema import UTCDateTime, messages
from esb.journal.migrations._frozen import r0012
from . import sibling

def upgrade():
    from esb.journal.pgrows import STALE_FUNCTION
"""
    assert live_imports(source) == [
        "esb.journal.partitions",
        "esb.journal:lookups",
        "esb.journal.schema:messages",
        ".",
        "esb.journal.pgrows:STALE_FUNCTION",
    ]


def test_every_revision_is_checked() -> None:
    """The check reads every revision file (not an empty glob) and the frozen modules."""
    names = {path.name for path in HISTORY}
    assert {"0001_initial.py", "0012_postgres_partitions.py", "0019_journal_rows_written.py"} <= names
    assert "r0012.py" in names
