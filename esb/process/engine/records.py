"""Small pieces the runner shares: the instance view for expressions, business keys, step rows, backoff."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.expressions import Expression
from esb.message import utcnow
from esb.process.definition import Process
from esb.process.engine import statements
from esb.process.engine.tables import process_steps
from esb.process.steps import Retry
from esb.processors.routing import set_path

#: Step row states (``closed``: a wait left open when its instance was cancelled or failed).
DONE, FAILED, TIMED_OUT = "done", "failed", "timed_out"
WAITING, CLOSED = statements.WAITING, statements.CLOSED


def view(data: Any, keys: dict[str, str], state: str) -> dict[str, Any]:
    """The instance as expressions see it: ``{data, keys, state, item}``."""
    return {"data": data, "keys": keys, "state": state, "item": None}


def key_values(process: Process, data: Any, state: str) -> dict[str, tuple[str, ...]]:
    """Evaluate the process's business keys over the instance: every value of each (a key whose
    expression gives a list has one value per element, e.g. each component's MSISDN); keys without a
    value yet are left out."""
    found: dict[str, tuple[str, ...]] = {}
    for name, text in process.business_keys.items():
        value = Expression(text, f"business_keys.{name}").search(view(data, {}, state))
        values = value if isinstance(value, list) else [value]
        kept = tuple(dict.fromkeys(str(v) for v in values if _scalar(v)))
        if kept:
            found[name] = kept
    return found


def _scalar(value: Any) -> bool:
    return value is not None and value != "" and not isinstance(value, list | dict)


def business_keys(process: Process, data: Any, state: str) -> dict[str, str]:
    """The business keys a request transform reads (``keys``): the first value of each."""
    return {name: values[0] for name, values in key_values(process, data, state).items()}


def record_keys(
    conn: sa.Connection, process: str, instance_id: str, keys: dict[str, tuple[str, ...]]
) -> None:
    """Add the instance's business key values that are not recorded yet (a reply may bring one).

    One ``INSERT ... ON CONFLICT DO NOTHING``: a value recorded before is left as it is.
    """
    rows = [
        {"process": process, "name": n, "value": v, "instance_id": instance_id}
        for n, values in keys.items()
        for v in values
    ]
    if rows:
        conn.execute(statements.of(conn).add_keys, rows)


def add_step(
    conn: sa.Connection,
    instance_id: str,
    path: str,
    state: str,
    *,
    attempt: int = 1,
    key: str | None = None,
    result: Any = None,
    error: str | None = None,
    deadline: datetime | None = None,
    started: datetime | None = None,
) -> None:
    """Insert one step row (an attempt of a step or an undo)."""
    now = utcnow()
    conn.execute(
        statements.of(conn).add_step,
        {
            "instance_id": instance_id,
            "path": path,
            "attempt": attempt,
            "state": state,
            "idempotency_key": key,
            "result": result,
            "error": error,
            "deadline": deadline,
            "started_at": started or now,
            "ended_at": None if state == WAITING else now,
        },
    )


def open_step(conn: sa.Connection, instance_id: str, path: str) -> Any:
    """Return the step row of ``path`` that still waits (a wait or an await), or None."""
    s = process_steps.c
    return conn.execute(
        sa.select(process_steps)
        .where(s.instance_id == instance_id, s.path == path, s.state == WAITING)
        .order_by(s.id.desc())
        .limit(1)
    ).first()


def close_step(
    conn: sa.Connection, row_id: int, state: str, *, result: Any = None, error: str | None = None
) -> None:
    """End a waiting step row."""
    conn.execute(
        process_steps.update()
        .where(process_steps.c.id == row_id)
        .values(state=state, result=result, error=error, ended_at=utcnow())
    )


def count_steps(conn: sa.Connection, instance_id: str, path: str, state: str) -> int:
    """How many rows of ``path`` are in ``state`` (the attempts spent, the timeouts seen)."""
    s = process_steps.c
    query = sa.select(sa.func.count()).where(s.instance_id == instance_id, s.path == path, s.state == state)
    return int(conn.execute(query).scalar_one())


def backoff(retry: Retry, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
    if retry.backoff == "fixed":
        return min(retry.initial, retry.max_delay)
    return float(min(retry.initial * 2 ** (attempt - 1), retry.max_delay))


def with_value(data: Any, into: str, value: Any) -> Any:
    """Return a copy of ``data`` with ``value`` at the dotted path ``into``."""
    copied = copy.deepcopy(data) if isinstance(data, dict) else {}
    set_path(copied, into, value)
    return copied
