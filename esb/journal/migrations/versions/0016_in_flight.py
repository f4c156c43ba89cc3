"""``in_flight``: the ingress messages that have not ended, so ``esb health`` finds the stuck ones exactly
(issues 18-19).

Until now ``esb health`` read the oldest 1,000 messages received in the last 24 h with each one's latest
event, and kept those whose latest state was not final: on a busy day the newer messages went unchecked.
``in_flight`` holds one row per message row that has a body (an ingress message, as that check read)
whose latest event's state is not *settled* (``delivered``, ``filtered``, ``dead_lettered``, or
``purged`` by an operator: :data:`esb.journal.constants.SETTLED_STATES`): its ``seq`` (the key,
``INTEGER PRIMARY KEY`` on SQLite), route and ``received_at`` copied from the message, indexed by
``(received_at, route)``. The stuck messages are one range of that index; the table stays small (what
is in flight now, plus what never ended). Not partitioned on PostgreSQL.

Kept by the database, as ``dead_letters`` (0011, 0014): every writer of events (batched, bulk, the
per-message path, replay, the process journal, ``esb dlq purge``) is covered, in the transaction of the
event, and no write method changes. Two triggers ``AFTER INSERT ON events``:
- ``tr_events_in_flight`` (an event of another state: ``received``, ``transformed``, ``failed``,
  ``redelivered``, ``replayed``, ``aggregated``): inserts the message's row, ignored when there (one probe
  of the message's key and one of the small table's);
- ``tr_events_in_flight_settled`` (a settled state): deletes the message's row (one probe of the small
  table's key; a fan-out's deliveries to each endpoint probe it again for nothing).
So a replayed message, or one that fails after a delivery to one endpoint of a fan-out, is back in
flight. Pruning a message deletes its row (``ON DELETE CASCADE``; on a partitioned PostgreSQL journal
:func:`esb.journal.partitions.drop` deletes the partition's rows first, as for ``dead_letters``).

The upgrade fills the table from the whole journal (every message row with a body, its latest event
read by one probe of ``events``' message index: 1 M messages in seconds, figures in docs/journal.md
"Migrations"): the table then means the same thing for every row, whatever its age, and a message that
never ended long ago is reported rather than forgotten. The downgrade drops the triggers and the table.

Revision ID: 0016_in_flight
Revises: 0015_route_minutes
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_in_flight"
down_revision = "0015_route_minutes"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: The states after which a message is not in flight (written out: a migration does not follow the code).
_SETTLED_STATES = ("delivered", "filtered", "dead_lettered", "purged")
_SETTLED = "(" + ", ".join(f"'{state}'" for state in _SETTLED_STATES) + ")"
#: The triggers' conditions as comparisons, not ``IN (...)``: SQLite builds an ephemeral table for an ``IN``
#: list of more than two values on every run of a trigger's program (two pages zeroed each time: +8.7 %
#: instructions per message on the hot path, bench/README.md "The in-flight table").
_IS_SETTLED = " OR ".join(f"NEW.state = '{state}'" for state in _SETTLED_STATES)
_NOT_SETTLED = " AND ".join(f"NEW.state <> '{state}'" for state in _SETTLED_STATES)
_INTO = "INTO in_flight (message_seq, route, received_at)"
_COPY = (
    "SELECT m.seq, m.route, m.received_at FROM messages AS m"
    " WHERE m.seq = NEW.message_seq AND m.body IS NOT NULL"
)
_REMOVE = "DELETE FROM in_flight WHERE message_seq = NEW.message_seq"
_LATEST = "(SELECT e.state FROM events AS e WHERE e.message_seq = m.seq ORDER BY e.id DESC LIMIT 1)"
_FILL = (
    f"INSERT {_INTO} SELECT m.seq, m.route, m.received_at FROM messages AS m"  # noqa: S608 - constants
    f" WHERE m.body IS NOT NULL AND {_LATEST} NOT IN {_SETTLED}"
)
_SQLITE_TRIGGERS = (
    f"""
CREATE TRIGGER tr_events_in_flight AFTER INSERT ON events
WHEN {_NOT_SETTLED}
BEGIN
    INSERT OR IGNORE {_INTO} {_COPY};
END
""",
    f"""
CREATE TRIGGER tr_events_in_flight_settled AFTER INSERT ON events
WHEN {_IS_SETTLED}
BEGIN
    {_REMOVE};
END
""",
)
#: On PostgreSQL the triggers run once per statement over its transition table (the journal writes a
#: batch's events in one statement): per message, its last event of the statement decides. A row-level
#: trigger there cost ~45 µs of server CPU a message (bench/journal_pg_batch.py: 165-180 -> 235-245 µs).
_PG_LAST = (
    "(SELECT DISTINCT ON (message_seq) message_seq, state FROM new_events"
    " ORDER BY message_seq, id DESC) AS last"
)
_PG_IS_SETTLED = " OR ".join(f"last.state = '{state}'" for state in _SETTLED_STATES)
_PG_NOT_SETTLED = " AND ".join(f"last.state <> '{state}'" for state in _SETTLED_STATES)
_PG_ADD = (
    f"INSERT {_INTO} SELECT m.seq, m.route, m.received_at FROM {_PG_LAST}"  # noqa: S608 - constants
    f" JOIN messages AS m ON m.seq = last.message_seq WHERE ({_PG_NOT_SETTLED}) AND m.body IS NOT NULL"
    " ON CONFLICT DO NOTHING"
)
_PG_REMOVE = (
    f"DELETE FROM in_flight AS f USING {_PG_LAST}"  # noqa: S608 - constants
    f" WHERE f.message_seq = last.message_seq AND ({_PG_IS_SETTLED})"
)
_PG_FUNCTIONS = (
    f"""
CREATE FUNCTION esb_in_flight_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_PG_ADD};
    RETURN NULL;
END
$$
""",
    f"""
CREATE FUNCTION esb_in_flight_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_PG_REMOVE};
    RETURN NULL;
END
$$
""",
)
_PG_TRIGGERS = (
    "CREATE TRIGGER tr_events_in_flight AFTER INSERT ON events REFERENCING NEW TABLE AS new_events"
    " FOR EACH STATEMENT EXECUTE FUNCTION esb_in_flight_add()",
    "CREATE TRIGGER tr_events_in_flight_settled AFTER INSERT ON events REFERENCING NEW TABLE AS new_events"
    " FOR EACH STATEMENT EXECUTE FUNCTION esb_in_flight_settled()",
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Create ``in_flight``, fill it from the whole journal, index it, add the two triggers."""
    op.create_table(
        "in_flight",
        sa.Column("message_seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_seq"], ["messages.seq"], name="fk_in_flight_message", ondelete="CASCADE"
        ),
    )
    op.execute(_FILL)
    op.create_index("ix_in_flight_received_at", "in_flight", ["received_at", "route", "message_seq"])
    for statement in (*_PG_FUNCTIONS, *_PG_TRIGGERS) if _postgres() else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    """Drop the triggers and ``in_flight`` (the events are untouched)."""
    on = " ON events" if _postgres() else ""
    op.execute(f"DROP TRIGGER IF EXISTS tr_events_in_flight_settled{on}")
    op.execute(f"DROP TRIGGER IF EXISTS tr_events_in_flight{on}")
    if _postgres():
        op.execute("DROP FUNCTION IF EXISTS esb_in_flight_settled()")
        op.execute("DROP FUNCTION IF EXISTS esb_in_flight_add()")
    op.drop_index("ix_in_flight_received_at", table_name="in_flight")
    op.drop_table("in_flight")
