"""The journal's head revision read from the migration files, without Alembic or SQLAlchemy.

Alembic's own answer (:func:`esb.journal.migrate.head`) costs an operator's command about 60 ms of
imports; reading the ``revision``/``down_revision`` lines of the files is enough when they are plain,
and a unit test keeps both answers equal.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
#: ``revision = "..."`` and ``down_revision = "..."`` (or None) lines of a revision file.
_REVISION = re.compile(
    r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:["']([^"']*)["']|None)\s*$""", re.MULTILINE
)


@cache
def plain_head() -> str | None:
    """The head revision read from the revision files (no Alembic), or None when a file does not name
    its revision and parent plainly or they do not make exactly one head (then the caller asks Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        if set(found) != {"revision", "down_revision"}:
            return None
        revisions.add(found["revision"])
        parents.add(found["down_revision"])
    heads = revisions - parents - {""}
    return heads.pop() if len(heads) == 1 else None
