"""The journal's tables, in SQLAlchemy Core with types that work unchanged on SQLite and PostgreSQL.

Timestamps are stored in UTC and always come back timezone-aware (SQLite keeps no zone, so
:class:`UTCDateTime` adds it back). JSON columns are ``JSON`` on SQLite and ``JSONB`` on PostgreSQL.
The Alembic migrations in ``migrations/versions`` create exactly this; a test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

from esb.journal.constants import FINAL_STATES as FINAL_STATES  # re-exported: where they were first
from esb.journal.constants import SETTLED_STATES as SETTLED_STATES
from esb.journal.constants import STATES as STATES
from esb.journal.constants import VERSION_TABLE as VERSION_TABLE


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; naive values are refused rather than guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC before storing (SQLite stores the wall clock without a zone)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("journal timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend gave back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: ``None`` is stored as SQL NULL (not the JSON text ``null``): no bytes for an absent detail or header.
JSONType: sa.types.TypeEngine[Any] = sa.JSON(none_as_null=True).with_variant(
    JSONB(none_as_null=True), "postgresql"
)

metadata = sa.MetaData()

#: A message row's own key: ``INTEGER PRIMARY KEY`` on SQLite (the rowid: no bytes of its own), ``BIGSERIAL``
#: on PostgreSQL. Events and business keys refer to it, so a message id is stored once (issue 19).
SeqType: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
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
    # one row per (id, route): a message forwarded with its id keeps it on the next route
    sa.Index("ux_messages_id_route", "id", "route", unique=True),
    sa.Index("ix_messages_correlation_id", "correlation_id"),
    # partial: most messages have no cause (no bytes for them), and SQLite's statistics would otherwise
    # count every NULL as one value and take the index for useless (esb trace scanned every message)
    sa.Index(
        "ix_messages_causation_id",
        "causation_id",
        sqlite_where=sa.text("causation_id IS NOT NULL"),
        postgresql_where=sa.text("causation_id IS NOT NULL"),
    ),
    sa.Index("ix_messages_received_at", "received_at"),
    # AUTOINCREMENT: a key is never given again after its row was pruned (a process may still hold it)
    sqlite_autoincrement=True,
)

#: Every change of state of a message on a route. A confirmed delivery to an endpoint is the
#: ``delivered`` event naming that endpoint (there is no deliveries table since migration 0007).
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", SeqType, primary_key=True, autoincrement=True),  # bigint on PostgreSQL (0013)
    sa.Column("message_seq", SeqType, nullable=False),
    sa.Column("route", sa.String(), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("endpoint", sa.String(), nullable=True),
    sa.Column("error_class", sa.String(), nullable=True),
    sa.Column("error_reason", sa.String(), nullable=True),
    sa.Column("error_text", sa.Text(), nullable=True),
    sa.Column("detail", JSONType, nullable=True),
    sa.Column("body", sa.LargeBinary(), nullable=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["message_seq"], ["messages.seq"], name="fk_events_message"),
    sa.Index("ix_events_message_seq", "message_seq"),
    # time windows (esb stats, counts, the console's rates): the route is checked on the rows of the window
    sa.Index("ix_events_at", "at"),
    # a few rows: dead letters listed newest first without scanning every event (partial index); it
    # holds what reading them needs (the list's order at, id; message, route; the state of its
    # condition: SQLite then reads no event row)
    sa.Index(
        "ix_events_dead_lettered",
        "at",
        "id",
        "message_seq",
        "route",
        "state",
        sqlite_where=sa.text("state = 'dead_lettered'"),
        postgresql_where=sa.text("state = 'dead_lettered'"),
    ),
)

#: The message rows whose latest state is ``dead_lettered``, by their time of arrival (migrations 0011,
#: 0014, 0018): replay's selection of a window's dead letters is one range of the covering
#: ``ix_dead_letters_received_at`` (no message row, no event), and ``esb dlq``'s count per route reads
#: ``ix_dead_letters_route`` alone (0020).
#: Kept by the database: a trigger on ``events`` adds a message's row with a ``dead_lettered`` event
#: (``route``, ``received_at`` and ``message_id`` copied from the message), another removes it with any
#: later event of another state (replayed, delivered, purged...); pruning the message deletes it (cascade).
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("message_seq", SeqType, primary_key=True, autoincrement=False),
    sa.Column("route", sa.String(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("message_id", sa.String(), nullable=False),
    sa.ForeignKeyConstraint(
        ["message_seq"], ["messages.seq"], name="fk_dead_letters_message", ondelete="CASCADE"
    ),
    sa.Index("ix_dead_letters_received_at", "received_at", "route", "message_seq", "message_id"),
    # esb dlq list's count per route, index-only (migration 0020); replay's window keeps the index above
    sa.Index("ix_dead_letters_route", "route"),
)

#: The ingress messages (a body) whose latest state is not settled (migration 0016, ``SETTLED_STATES``:
#: delivered, filtered, dead-lettered, purged), by their time of arrival: ``esb health``'s stuck messages
#: are one range of ``ix_in_flight_received_at``. Kept by the database like ``dead_letters``: a trigger on
#: ``events`` adds the message's row with an event of another state (ignored when there), another removes
#: it with a settled one; pruning the message deletes it (cascade). Not partitioned: it stays small. On
#: PostgreSQL the batched path writes its rows itself, its transactions skipping the triggers (pgrows.py).
in_flight = sa.Table(
    "in_flight",
    metadata,
    sa.Column("message_seq", SeqType, primary_key=True, autoincrement=False),
    sa.Column("route", sa.String(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(
        ["message_seq"], ["messages.seq"], name="fk_in_flight_message", ondelete="CASCADE"
    ),
    sa.Index("ix_in_flight_received_at", "received_at", "route", "message_seq"),
)

#: Business keys of a message row (its id on another route has its own rows). A search by key finds the
#: rows of the message's id on every route (esb/journal/queries.py).
business_keys = sa.Table(
    "business_keys",
    metadata,
    sa.Column("message_seq", SeqType, primary_key=True),
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("value", sa.String(), primary_key=True),
    sa.ForeignKeyConstraint(["message_seq"], ["messages.seq"], name="fk_business_keys_message"),
    # one index serves both a search by value (esb trace) and by name and value (find): the name is
    # checked on the few rows a value finds
    sa.Index("ix_business_keys_value", "value"),
    sqlite_with_rowid=False,
)

#: Dictionaries that compress bodies of one kind (a route's ingress or one of its endpoints):
#: esb/journal/bodies.py. Never changed once written; a body names the one it needs.
dictionaries = sa.Table(
    "journal_dictionaries",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("data", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_journal_dictionaries_kind", "kind"),
)

#: One-time keys already used (WS-Security nonces: replay protection), shared by every hub process on this
#: database. ``key`` is a digest chosen by the user of the ledger (for a nonce: sha256 of user and nonce,
#: never the nonce itself); rows past ``expires_at`` are pruned.
one_time_keys = sa.Table(
    "one_time_keys",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index("ix_one_time_keys_expires_at", "expires_at"),
)

#: Per-minute figures of each route (migration 0015, esb/journal/rollup.py): how many events of a kind a
#: route had in a minute (``figure``: a state such as ``received``, ``delivered`` for the route-level
#: delivery, ``error:<reason>``, or ``ms:<bucket>`` for a latency in one of the log-spaced buckets). Kept
#: by the journal's write paths in the transaction of the events they count, so the console's figures read
#: routes x minutes rows instead of every event of their window. Not pruned with the messages: they are
#: what happened (docs/journal.md "Retention").
route_minutes = sa.Table(
    "route_minutes",
    metadata,
    sa.Column("minute", UTCDateTime(), primary_key=True),
    sa.Column("route", sa.String(), primary_key=True),
    sa.Column("figure", sa.String(), primary_key=True),
    sa.Column("count", sa.BigInteger(), nullable=False),
    sqlite_with_rowid=False,
)
