"""PostgreSQL: the batched path writes its look-up, in-flight and dead-letter rows; the triggers skip it.

The design is in esb/journal/pgrows.py; the function and the clause below are frozen from it as of
2026-12-07. On SQLite this revision does nothing.

Upgrade adds ``journal_lookup_stale(seq)`` (the batched insert's test for a ``lookup_ids`` entry whose
message is gone) and creates again, with a ``WHEN`` clause that skips a transaction which set
``esb.journal_rows`` to ``written``, five insert triggers: ``journal_unique_id`` (row-level, on
``messages``, 0017), ``journal_lookup_keys_add`` (statement-level, on ``business_keys``, 0017),
``tr_events_in_flight`` and ``tr_events_in_flight_settled`` (statement-level, on ``events``, 0016) and
``tr_events_dead_letters_handled`` (row-level, on ``events``, 0014). Their functions, 0011's trigger
adding a dead letter, the delete triggers and every row are unchanged: the catalog alone changes (each
``DROP``/``CREATE TRIGGER`` takes a short exclusive lock on its table and its partitions).

Downgrade creates the five triggers again without the clause and drops the function.

Revision ID: 0019_journal_rows_written
Revises: 0018_dead_letters_message_id
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0019_journal_rows_written"
down_revision = "0018_dead_letters_message_id"
branch_labels = None
depends_on = None

#: True when the ``lookup_ids`` entry of a message row ``known`` has no row (a stale entry, taken over).
_STALE_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_lookup_stale(known bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM messages WHERE seq = known);
END $$
"""
#: The triggers' ``WHEN`` clause: they run unless the transaction set ``esb.journal_rows`` to ``written``.
_UNLESS_WRITTEN = "current_setting('esb.journal_rows', true) IS DISTINCT FROM 'written'"

#: name -> (table, "BEFORE/AFTER INSERT", what comes before the WHEN clause, function).
_TRIGGERS = {
    "journal_unique_id": ("messages", "BEFORE INSERT", "FOR EACH ROW", "journal_unique_id"),
    "journal_lookup_keys_add": (
        "business_keys",
        "AFTER INSERT",
        "REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT",
        "journal_lookup_keys_add",
    ),
    "tr_events_in_flight": (
        "events",
        "AFTER INSERT",
        "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT",
        "esb_in_flight_add",
    ),
    "tr_events_in_flight_settled": (
        "events",
        "AFTER INSERT",
        "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT",
        "esb_in_flight_settled",
    ),
}


#: 0014's row trigger on events, and its own condition.
_HANDLED = ("tr_events_dead_letters_handled", "esb_dead_letters_handled", "NEW.state <> 'dead_lettered'")


def _recreate(unless: str | None) -> None:
    """Create the triggers again, skipping the transactions where ``unless`` is false (None: none)."""
    for name, (table, timing, level, function) in _TRIGGERS.items():
        when = f" WHEN ({unless})" if unless else ""
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"CREATE TRIGGER {name} {timing} ON {table} {level}{when} EXECUTE FUNCTION {function}()")
    name, function, condition = _HANDLED
    when = f"{condition} AND {unless}" if unless else condition
    op.execute(f"DROP TRIGGER {name} ON events")
    op.execute(
        f"CREATE TRIGGER {name} AFTER INSERT ON events FOR EACH ROW WHEN ({when})"
        f" EXECUTE FUNCTION {function}()"
    )


def upgrade() -> None:
    """The stale-entry function; the insert triggers again, skipping the transactions that write the rows."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_STALE_FUNCTION)
    _recreate(_UNLESS_WRITTEN)


def downgrade() -> None:
    """The insert triggers again for every transaction; drop the function."""
    if op.get_bind().dialect.name != "postgresql":
        return
    _recreate(None)
    op.execute("DROP FUNCTION journal_lookup_stale(bigint)")
