"""The message journal: every message at ingress and each change of its state (SQLite or PostgreSQL).

See ``docs/journal.md``. The engine calls :class:`Journal` on every message; operators' commands
(``esb replay``, ``esb trace``, ``esb stats``, ``esb dlq``) read it. :class:`Journal` (and SQLAlchemy
behind it) is imported on first use: a cold ``esb trace`` on SQLite reads without it
(:mod:`esb.journal.sqliteread`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esb.journal.constants import FINAL_STATES, STATES
from esb.journal.records import EventRecord, MessageRecord, MessageRef
from esb.registry import lazy_exports

if TYPE_CHECKING:
    from esb.journal.journal import Journal

__getattr__ = lazy_exports(__name__, {"Journal": "esb.journal.journal"})

__all__ = ["FINAL_STATES", "STATES", "EventRecord", "Journal", "MessageRecord", "MessageRef"]
