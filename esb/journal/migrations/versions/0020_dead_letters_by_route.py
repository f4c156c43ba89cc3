"""``dead_letters`` indexed by route: ``esb dlq list``'s count per route reads a small index alone.

``esb dlq list`` counts each route's unhandled dead letters (``SELECT route, count(*) FROM dead_letters
WHERE route IN (...) GROUP BY route``). ``dead_letters`` had one index, ``(received_at, route,
message_seq, message_id)`` (0018), which no route condition can narrow: the count read the whole table
(PostgreSQL at 10 M messages, 100,000 dead letters: 1,137 heap pages, 30-44 ms; SQLite: a scan and a
temporary b-tree for the grouping). ``ix_dead_letters_route`` on ``route`` alone makes it an index-only
range per route on both backends (PostgreSQL's b-tree deduplication stores a route's entries as posting
lists: ~100 pages for those 100,000 rows; figures in docs/journal.md "Migrations").

Replay's window selection keeps ``ix_dead_letters_received_at``: on SQLite its statements mark the route's
term so that no index serves it (``+route``, esb/journal/queries.py), since SQLite's planner, without
statistics, would otherwise take the new index for ``route = ?`` and sort the route's every dead letter.

The table is not partitioned (it stays small: the dead-letter backlog), so one index serves it. The
upgrade builds it (a share lock on ``dead_letters`` while it builds: dead-letter events wait for it, the
rest of the journal does not); the downgrade drops it.

Revision ID: 0020_dead_letters_by_route
Revises: 0019_journal_rows_written
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0020_dead_letters_by_route"
down_revision = "0019_journal_rows_written"
branch_labels = None
depends_on = None

_INDEX = "ix_dead_letters_route"


def upgrade() -> None:
    """Index ``dead_letters`` by route."""
    op.create_index(_INDEX, "dead_letters", ["route"])


def downgrade() -> None:
    """Drop the index by route."""
    op.drop_index(_INDEX, table_name="dead_letters")
