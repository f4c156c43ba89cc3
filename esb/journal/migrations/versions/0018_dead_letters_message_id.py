"""``dead_letters`` carries the message id: replay's selection of a window's dead letters reads no message.

``esb replay --route R --since D --until D+1day --state dead_lettered`` read the window's range of
``ix_dead_letters_received_at`` (0011, 0014), then each of its 1,000 message rows for the records it
lists: 9 ms of statement and ~1,000 pages from the disk when the journal is cold (125 ms at 10 M on
PostgreSQL, ~200 ms on SQLite; bench/README.md). What the selection needs before the first message is
re-published is each row's seq, message id (one per id, ties ordered by id), route and arrival: with
``message_id`` copied from the message beside ``route`` and ``received_at``, and in the index, the
selection is one range of one index (:func:`esb.journal.queries.dead_letter_refs`); the replay reads
each message's record and body as it re-publishes (docs/journal.md "Replay's selection").

Kept by the database as before: 0011's trigger, which inserts the row of a message with a
``dead_lettered`` event, copies ``messages.id`` too. The upgrade fills the column of the existing rows
(one probe of ``messages`` by seq per unhandled dead letter: figures in docs/journal.md "Migrations"),
makes it NOT NULL and builds the index ``(received_at, route, message_seq, message_id)`` again. The
downgrade drops the column and puts 0011's index and trigger back.

Revision ID: 0018_dead_letters_message_id
Revises: 0017_lookup_tables
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_dead_letters_message_id"
down_revision = "0017_lookup_tables"
branch_labels = None
depends_on = None

_INDEX = "ix_dead_letters_received_at"
_COLUMNS = ["received_at", "route", "message_seq"]
_FILL = (
    "UPDATE dead_letters SET message_id ="
    " (SELECT m.id FROM messages AS m WHERE m.seq = dead_letters.message_seq)"
)


def _trigger_sql(*, with_id: bool, postgres: bool) -> str:
    """0011's trigger (SQLite) or trigger function (PostgreSQL) adding a dead letter's row, copying the
    message's id too when ``with_id``."""
    names = "message_seq, route, received_at" + (", message_id" if with_id else "")
    values = "m.seq, m.route, m.received_at" + (", m.id" if with_id else "")
    copy = f"INTO dead_letters ({names}) SELECT {values} FROM messages AS m WHERE m.seq = NEW.message_seq"  # noqa: S608
    if postgres:
        return (
            "CREATE OR REPLACE FUNCTION esb_dead_letters_add() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n    INSERT {copy}\n    ON CONFLICT DO NOTHING;\n    RETURN NULL;\nEND\n$$"
        )
    return (
        "CREATE TRIGGER tr_events_dead_letters AFTER INSERT ON events\n"
        f"WHEN NEW.state = 'dead_lettered'\nBEGIN\n    INSERT OR IGNORE {copy};\nEND"
    )


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Add and fill ``message_id``, index it with the window's columns, copy it in the trigger."""
    postgres = _postgres()
    op.drop_index(_INDEX, table_name="dead_letters")
    if postgres:
        op.execute("LOCK TABLE dead_letters IN SHARE ROW EXCLUSIVE MODE")
        op.add_column("dead_letters", sa.Column("message_id", sa.String(), nullable=True))
        op.execute(
            "UPDATE dead_letters AS d SET message_id = m.id FROM messages AS m WHERE m.seq = d.message_seq"
        )
        op.alter_column("dead_letters", "message_id", nullable=False)
        op.execute(_trigger_sql(with_id=True, postgres=True))
    else:
        kept = _sqlite_triggers_off()
        op.add_column("dead_letters", sa.Column("message_id", sa.String(), nullable=True))
        op.execute(_FILL)
        with op.batch_alter_table("dead_letters") as batch:
            batch.alter_column("message_id", existing_type=sa.String(), nullable=False)
        _sqlite_triggers_on(kept, with_id=True)
    op.create_index(_INDEX, "dead_letters", [*_COLUMNS, "message_id"])


def _sqlite_triggers_off() -> list[str]:
    """Drop the triggers naming ``dead_letters`` (SQLite refuses to rebuild a table a trigger names: the
    NOT NULL column, the dropped column); return the SQL of those other than 0011's, to put back."""
    rows = op.get_bind().exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%dead_letters%'"
    )
    kept = []
    for name, sql in rows.all():
        op.execute(f'DROP TRIGGER "{name}"')
        if name != "tr_events_dead_letters":
            kept.append(sql)
    return kept


def _sqlite_triggers_on(kept: list[str], *, with_id: bool) -> None:
    """Put back the triggers :func:`_sqlite_triggers_off` dropped, 0011's copying the id if ``with_id``."""
    for sql in [*kept, _trigger_sql(with_id=with_id, postgres=False)]:
        op.execute(sql)


def downgrade() -> None:
    """Drop ``message_id``; 0011's index and trigger again."""
    postgres = _postgres()
    op.drop_index(_INDEX, table_name="dead_letters")
    if postgres:
        op.execute(_trigger_sql(with_id=False, postgres=True))
        op.drop_column("dead_letters", "message_id")
    else:
        kept = _sqlite_triggers_off()
        with op.batch_alter_table("dead_letters") as batch:
            batch.drop_column("message_id")
        _sqlite_triggers_on(kept, with_id=False)
    op.create_index(_INDEX, "dead_letters", _COLUMNS)
