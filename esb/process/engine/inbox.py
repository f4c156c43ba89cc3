"""The inbox: replies and cancel requests, stored before any step waits for them.

:func:`deliver_reply` is what a route worker or an endpoint reader calls with a reply it received: the
reply is stored (once per message id) and the instance it is for is woken. A reply that cannot be
applied any more -- its instance ended, the await it answers already closed, no instance has the key
-- is stored **dead** with why, in the same transaction that checked it, and never applied.
:func:`request_cancel` decides a cancel request against the instance's ``on_cancel`` and, when
accepted, leaves it in the inbox for the instance's runner, which undoes the done steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.expressions import Expression
from esb.message import Message, utcnow
from esb.process.definition import Process, walk
from esb.process.engine.statements import CANCEL
from esb.process.engine.store import ENDED, ProcessStore
from esb.process.engine.tables import (
    process_branches,
    process_inbox,
    process_instances,
    process_keys,
    process_steps,
)
from esb.process.steps import AwaitStep

__all__ = [
    "CANCEL",
    "CancelAnswer",
    "accepts",
    "bury",
    "deliver_reply",
    "request_cancel",
    "take_reply",
    "wake",
]


def to_row(message: Message) -> dict[str, Any]:
    """Return the JSON form of ``message`` kept in the inbox."""
    body = message.body
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "backslashreplace")
    return {
        "id": message.id,
        "correlation_id": message.correlation_id,
        "type": message.type,
        "source": message.source,
        "headers": message.headers,
        "body": body,
    }


def from_row(row: dict[str, Any]) -> Message:
    """Return the message kept by :func:`to_row`."""
    return Message(
        body=row.get("body"),
        id=row["id"],
        correlation_id=row.get("correlation_id") or "",
        type=row.get("type"),
        source=row.get("source"),
        headers=dict(row.get("headers") or {}),
    )


def accepts(step: AwaitStep, message: Message) -> bool:
    """True when ``message`` is of the await's ``type`` and passes its ``when``."""
    spec = step.await_
    if spec.type is not None and message.type != spec.type:
        return False
    return spec.when is None or Expression(spec.when, f"{step.name}.await.when").truthy(message)


def _instances_with(conn: sa.Connection, process: str, value: str, name: str | None = None) -> list[str]:
    k = process_keys.c
    query = sa.select(k.instance_id).where(k.process == process, k.value == value)
    if name is not None:
        query = query.where(k.name == name)
    return sorted({row.instance_id for row in conn.execute(query)})


def _store(
    conn: sa.Connection,
    process: str,
    key: str,
    reply_name: str,
    message: Message,
    status: str,
    reason: str | None,
) -> None:
    conn.execute(
        process_inbox.insert().values(
            process=process,
            correlation_key=key,
            reply_name=reply_name,
            message_id=message.id,
            message=to_row(message),
            received_at=utcnow(),
            status=status,
            reason=reason,
        )
    )


def deliver_reply(
    store: ProcessStore,
    process: str,
    key: str,
    reply_name: str,
    message: Message,
    *,
    now: datetime | None = None,
) -> str:
    """Store a reply for the instance of ``process`` whose business key equals ``key``; wake it.

    ``reply_name`` is the endpoint the reply came on (an await's ``from``). Returns ``waiting`` (kept
    for the await), ``dead`` (kept, never applied; see the row's ``reason``) or ``duplicate`` (this
    message id was delivered before: nothing changes). ``now``: the time the instance is woken at.
    """
    now = now or utcnow()
    with store.errors("deliver reply"), store.engine.begin() as conn:
        seen = conn.execute(
            sa.select(process_inbox.c.id).where(process_inbox.c.message_id == message.id)
        ).first()
        if seen is not None:
            return "duplicate"
        status, wake = "dead", None
        reason: str | None = f"no instance of {process!r} has a business key equal to {key!r}"
        for instance_id in _instances_with(conn, process, key):
            row = store.instance(conn, instance_id, lock=True)
            verdict = _verdict(store, conn, row, reply_name, message)
            status, reason = ("waiting", None) if verdict is None else ("dead", verdict)
            if verdict is None:
                wake = row
                break
        _store(conn, process, key, reply_name, message, status, reason)
        if wake is not None:
            _wake(conn, wake, now)
        return status


def wake(store: ProcessStore, instance_ids: list[str], now: datetime | None = None) -> None:
    """Make the running instances ``instance_ids`` and their timed branches due at ``now``.

    Whoever calls it only makes instances due sooner (the lease holder's writes are not touched).
    """
    if not instance_ids:
        return
    now = now or utcnow()
    t, b = process_instances.c, process_branches.c
    with store.errors("wake"), store.engine.begin() as conn:
        conn.execute(
            process_instances.update()
            .where(t.id.in_(instance_ids), t.status == "running", t.wake_at > now)
            .values(wake_at=now)
        )
        conn.execute(
            process_branches.update()
            .where(b.instance_id.in_(instance_ids), b.status == "running", b.wake_at > now)
            .values(wake_at=now)
        )


def _wake(conn: sa.Connection, row: Any, now: datetime) -> None:
    """Make the instance and its waiting branches due at ``now`` (each await then looks at the inbox)."""
    if row.wake_at is None or row.wake_at > now:
        conn.execute(process_instances.update().where(process_instances.c.id == row.id).values(wake_at=now))
    b = process_branches.c
    conn.execute(
        process_branches.update()
        .where(b.instance_id == row.id, b.status == "running", sa.or_(b.wake_at.is_(None), b.wake_at > now))
        .values(wake_at=now)
    )


def _verdict(
    store: ProcessStore, conn: sa.Connection, row: Any, reply_name: str, message: Message
) -> str | None:
    """Why the reply cannot be applied to instance ``row`` (None: it can, now or at a later await)."""
    if row.status in ENDED:
        return f"instance {row.id} ended ({row.status}): the reply is not applied"
    definition = store.definition(conn, row.definition_hash)
    awaits = [
        (index, step)
        for index, outer in enumerate(definition.steps)
        for _, step in walk([outer])
        if isinstance(step, AwaitStep) and step.await_.from_ == reply_name and accepts(step, message)
    ]
    if not awaits:
        return f"no await of process {definition.process!r} takes this reply from {reply_name!r}"
    if all(index < row.position for index, _ in awaits):
        return f"instance {row.id}: step {awaits[-1][1].name!r} is closed: the reply is not applied"
    return None


def take_reply(
    conn: sa.Connection,
    process: str,
    key: str,
    reply_name: str,
    fits: Callable[[Message], bool],
    consumed_by: str,
) -> Message | None:
    """Consume the first waiting reply that ``fits`` (in the caller's step transaction), or None."""
    i = process_inbox.c
    rows = conn.execute(
        sa.select(i.id, i.message)
        .where(
            i.process == process, i.correlation_key == key, i.reply_name == reply_name, i.status == "waiting"
        )
        .order_by(i.id)
    )
    for row in rows.all():
        message = from_row(row.message)
        if fits(message):
            conn.execute(
                process_inbox.update()
                .where(i.id == row.id)
                .values(status="consumed", consumed_by=consumed_by)
            )
            return message
    return None


def bury(
    conn: sa.Connection,
    process: str,
    keys: list[str],
    reply_name: str | None,
    fits: Callable[[Message], bool],
    reason: str,
) -> int:
    """Mark dead each waiting reply for ``keys`` (on ``reply_name``, or any) that ``fits``; count them."""
    i = process_inbox.c
    query = sa.select(i.id, i.message).where(
        i.process == process, i.correlation_key.in_(keys), i.status == "waiting", i.reply_name != CANCEL
    )
    if reply_name is not None:
        query = query.where(i.reply_name == reply_name)
    ids = [row.id for row in conn.execute(query).all() if fits(from_row(row.message))]
    if ids:
        conn.execute(process_inbox.update().where(i.id.in_(ids)).values(status="dead", reason=reason))
    return len(ids)


@dataclass(frozen=True)
class CancelAnswer:
    """The answer to a cancel request: accepted (the instance will undo and end cancelled) or why not."""

    accepted: bool
    reason: str | None = None
    instance_id: str | None = None


def request_cancel(
    store: ProcessStore, process: str, key: str, value: str, message: Message, *, now: datetime | None = None
) -> CancelAnswer:
    """Ask the instance of ``process`` whose business key ``key`` equals ``value`` to cancel.

    Refused when there is no such instance, it ended, its definition has no ``on_cancel``, or its
    point of no return is done (the definition's ``refuse_reason``, also for an instance that completed
    after it). Every request is kept in the inbox
    once per message id (a request sent again gets the first answer): an accepted one waits there for
    the instance's runner, which is woken (at ``now``) to undo the done steps; a refused one is kept
    ``refused`` with the reason.
    """
    now = now or utcnow()
    i = process_inbox.c
    with store.errors("cancel"), store.engine.begin() as conn:
        seen = conn.execute(
            sa.select(i.status, i.reason, i.correlation_key).where(i.message_id == message.id)
        ).first()
        if seen is not None:
            accepted = seen.status != "refused"
            return CancelAnswer(accepted, seen.reason, seen.correlation_key if accepted else None)
        rows = [
            store.instance(conn, found, lock=True) for found in _instances_with(conn, process, value, key)
        ]
        live = [row for row in rows if row.status not in ENDED] or rows
        if not live:
            reason = f"no instance of {process!r} has {key} = {value!r}"
            _store(conn, process, f"{key}={value}", CANCEL, message, "refused", reason)
            return CancelAnswer(False, reason)
        row = live[0]
        refused = _cancel_refused(store, conn, row, store.definition(conn, row.definition_hash))
        if refused is not None:
            _store(conn, process, row.id, CANCEL, message, "refused", refused)
            return CancelAnswer(False, refused, row.id)
        _store(conn, process, row.id, CANCEL, message, "waiting", None)
        conn.execute(process_instances.update().where(process_instances.c.id == row.id).values(wake_at=now))
        return CancelAnswer(True, None, row.id)


def _cancel_refused(store: ProcessStore, conn: sa.Connection, row: Any, definition: Process) -> str | None:
    if row.status == "completed" and _past_point_of_no_return(conn, row, definition):
        assert definition.on_cancel is not None
        return definition.on_cancel.refuse_reason  # the requester's reason, not the instance's
    if row.status in ENDED:
        return f"instance {row.id} already ended ({row.status})"
    if row.status not in ("running", "alert"):
        return f"instance {row.id} is {row.status}: its steps are being undone or an undo failed"
    if definition.on_cancel is None:
        return f"process {definition.process!r} has no on_cancel: its instances cannot be cancelled"
    if _past_point_of_no_return(conn, row, definition):
        return definition.on_cancel.refuse_reason
    return None


def _past_point_of_no_return(conn: sa.Connection, row: Any, definition: Process) -> bool:
    """True when the definition names a point of no return and the instance has done that step."""
    point = definition.on_cancel.point_of_no_return if definition.on_cancel is not None else None
    if point is None:
        return False
    s = process_steps.c
    done = conn.execute(
        sa.select(s.id).where(s.instance_id == row.id, s.path == point, s.state == "done").limit(1)
    ).first()
    return done is not None
