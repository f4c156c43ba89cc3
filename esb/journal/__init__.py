"""The message journal: every message at ingress and each change of its state (SQLite or PostgreSQL).

See ``docs/journal.md``. The engine calls :class:`Journal` on every message; operators' commands
(``esb replay``, ``esb trace``, ``esb stats``, ``esb dlq``) read it.
"""

from __future__ import annotations

from esb.journal.journal import Journal
from esb.journal.records import EventRecord, MessageRecord
from esb.journal.schema import FINAL_STATES, STATES

__all__ = ["FINAL_STATES", "STATES", "EventRecord", "Journal", "MessageRecord"]
