"""The engine's hot statements, built once per dialect when the store connects (a step only binds).

As the journal's :mod:`esb.journal.statements`: a statement built once keeps its SQLAlchemy cache key,
so executing it binds parameters instead of building a Core expression and its key on every step.

- ``claim``: one ``UPDATE ... WHERE id = (the earliest due, free instance) RETURNING`` the row: the
  lease and ``fence = fence + 1`` are taken and the row is read in one statement (on PostgreSQL the
  subquery is ``FOR UPDATE SKIP LOCKED``).
- ``guard`` / ``guard_data``: the fenced write of a lease holder, ``UPDATE ... WHERE id = :iid AND fence
  = :ifence RETURNING`` the row as written (``guard_data`` with ``data``, for a write that changed it);
  the columns set are the parameters' keys. Both return ``cancel_waiting``: whether a cancel request
  waits in the inbox for the instance, seen under the write's lock, so the runner looks for one only
  when there is one.
- ``close_waiting`` and ``bury_ended``: what an end writes besides the instance: its open waits closed,
  and every reply still waiting for one of its business keys (or its id) marked dead, in one
  ``UPDATE`` each.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from esb.journal.statements import insert_ignore
from esb.process.engine.tables import process_inbox, process_instances, process_keys, process_steps

#: A step row that still waits (a wait or an await); ``closed``: one left open when its instance ended.
WAITING, CLOSED = "waiting", "closed"

#: The reply name of a cancel request in the inbox.
CANCEL = "esb.cancel"
#: Statuses of an instance a runner may advance (when due).
LIVE = ("running", "compensating", "cancelling", "alert")


def cancel_waiting() -> Any:
    """``EXISTS`` a waiting cancel request for the instance of the enclosing statement, as ``cancel_waiting``.

    The instance's columns are named with their table: SQLite writes a ``RETURNING`` clause's columns
    unqualified, which inside the subquery would name the inbox's own.
    """
    i = process_inbox.c
    return (
        sa.exists()
        .where(
            i.process == sa.literal_column("process_instances.process"),
            i.correlation_key == sa.literal_column("process_instances.id"),
            i.reply_name == CANCEL,
            i.status == "waiting",
        )
        .label("cancel_waiting")
    )


@dataclass(frozen=True)
class EngineStatements:
    """The engine's fixed statements for one dialect."""

    dialect: str
    claim: Any
    guard: Any
    guard_data: Any
    read: Any
    add_step: Any
    add_keys: Any
    close_waiting: Any
    bury_ended: Any

    @classmethod
    def build(cls, dialect: str) -> EngineStatements:
        """Build every statement for ``dialect`` (``sqlite`` or ``postgresql``)."""
        t, i = process_instances, process_inbox.c
        now = sa.bindparam("now", type_=t.c.lease_until.type)
        free = sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now)
        due = (
            sa.select(t.c.id)
            .where(t.c.status.in_(LIVE), t.c.wake_at <= now, free)
            .order_by(t.c.wake_at)
            .limit(1)
        )
        if dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        row = [c for c in t.c]
        lean = [c for c in t.c if c.name != "data"]
        fenced = sa.update(t).where(t.c.id == sa.bindparam("iid"), t.c.fence == sa.bindparam("ifence"))
        return cls(
            dialect=dialect,
            claim=sa.update(t)
            .where(t.c.id == due.scalar_subquery(), free)
            .values(
                lease_owner=sa.bindparam("owner", type_=t.c.lease_owner.type),
                lease_until=sa.bindparam("until", type_=t.c.lease_until.type),
                fence=t.c.fence + 1,
            )
            .returning(*row, cancel_waiting()),
            guard=fenced.returning(*lean, cancel_waiting()),
            guard_data=fenced.returning(*row, cancel_waiting()),
            read=sa.select(*row, cancel_waiting()).where(t.c.id == sa.bindparam("iid")),
            add_step=sa.insert(process_steps),
            add_keys=insert_ignore(dialect, process_keys),
            close_waiting=sa.update(process_steps)
            .where(process_steps.c.instance_id == sa.bindparam("iid"), process_steps.c.state == WAITING)
            .values(state=CLOSED, ended_at=sa.bindparam("closed_at"), error=sa.bindparam("why")),
            bury_ended=sa.update(process_inbox)
            .where(
                i.process == sa.bindparam("pname"),
                i.status == "waiting",
                i.reply_name != CANCEL,
                sa.or_(
                    i.correlation_key.in_(
                        sa.select(process_keys.c.value).where(
                            process_keys.c.instance_id == sa.bindparam("iid")
                        )
                    ),
                    i.correlation_key == sa.bindparam("iid"),
                ),
            )
            .values(status="dead", reason=sa.bindparam("why")),
        )


@functools.cache
def for_dialect(dialect: str) -> EngineStatements:
    """The statements of ``dialect``, built on first use (they depend on nothing else)."""
    return EngineStatements.build(dialect)


def of(conn: sa.Connection) -> EngineStatements:
    """The statements for ``conn``'s database."""
    return for_dialect(conn.dialect.name)
