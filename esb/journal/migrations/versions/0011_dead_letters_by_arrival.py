"""The messages ever dead-lettered, by their time of arrival: ``dead_letters`` (issue 18, replay at scale).

``esb replay --state dead_lettered --since ... --until ...`` selects messages *received* in a window whose
latest state is ``dead_lettered``. The dead-letter index on ``events`` is ordered by the time of the
dead-letter event, not by the message's arrival, so for a whole day a month old the selection read either
every dead letter since then (100,000 at 10 million messages) or every message of the day (~110,000 read
to find 1,000): 0.45-1 s on SQLite. ``dead_letters`` holds one row per message row ever dead-lettered:
its ``seq`` (the key, ``INTEGER PRIMARY KEY`` on SQLite: the rowid), route and ``received_at`` copied
from the message, indexed by ``(received_at, route)``: the dead letters of a window are one range of that
index (about 1 % of the window's messages), each then checked for its latest state as before.

Kept by the database, not by the journal's code (every writer of a ``dead_lettered`` event, batched or
not, is covered, and the write methods stay as they are): a trigger ``AFTER INSERT ON events`` for the
rows whose state is ``dead_lettered`` inserts the message's row (ignored when already there: a message
dead-lettered again after a replay). A replayed or delivered message keeps its row (its latest state
says it is handled); pruning a message deletes its row (``ON DELETE CASCADE``). Existing journals are
filled from their dead-letter events (the partial ``ix_events_dead_lettered``: seconds at 10 million).

Revision ID: 0011_dead_letters_by_arrival
Revises: 0010_dead_letter_index_covering
Create Date: 2026-12-07

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_dead_letters_by_arrival"
down_revision = "0010_dead_letter_index_covering"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COPY = "SELECT m.seq, m.route, m.received_at FROM messages AS m WHERE m.seq = {seq}"
_INTO = "INTO dead_letters (message_seq, route, received_at)"
_ADD = f"INSERT OR IGNORE {_INTO} {_COPY.format(seq='NEW.message_seq')}"
_SQLITE_TRIGGER = f"""
CREATE TRIGGER tr_events_dead_letters AFTER INSERT ON events
WHEN NEW.state = 'dead_lettered'
BEGIN
    {_ADD};
END
"""
_PG_FUNCTION = f"""
CREATE FUNCTION esb_dead_letters_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT {_INTO} {_COPY.format(seq="NEW.message_seq")}
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = (
    "CREATE TRIGGER tr_events_dead_letters AFTER INSERT ON events FOR EACH ROW"
    " WHEN (NEW.state = 'dead_lettered') EXECUTE FUNCTION esb_dead_letters_add()"
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Create ``dead_letters`` and its index, fill it from the dead-letter events, add the trigger."""
    op.create_table(
        "dead_letters",
        sa.Column("message_seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_seq"], ["messages.seq"], name="fk_dead_letters_message", ondelete="CASCADE"
        ),
    )
    op.execute(
        "INSERT INTO dead_letters (message_seq, route, received_at)"
        " SELECT DISTINCT m.seq, m.route, m.received_at FROM events AS e"
        " JOIN messages AS m ON m.seq = e.message_seq WHERE e.state = 'dead_lettered'"
    )
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at", "route", "message_seq"])
    if _postgres():
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    """Drop the trigger and ``dead_letters`` (the dead-letter events themselves are untouched)."""
    op.execute("DROP TRIGGER IF EXISTS tr_events_dead_letters" + (" ON events" if _postgres() else ""))
    if _postgres():
        op.execute("DROP FUNCTION IF EXISTS esb_dead_letters_add()")
    op.drop_index("ix_dead_letters_received_at", table_name="dead_letters")
    op.drop_table("dead_letters")
