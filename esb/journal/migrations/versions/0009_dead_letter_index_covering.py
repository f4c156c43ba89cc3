"""The dead-letter index holds what the replay selection reads: ``at, message_id, route, state``.

``ix_events_dead_lettered`` (partial: ``state = 'dead_lettered'``) was on ``at`` alone, so selecting
the messages dead-lettered since a time (``esb replay --state dead_lettered --since ...``, the console's
dead-letter list) read one event row per dead letter: at 10 million messages, 100,000 random reads of
the events table for a window a month old. With the message id, the route and the state in the index
(SQLite counts a partial index as covering only when the columns of its condition are in it too) those
queries read the index alone. Only dead-lettered events are written to it (about 1 % of messages).

Revision ID: 0009_dead_letter_index_covering
Revises: 0008_process_trace_context
Create Date: 2026-12-06

(0007 is the journal's and 0008 the process store's, on branches not yet merged: the lead re-chains.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_dead_letter_index_covering"
down_revision = "0008_process_trace_context"
branch_labels = None
depends_on = None

_DEAD = sa.text("state = 'dead_lettered'")


def upgrade() -> None:
    """Replace the dead-letter index on ``at`` with one covering the replay selection."""
    op.drop_index("ix_events_dead_lettered", table_name="events")
    op.create_index(
        "ix_events_dead_lettered",
        "events",
        ["at", "message_id", "route", "state"],
        sqlite_where=_DEAD,
        postgresql_where=_DEAD,
    )


def downgrade() -> None:
    """Go back to the dead-letter index on ``at`` alone."""
    op.drop_index("ix_events_dead_lettered", table_name="events")
    op.create_index("ix_events_dead_lettered", "events", ["at"], sqlite_where=_DEAD, postgresql_where=_DEAD)
