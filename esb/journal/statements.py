"""The journal's write statements, built once per dialect (the hot path only binds parameters)."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from esb.exceptions import ConfigError
from esb.journal.schema import FINAL_STATES, business_keys, events, messages

SUPPORTED = ("sqlite", "postgresql")


def insert_ignore(dialect: str, table: sa.Table) -> Any:
    """Return ``INSERT ... ON CONFLICT DO NOTHING`` for ``table`` in ``dialect``."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    raise ConfigError(f"journal: unsupported database {dialect!r} (use one of {', '.join(SUPPORTED)})")


def seq_of(message_id: Any, route: Any) -> Any:
    """Return the scalar subquery of the ``seq`` of the row of ``message_id`` on ``route``."""
    return (
        sa.select(messages.c.seq)
        .where(messages.c.id == message_id, messages.c.route == route)
        .scalar_subquery()
    )


def existing_ids(dialect: str) -> Any:
    """Return the query of ``(id, seq)`` of the rows of ``:r`` whose id is in the list ``:ids``, with the
    whole list as **one** parameter: an array (``= ANY``) on PostgreSQL, a JSON array read by
    ``json_each`` on SQLite.

    An expanding ``IN`` of a batch's 200 ids rendered a new SQL text of 200 placeholders on every call:
    SQLAlchemy re-rendered it, psycopg re-parsed it (its query cache skips long texts), SQLite prepared it
    again. One parameter makes it one statement, compiled and prepared once (``bench/README.md``, "The
    journal's write path"); ``tests/unit/test_journal.py`` compares it with the expanding ``IN``.
    """
    if dialect == "postgresql":
        wanted: Any = messages.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String)))
    else:
        listed = sa.select(sa.column("value", sa.String)).select_from(
            sa.func.json_each(sa.bindparam("ids", type_=sa.JSON))
        )
        wanted = messages.c.id.in_(listed)
    return sa.select(messages.c.id, messages.c.seq).where(messages.c.route == sa.bindparam("r"), wanted)


def final_state() -> Any:
    """Return the query of the last final (or ``replayed``) state of ``:mid`` on ``:r``.

    A delivery to one endpoint of a fan-out does not end the route; the route-level event does.
    """
    return (
        sa.select(events.c.state)
        .where(
            events.c.message_seq == seq_of(sa.bindparam("mid"), sa.bindparam("r")),
            events.c.state.in_([*FINAL_STATES, "replayed"]),
            sa.or_(events.c.endpoint.is_(None), events.c.state != "delivered"),
        )
        .order_by(events.c.id.desc())
        .limit(1)
    )


@dataclasses.dataclass(frozen=True)
class Statements:
    """Prepared statements for one dialect."""

    add_message: Any
    add_new_message: Any
    add_event: Any
    add_keys: Any
    add_keys_of_id: Any
    bump_delivery_count: Any
    final_state: Any
    was_delivered: Any
    existing: Any
    seq: Any

    @classmethod
    def build(cls, dialect: str) -> Statements:
        """Build every statement for ``dialect``."""
        dc = sa.bindparam("dc", type_=sa.Integer)
        bumped = sa.case((messages.c.delivery_count + 1 < dc, dc), else_=messages.c.delivery_count + 1)
        return cls(
            add_message=insert_ignore(dialect, messages),
            # the new row's seq, or no row when it was there already
            add_new_message=insert_ignore(dialect, messages).returning(messages.c.seq),
            add_event=sa.insert(events),
            add_keys=insert_ignore(dialect, business_keys),
            add_keys_of_id=insert_ignore(dialect, business_keys).from_select(
                ["message_seq", "name", "value"],
                sa.select(
                    messages.c.seq,
                    sa.bindparam("name", type_=sa.String),
                    sa.bindparam("value", type_=sa.String),
                ).where(messages.c.id == sa.bindparam("mid")),
            ),
            bump_delivery_count=sa.update(messages)
            .where(messages.c.id == sa.bindparam("mid"), messages.c.route == sa.bindparam("r"))
            .values(delivery_count=bumped)
            .returning(messages.c.seq, messages.c.delivery_count),
            final_state=final_state(),
            existing=existing_ids(dialect),
            seq=sa.select(messages.c.seq).where(
                messages.c.id == sa.bindparam("mid"), messages.c.route == sa.bindparam("r")
            ),
            was_delivered=sa.select(sa.literal(1)).where(
                events.c.message_seq == seq_of(sa.bindparam("mid"), sa.bindparam("r")),
                events.c.state == "delivered",
                events.c.endpoint == sa.bindparam("ep"),
            ).limit(1),
        )
