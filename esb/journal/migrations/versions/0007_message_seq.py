"""A message id stored once (issue 19): events and business keys refer to an integer key of the message row.

- ``messages`` gets ``seq`` (``INTEGER PRIMARY KEY AUTOINCREMENT`` on SQLite: the rowid, never reused;
  ``BIGSERIAL`` on PostgreSQL) as its primary key; ``(id, route)`` stays unique (``ux_messages_id_route``).
- ``events.message_id`` becomes ``events.message_seq`` (foreign key to ``messages.seq``, indexed).
- ``business_keys`` becomes ``(message_seq, name, value)``: the keys of an id are copied to every row of
  that id (one per route), so a search by key still finds the message on every route. Keys of an id with
  no message row (unreachable before: every reader starts from the message rows) are not copied.
- ``deliveries`` is folded into the events: a confirmed delivery is the ``delivered`` event naming its
  endpoint (which every delivery already had since the hot path wrote both in one commit). A delivery row
  without that event (a journal written by ``mark_delivered(event=False)``) becomes one such event.

Data-preserving on SQLite and PostgreSQL: new tables are created beside the old ones, filled with
``INSERT ... SELECT``, the old ones dropped and the new ones renamed (one transaction; a journal of ten
million messages takes minutes and needs free disk about its own size). Event ids are kept.

Revision ID: 0007_message_seq
Revises: 0006_journal_compact
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from esb.journal.schema import JSONType, UTCDateTime

revision = "0007_message_seq"
down_revision = "0006_journal_compact"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ENVELOPE = (
    "id, route, correlation_id, causation_id, type, source, schema, headers, body, created_at, received_at,"
    " attempt, delivery_count"
)
_EVENT = "route, state, endpoint, error_class, error_reason, error_text, detail, body, at"


def _envelope_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("correlation_id", sa.String(), nullable=False),
        sa.Column("causation_id", sa.String(), nullable=True),
        sa.Column("type", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("schema", sa.String(), nullable=True),
        sa.Column("headers", JSONType, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
    ]


def _event_columns(message: list[sa.Column[object]]) -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        *message,
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=True),
        sa.Column("error_class", sa.String(), nullable=True),
        sa.Column("error_reason", sa.String(), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("detail", JSONType, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    ]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _continue_event_ids(table: str) -> None:
    """PostgreSQL: the id sequence of ``table`` goes on after the ids copied into it."""
    if _postgresql():
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608 - a constant name
            f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )


def _rename(tables: tuple[str, ...], suffix: str) -> None:
    """Give the new copies (``name + suffix``) of ``tables`` their names (PostgreSQL: primary keys too)."""
    for table in tables:
        op.rename_table(f"{table}{suffix}", table)
        if _postgresql():
            op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {table}{suffix}_pkey TO {table}_pkey")


def _message_indexes() -> None:
    caused = sa.text("causation_id IS NOT NULL")
    op.create_index("ix_messages_correlation_id", "messages", ["correlation_id"])
    op.create_index(
        "ix_messages_causation_id", "messages", ["causation_id"], sqlite_where=caused, postgresql_where=caused
    )
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_events_at", "events", ["at"])
    dead = sa.text("state = 'dead_lettered'")
    op.create_index("ix_events_dead_lettered", "events", ["at"], sqlite_where=dead, postgresql_where=dead)
    op.create_index("ix_business_keys_value", "business_keys", ["value"])


def upgrade() -> None:
    """Key events and business keys by the message row's ``seq``; fold deliveries into events."""
    op.create_table(
        "messages_0007",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        *_envelope_columns(),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "events_0007",
        *_event_columns([sa.Column("message_seq", _SEQ, nullable=False)]),
        sa.ForeignKeyConstraint(["message_seq"], ["messages_0007.seq"], name="fk_events_message"),
    )
    op.create_table(
        "business_keys_0007",
        sa.Column("message_seq", _SEQ, primary_key=True),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), primary_key=True),
        sa.ForeignKeyConstraint(["message_seq"], ["messages_0007.seq"], name="fk_business_keys_message"),
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO messages_0007 ({_ENVELOPE}) SELECT {_ENVELOPE} FROM messages"  # noqa: S608 - constants
        " ORDER BY received_at, id, route"
    )
    old_event = ", ".join(f"e.{c.strip()}" for c in _EVENT.split(","))
    op.execute(
        f"INSERT INTO events_0007 (id, message_seq, {_EVENT}) SELECT e.id, m.seq, {old_event}"  # noqa: S608
        " FROM events e JOIN messages_0007 m ON m.id = e.message_id AND m.route = e.route"
    )
    _continue_event_ids("events_0007")
    op.execute(  # a delivery row without its delivered event becomes that event
        "INSERT INTO events_0007 (message_seq, route, state, endpoint, at)"
        " SELECT m.seq, d.route, 'delivered', d.endpoint, d.at FROM deliveries d"
        " JOIN messages_0007 m ON m.id = d.message_id AND m.route = d.route"
        " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = d.message_id AND e.route = d.route"
        " AND e.state = 'delivered' AND e.endpoint = d.endpoint)"
    )
    op.execute(
        "INSERT INTO business_keys_0007 (message_seq, name, value) SELECT m.seq, k.name, k.value"
        " FROM business_keys k JOIN messages_0007 m ON m.id = k.message_id"
    )
    for table in ("events", "deliveries", "business_keys", "messages"):  # children first
        op.execute(f"DROP TABLE {table}")
    _rename(("messages", "events", "business_keys"), "_0007")
    if _postgresql():
        op.execute("ALTER SEQUENCE messages_0007_seq_seq RENAME TO messages_seq_seq")
        op.execute("ALTER SEQUENCE events_0007_id_seq RENAME TO events_id_seq")
    op.create_index("ux_messages_id_route", "messages", ["id", "route"], unique=True)
    op.create_index("ix_events_message_seq", "events", ["message_seq"])
    _message_indexes()


def downgrade() -> None:
    """Back to 0006: ids in events and business keys, a deliveries table (one row per delivered endpoint)."""
    op.create_table(
        "messages_0006",
        *[sa.Column(c.name, c.type, primary_key=c.name in ("id", "route"), nullable=c.nullable)
          for c in _envelope_columns()],
    )
    op.create_table(
        "events_0006",
        *_event_columns([sa.Column("message_id", sa.String(), nullable=False)]),
        sa.ForeignKeyConstraint(
            ["message_id", "route"], ["messages_0006.id", "messages_0006.route"], name="fk_events_message"
        ),
    )
    op.create_table(
        "deliveries_0006",
        sa.Column("route", sa.String(), primary_key=True),
        sa.Column("message_id", sa.String(), primary_key=True),
        sa.Column("endpoint", sa.String(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id", "route"], ["messages_0006.id", "messages_0006.route"], name="fk_deliveries_message"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "business_keys_0006",
        sa.Column("message_id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.execute(f"INSERT INTO messages_0006 ({_ENVELOPE}) SELECT {_ENVELOPE} FROM messages")  # noqa: S608
    new_event = ", ".join(f"e.{c.strip()}" for c in _EVENT.split(","))
    op.execute(
        f"INSERT INTO events_0006 (id, message_id, {_EVENT}) SELECT e.id, m.id, {new_event}"  # noqa: S608
        " FROM events e JOIN messages m ON m.seq = e.message_seq"
    )
    _continue_event_ids("events_0006")
    op.execute(
        "INSERT INTO deliveries_0006 (route, message_id, endpoint, at) SELECT m.route, m.id, e.endpoint,"
        " min(e.at) FROM events e JOIN messages m ON m.seq = e.message_seq"
        " WHERE e.state = 'delivered' AND e.endpoint IS NOT NULL GROUP BY m.route, m.id, e.endpoint"
    )
    op.execute(
        "INSERT INTO business_keys_0006 (message_id, name, value) SELECT DISTINCT m.id, k.name, k.value"
        " FROM business_keys k JOIN messages m ON m.seq = k.message_seq"
    )
    for table in ("events", "business_keys", "messages"):  # children first
        op.execute(f"DROP TABLE {table}")
    _rename(("messages", "events", "deliveries", "business_keys"), "_0006")
    if _postgresql():
        op.execute("ALTER SEQUENCE events_0006_id_seq RENAME TO events_id_seq")
    op.create_index("ix_events_message_id", "events", ["message_id"])
    _message_indexes()
