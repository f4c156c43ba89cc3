"""PostgreSQL: the batched path writes the look-up, in-flight and dead-letter rows itself (migration 0019).

``lookup_ids``, ``lookup_keys`` (esb/journal/lookups.py), ``in_flight`` (migration 0016) and
``dead_letters`` (0011, 0014) are kept by triggers for every writer. On the route's hot path two of them
ran a plpgsql call per row (``journal_unique_id`` per message row, 0014's ``esb_dead_letters_handled``
per event: 3 a message on the CRM-order route) and three read their statement's transition table back
and joined it with ``messages``. The batched path (esb/journal/batched.py) knows what those triggers
work out, so on PostgreSQL its transactions write the rows themselves and say so first (:func:`claim`: a
transaction-local setting); the triggers have a ``WHEN`` clause (:data:`UNLESS_WRITTEN`) that skips them in
such a transaction. Every other writer (the per-message path, replay, the process journal, ``esb dlq
purge``, the partition moves, the prune's put-back) does not claim, so the triggers keep the tables for it
as before. 0011's trigger adding a dead letter (rare) and the delete triggers always run.

What each statement does, as the trigger it stands for:

- message rows (:func:`messages_sql`): each row's seq is drawn first (``journal_next_seq()`` as an
  expression: its plpgsql call for a day's first seqs only), its ``lookup_ids`` entry inserted, and the
  row inserted only when the entry was: the unique index arbitrates two writers of one id (the second
  waits for the first's transaction) as the trigger's insert did. An entry whose message is gone (its
  partition dropped, the entry not yet forgotten) is taken over (``ON CONFLICT DO UPDATE ... WHERE``
  :data:`STALE_FUNCTION`: a volatile function, so it sees the rows committed while the statement waited,
  as the trigger's queries did). The arrivals' rows with a body go into ``in_flight`` in the same
  statement (their ``received`` event follows in the transaction).
- business keys (:func:`keys_sql`): the rows the insert added (``RETURNING``, what the transition table
  held) go into ``lookup_keys``.
- events (:func:`follow_events`): per message, its last event of the batch decides, as the in-flight
  triggers' ``DISTINCT ON`` did: a settled state deletes its ``in_flight`` row, any other adds it (a
  message with a body; ignored when there); any state but ``dead_lettered`` deletes its ``dead_letters``
  row (0014's trigger deleted it on each such event; a later ``dead_lettered`` one adds it back, so the
  last decides there too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from esb.journal.constants import SETTLED_STATES
from esb.journal.partitions import PER_DAY
from esb.journal.pgarrays import parameter

#: The transaction-local setting by which a transaction says it writes these rows itself.
SETTING = "esb.journal_rows"
WRITTEN = "written"
#: The triggers' ``WHEN`` clause (migration 0019): they run unless the transaction claimed the rows.
UNLESS_WRITTEN = f"current_setting('{SETTING}', true) IS DISTINCT FROM '{WRITTEN}'"
_CLAIM = f"SELECT set_config('{SETTING}', '{WRITTEN}', true)"

#: True when the ``lookup_ids`` entry of a message row ``known`` has no row (a stale entry, taken over).
STALE_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_lookup_stale(known bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM messages WHERE seq = known);
END $$
"""

#: The first seq of today's block, as ``journal_next_seq()`` (esb/journal/partitions.py) computes it.
_DAY_FLOOR = f"((now() AT TIME ZONE 'UTC')::date - DATE '1970-01-01')::bigint * {PER_DAY}"
_ADD_IN_FLIGHT = (
    "INSERT INTO in_flight (message_seq, route, received_at)"
    " SELECT seq, route, received_at FROM messages"
    " WHERE seq = ANY(%(seqs)b::BIGINT[]) AND body IS NOT NULL ON CONFLICT DO NOTHING"
)
#: The settled messages out of flight, the handled dead letters out of ``dead_letters``: one statement.
_REMOVE = (
    "WITH landed AS (DELETE FROM in_flight WHERE message_seq = ANY(%(settled)b::BIGINT[]))"
    " DELETE FROM dead_letters WHERE message_seq = ANY(%(handled)b::BIGINT[])"
)


def claim(conn: sa.Connection) -> None:
    """Say that ``conn``'s transaction writes the look-up and in-flight rows itself (the triggers skip it)."""
    conn.exec_driver_sql(_CLAIM)


def messages_sql(unnest: str, columns: Sequence[str], *, ignore: bool, in_flight: bool) -> str:
    """The insert of message rows from ``unnest`` (``unnest(...)`` of one array per column of ``columns``,
    ``seq`` not among them) with their ``lookup_ids`` entries, returning ``(id, seq)`` of each row added.

    ``ignore``: a row whose ``(id, route)`` its partition holds already is skipped (``ON CONFLICT DO
    NOTHING``); ``in_flight``: the rows with a body get their ``in_flight`` row. The ids must be distinct
    (``ON CONFLICT DO UPDATE`` touches a row once a statement): the batched path's are.
    """
    listed = ", ".join(f'"{name}"' for name in columns)
    taken = ", ".join(f'input."{name}"' for name in columns)
    conflict = " ON CONFLICT DO NOTHING" if ignore else ""
    flight = (
        ", flight AS (INSERT INTO in_flight (message_seq, route, received_at)"
        " SELECT seq, route, received_at FROM added WHERE kept ON CONFLICT DO NOTHING)"
        if in_flight
        else ""
    )
    drawn = f"SELECT nextval('messages_seq_seq') AS drawn, u.* FROM {unnest} AS u({listed})"  # noqa: S608
    return (
        # journal_next_seq() as an expression: its plpgsql call only for a day's first seqs (the jump)
        f"WITH input AS MATERIALIZED (SELECT CASE WHEN d.drawn >= {_DAY_FLOOR} THEN d.drawn"  # noqa: S608
        f" ELSE journal_next_seq() END AS seq, d.* FROM ({drawn}) AS d),"
        " ids AS (INSERT INTO lookup_ids (id, route, seq) SELECT id, route, seq FROM input"
        " ON CONFLICT (id, route) DO UPDATE SET seq = EXCLUDED.seq WHERE journal_lookup_stale(lookup_ids.seq)"
        " RETURNING seq),"
        f" added AS (INSERT INTO messages (seq, {listed}) SELECT input.seq, {taken}"
        f" FROM input JOIN ids ON ids.seq = input.seq{conflict}"
        " RETURNING id, seq, route, received_at, body IS NOT NULL AS kept)"
        f"{flight} SELECT id, seq FROM added"
    )


def keys_sql(unnest: str) -> str:
    """The insert of business-key rows ``(message_seq, name, value)`` from ``unnest``, repeats ignored, with
    the ``lookup_keys`` row of each key row added."""
    return (
        "WITH added AS (INSERT INTO business_keys (message_seq, name, value)"  # noqa: S608 - no input
        f" SELECT * FROM {unnest} ON CONFLICT DO NOTHING RETURNING message_seq, name, value)"
        " INSERT INTO lookup_keys (value, name, seq) SELECT value, name, message_seq FROM added"
        " ON CONFLICT DO NOTHING"
    )


def follow_events(conn: sa.Connection, events: Iterable[tuple[int, str]]) -> None:
    """Bring ``in_flight`` and ``dead_letters`` up to the ``(message seq, state)`` events just written, in
    their order: per message its last state decides. Settled: out of flight; any other: in flight when it
    has a body (ignored when there). Not ``dead_lettered``: its dead letter is handled (0014's trigger);
    a ``dead_lettered`` one is added by 0011's row trigger, which stays (it is rare)."""
    last = dict(events)
    if not last:
        return
    settled = [seq for seq, state in last.items() if state in SETTLED_STATES]
    handled = [seq for seq, state in last.items() if state != "dead_lettered"]
    if settled or handled:
        removed = {"settled": parameter(conn, "int8", settled), "handled": parameter(conn, "int8", handled)}
        conn.exec_driver_sql(_REMOVE, removed)
    flying = [seq for seq, state in last.items() if state not in SETTLED_STATES]
    if flying:
        conn.exec_driver_sql(_ADD_IN_FLIGHT, {"seqs": parameter(conn, "int8", flying)})
