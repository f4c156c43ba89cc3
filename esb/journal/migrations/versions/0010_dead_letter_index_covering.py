"""The dead-letter index holds what reading dead letters needs: ``at, id, message_seq, route, state``.

``ix_events_dead_lettered`` (partial: ``state = 'dead_lettered'``) was on ``at`` alone, so selecting
the messages dead-lettered since a time (``esb replay --state dead_lettered --since ...``) read one event
row per dead letter: at 10 million messages, 100,000 random reads of the events table for a window a
month old. With the message id, the route and the state in the index (SQLite counts a partial index as
covering only when the column of its condition is in it too) it reads the index alone, and counting the
dead letters since a time (how the selection chooses its way) costs a millisecond. ``id`` follows ``at``
so the dead-letter list's order (``at DESC, id DESC``, its keyset cursor) is the index's own: without it
SQLite walked ``ix_events_at`` instead, checking every event's state. Only dead-lettered events are
written to it (about 1 % of messages).

Revision ID: 0010_dead_letter_index_covering
Revises: 0009_process_trace_context
Create Date: 2026-12-06

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_dead_letter_index_covering"
down_revision = "0009_process_trace_context"
branch_labels = None
depends_on = None

_DEAD = sa.text("state = 'dead_lettered'")


def upgrade() -> None:
    """Replace the dead-letter index on ``at`` with one covering the selection and the dead-letter list."""
    op.drop_index("ix_events_dead_lettered", table_name="events")
    op.create_index(
        "ix_events_dead_lettered",
        "events",
        ["at", "id", "message_seq", "route", "state"],
        sqlite_where=_DEAD,
        postgresql_where=_DEAD,
    )


def downgrade() -> None:
    """Go back to the dead-letter index on ``at`` alone."""
    op.drop_index("ix_events_dead_lettered", table_name="events")
    op.create_index("ix_events_dead_lettered", "events", ["at"], sqlite_where=_DEAD, postgresql_where=_DEAD)
