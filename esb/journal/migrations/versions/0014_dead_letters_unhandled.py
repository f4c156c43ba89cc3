"""``dead_letters`` holds the unhandled dead letters only: a later event of the message row removes it.

Until 0013 ``dead_letters`` (0011) held every message row *ever* dead-lettered, so a selection by state
``dead_lettered`` (``esb replay --state dead_lettered``, ``esb dlq``'s count) still read each candidate's
latest event, and its message row, from cold pages: 0.1-0.4 s for a day's 1,000 dead letters at 10 M
messages on PostgreSQL, 21-26 s to count a route's 100,000 (bench/README.md "PostgreSQL at 10 M,
partitioned"). Now the table answers it alone: a row is there exactly while the message row's latest
event is ``dead_lettered``.

Kept by the database, as in 0011: a second trigger ``AFTER INSERT ON events`` for the rows whose state is
not ``dead_lettered`` deletes the message row's entry (one probe of the small table's primary key; a
replayed, delivered or purged message leaves it). A message dead-lettered again is added again by 0011's
trigger. The upgrade deletes the entries whose latest event is another state (each entry's latest
event: one probe of ``events``' primary key or message index per dead letter, seconds at 10 M; figures
in docs/journal.md "Migrations"). The downgrade puts the handled ones back from their dead-letter events
(0011's statement) and drops the trigger.

Revision ID: 0014_dead_letters_unhandled
Revises: 0013_events_id_bigint
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0014_dead_letters_unhandled"
down_revision = "0013_events_id_bigint"
branch_labels = None
depends_on = None

_LATEST = (
    "(SELECT e.state FROM events AS e WHERE e.message_seq = dead_letters.message_seq"
    " ORDER BY e.id DESC LIMIT 1)"
)
_PRUNE = f"DELETE FROM dead_letters WHERE {_LATEST} IS DISTINCT FROM 'dead_lettered'"  # noqa: S608
_SQLITE_PRUNE = f"DELETE FROM dead_letters WHERE {_LATEST} IS NOT 'dead_lettered'"  # noqa: S608
_REMOVE = "DELETE FROM dead_letters WHERE message_seq = NEW.message_seq"
_SQLITE_TRIGGER = f"""
CREATE TRIGGER tr_events_dead_letters_handled AFTER INSERT ON events
WHEN NEW.state <> 'dead_lettered'
BEGIN
    {_REMOVE};
END
"""
_PG_FUNCTION = f"""
CREATE FUNCTION esb_dead_letters_handled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_REMOVE};
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = (
    "CREATE TRIGGER tr_events_dead_letters_handled AFTER INSERT ON events FOR EACH ROW"
    " WHEN (NEW.state <> 'dead_lettered') EXECUTE FUNCTION esb_dead_letters_handled()"
)
#: 0011's fill: every message row ever dead-lettered (the downgrade puts the handled ones back).
_REFILL = (
    "INSERT INTO dead_letters (message_seq, route, received_at)"
    " SELECT DISTINCT m.seq, m.route, m.received_at FROM events AS e"
    " JOIN messages AS m ON m.seq = e.message_seq WHERE e.state = 'dead_lettered'"
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Delete the handled entries and add the trigger that removes an entry on a later event."""
    if _postgres():
        op.execute(_PRUNE)
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_PRUNE)
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    """Drop the trigger and put back every message row ever dead-lettered (0011's meaning)."""
    if _postgres():
        op.execute("DROP TRIGGER IF EXISTS tr_events_dead_letters_handled ON events")
        op.execute("DROP FUNCTION IF EXISTS esb_dead_letters_handled()")
        op.execute(_REFILL + " ON CONFLICT DO NOTHING")
    else:
        op.execute("DROP TRIGGER IF EXISTS tr_events_dead_letters_handled")
        op.execute(_REFILL.replace("INSERT INTO", "INSERT OR IGNORE INTO"))
