"""``esb process list|show|retry|cancel``: the process engine's instances, read from the journal database.

Queries page on the database side (newest first); :func:`detail` gathers one instance with its steps,
branches, timers, inbox entries and what compensation would undo; :func:`retry` and :func:`cancel` go
through the engine (:func:`esb.process.engine.retry.retry`, :func:`esb.process.engine.request_cancel`)
and record who asked.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from esb.exceptions import ConfigError
from esb.message import Message, new_id, utcnow
from esb.ops.common import iso, table
from esb.process.definition import Process, walk
from esb.process.engine import CancelAnswer, ProcessStore, request_cancel
from esb.process.engine.inbox import CANCEL
from esb.process.engine.query import shown_status
from esb.process.engine.records import DONE, WAITING
from esb.process.engine.retry import RetryAnswer
from esb.process.engine.retry import retry as engine_retry
from esb.process.engine.store import ENDED, LIVE, STUCK
from esb.process.engine.tables import (
    process_branches,
    process_definitions,
    process_inbox,
    process_instances,
    process_keys,
    process_steps,
)
from esb.process.engine.undo import UNDO
from esb.project import Project
from esb.runtime.control import who

#: What ``--status`` takes besides a stored status: ``waiting`` (running, not due), ``ended`` (any end).
STATUSES = ("running", "waiting", "stuck", "alert", "compensating", "cancelling", "ended", *ENDED)
_ITEM = re.compile(r"\[[^\]]*\]")


@contextlib.contextmanager
def open_store(project: Project) -> Iterator[ProcessStore]:
    """Open the process tables of the project's journal database for the length of a command."""
    with ProcessStore(project.settings.journal.url, pool_size=2) as store:
        yield store


@dataclass
class Summary:
    """One instance in ``esb process list``."""

    id: str
    process: str
    version: int
    keys: dict[str, str]
    state: str
    status: str
    waits_for: str | None
    until: str | None
    last_step: str | None
    updated: str
    error: str | None


@dataclass
class Detail:
    """One instance in ``esb process show``: the row, steps, branches, timers, inbox and pending undos."""

    summary: Summary
    trigger_id: str
    created: str
    position: int
    partial: bool
    lease_owner: str | None
    lease_until: str | None
    data: Any
    steps: list[dict[str, Any]] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    would_undo: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the detail for ``--json``."""
        return asdict(self)


def _status_clause(statuses: Sequence[str], now: datetime) -> Any:
    """The WHERE clause of ``--status`` (several: any of them)."""
    t = process_instances.c
    clauses = []
    for status in statuses:
        if status not in STATUSES:
            raise ConfigError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
        if status == "waiting":
            clauses.append(sa.and_(t.status == "running", sa.or_(t.wake_at.is_(None), t.wake_at > now)))
        elif status == "running":
            clauses.append(sa.and_(t.status == "running", t.wake_at <= now))
        elif status == "ended":
            clauses.append(t.status.in_(ENDED))
        else:
            clauses.append(t.status == status)
    return sa.or_(*clauses)


def find(
    store: ProcessStore,
    *,
    process: str | None = None,
    state: str | None = None,
    statuses: Sequence[str] = (),
    key: tuple[str, str] | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> list[Summary]:
    """Return one page of instances (newest update first) matching every filter given."""
    if limit < 1 or offset < 0:
        raise ConfigError(f"--limit must be 1 or more and --offset 0 or more, got {limit} and {offset}")
    now = now or utcnow()
    t = process_instances.c
    query = sa.select(process_instances, process_definitions.c.version).join(
        process_definitions, process_definitions.c.hash == t.definition_hash
    )
    if process is not None:
        query = query.where(t.process == process)
    if state is not None:
        query = query.where(t.state == state)
    if statuses:
        query = query.where(_status_clause(statuses, now))
    if key is not None:
        k = process_keys.c
        query = query.where(t.id.in_(sa.select(k.instance_id).where(k.name == key[0], k.value == key[1])))
    if since is not None:
        query = query.where(t.updated_at >= since)
    query = query.order_by(t.updated_at.desc(), t.id.desc()).limit(limit).offset(offset)
    with store.errors("process list"), store.engine.connect() as conn:
        rows = conn.execute(query).all()
        return _summaries(conn, rows, now)


def status_counts(store: ProcessStore, sample: int = 20) -> tuple[dict[str, int], list[str]]:
    """Return how many instances hold each status that has not ended (an index range, however many
    ended instances the table keeps), and up to ``sample`` ids of the ``stuck`` and ``alert`` ones
    (oldest update first: those an operator must look at)."""
    counted, held_statement = status_statements()
    with store.errors("process status counts"), store.engine.connect() as conn:
        counts = {r.status: int(r.n) for r in conn.execute(counted)}
        held = conn.execute(held_statement, {"sample": sample}).all()
    return counts, [f"{r.id} ({r.status})" for r in held]


def status_statements() -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The statements of :func:`status_counts`: instances per status that has not ended, and the ``stuck``
    and ``alert`` ones, oldest update first, at most ``sample`` (a parameter)."""
    t = process_instances.c
    counted = (
        sa.select(t.status, sa.func.count().label("n")).where(t.status.in_((*LIVE, STUCK))).group_by(t.status)
    )
    held = (
        sa.select(t.id, t.status)
        .where(t.status.in_(("stuck", "alert")))
        .order_by(t.updated_at)
        .limit(sa.bindparam("sample", type_=sa.Integer()))
    )
    return counted, held


def _summaries(conn: sa.Connection, rows: Sequence[Any], now: datetime) -> list[Summary]:
    """Build the summaries of ``rows`` with three more queries (keys, open steps, last steps)."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    k, s = process_keys.c, process_steps.c
    keys: dict[str, dict[str, str]] = {}
    for r in conn.execute(sa.select(k.instance_id, k.name, k.value).where(k.instance_id.in_(ids))):
        keys.setdefault(r.instance_id, {})[r.name] = r.value
    waiting: dict[str, Any] = {}
    for r in conn.execute(
        sa.select(s.instance_id, s.path, s.deadline)
        .where(s.instance_id.in_(ids), s.state == WAITING)
        .order_by(s.id)
    ):
        waiting.setdefault(r.instance_id, r)
    last_ids = sa.select(sa.func.max(s.id)).where(s.instance_id.in_(ids)).group_by(s.instance_id)
    last = {
        r.instance_id: f"{r.path} {r.state}"
        for r in conn.execute(sa.select(s.instance_id, s.path, s.state).where(s.id.in_(last_ids)))
    }
    return [_summary(row, keys.get(row.id, {}), waiting.get(row.id), last.get(row.id), now) for row in rows]


def _summary(row: Any, keys: dict[str, str], waiting: Any, last: str | None, now: datetime) -> Summary:
    status = shown_status(row.status, row.wake_at, now)
    waits_for: str | None = None
    until = row.wake_at
    if row.status not in ENDED:
        if waiting is not None:
            waits_for = waiting.path
            until = waiting.deadline if waiting.deadline is not None else row.wake_at
        elif status == "waiting" and row.wake_at is not None:
            waits_for = "a retry's backoff or its turn"
    return Summary(
        id=row.id,
        process=row.process,
        version=row.version,
        keys=keys,
        state=row.state,
        status=status,
        waits_for=waits_for,
        until=iso(until) if until is not None and row.status not in ENDED else None,
        last_step=last,
        updated=iso(row.updated_at),
        error=row.error,
    )


def list_table(summaries: Sequence[Summary]) -> str:
    """The text of ``esb process list``: one line per instance."""
    return table(
        ["ID", "PROCESS", "V", "KEYS", "STATE", "STATUS", "WAITS FOR", "UNTIL", "LAST STEP", "UPDATED"],
        [
            [
                s.id,
                s.process,
                s.version,
                " ".join(f"{name}={value}" for name, value in sorted(s.keys.items())) or "-",
                s.state,
                s.status,
                s.waits_for or "-",
                s.until or "-",
                s.last_step or "-",
                s.updated,
            ]
            for s in summaries
        ],
    )


def resolve(store: ProcessStore, instance_id: str | None, key: tuple[str, str] | None) -> str:
    """Return the instance id given, or the one instance with business key ``key`` (newest if several ended).

    Several live instances with the key are refused (name the ID instead); so is none.
    """
    if (instance_id is None) == (key is None):
        raise ConfigError("name the instance: an ID or --key NAME=VALUE (one of them)")
    if instance_id is not None:
        return instance_id
    assert key is not None
    t, k = process_instances.c, process_keys.c
    with store.errors("process find"), store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.id, t.process, t.status)
            .where(t.id.in_(sa.select(k.instance_id).where(k.name == key[0], k.value == key[1])))
            .order_by(t.updated_at.desc(), t.id.desc())
        ).all()
    if not rows:
        raise ConfigError(f"no process instance has the business key {key[0]}={key[1]}")
    live = [r for r in rows if r.status not in ENDED]
    if len(live) > 1:
        found = ", ".join(f"{r.id} ({r.process}, {r.status})" for r in live)
        raise ConfigError(f"{len(live)} live instances have {key[0]}={key[1]}: {found}; name one by its ID")
    return str((live or rows)[0].id)


def detail(store: ProcessStore, instance_id: str, now: datetime | None = None) -> Detail | None:
    """Return instance ``instance_id`` with everything about it, or None when there is no such id."""
    now = now or utcnow()
    t, s, b, i = process_instances.c, process_steps.c, process_branches.c, process_inbox.c
    with store.errors("process show"), store.engine.connect() as conn:
        row = conn.execute(
            sa.select(process_instances, process_definitions.c.version)
            .join(process_definitions, process_definitions.c.hash == t.definition_hash)
            .where(t.id == instance_id)
        ).first()
        if row is None:
            return None
        summary = _summaries(conn, [row], now)[0]
        definition = store.definition(conn, row.definition_hash)
        steps = conn.execute(sa.select(process_steps).where(s.instance_id == row.id).order_by(s.id)).all()
        branches = conn.execute(
            sa.select(process_branches).where(b.instance_id == row.id).order_by(b.parent, b.idx)
        ).all()
        key_values = [*summary.keys.values(), row.id]
        inbox = conn.execute(
            sa.select(process_inbox)
            .where(
                i.process == row.process,
                sa.or_(
                    i.correlation_key.in_(key_values),
                    i.correlation_key.in_([f"{n}={v}" for n, v in summary.keys.items()]),
                ),
            )
            .order_by(i.id)
        ).all()
    found = Detail(
        summary=summary,
        trigger_id=row.trigger_id,
        created=iso(row.created_at),
        position=row.position,
        partial=row.partial,
        lease_owner=row.lease_owner,
        lease_until=iso(row.lease_until) if row.lease_until else None,
        data=row.data,
    )
    found.steps = [_step(r) for r in steps]
    found.branches = [_branch(r) for r in branches]
    found.timers = _timers(row, steps, branches)
    found.inbox = [_inbox(r) for r in inbox]
    found.would_undo = would_undo(definition, [(r.path, r.state) for r in steps])
    return found


def _step(r: Any) -> dict[str, Any]:
    return {
        "path": r.path,
        "attempt": r.attempt,
        "state": r.state,
        "idempotency_key": r.idempotency_key,
        "result": r.result,
        "error": r.error,
        "deadline": iso(r.deadline) if r.deadline else None,
        "started": iso(r.started_at),
        "ended": iso(r.ended_at) if r.ended_at else None,
    }


def _branch(r: Any) -> dict[str, Any]:
    return {
        "path": r.path,
        "parent": r.parent,
        "index": r.idx,
        "item_key": r.item_key,
        "item": r.item,
        "position": r.position,
        "status": r.status,
        "state": r.state,
        "wake_at": iso(r.wake_at) if r.wake_at else None,
        "error": r.error,
    }


def _inbox(r: Any) -> dict[str, Any]:
    return {
        "message_id": r.message_id,
        "reply_name": "(cancel request)" if r.reply_name == CANCEL else r.reply_name,
        "status": r.status,
        "received": iso(r.received_at),
        "consumed_by": r.consumed_by,
        "reason": r.reason,
        "message": r.message,
    }


def _timers(row: Any, steps: Sequence[Any], branches: Sequence[Any]) -> list[dict[str, Any]]:
    """Every due time of the instance: its ``wake_at``, each open step's deadline, each branch's."""
    timers: list[dict[str, Any]] = []
    if row.wake_at is not None:
        timers.append({"what": "instance", "wake_at": iso(row.wake_at)})
    for r in steps:
        if r.state == WAITING and r.deadline is not None:
            timers.append({"what": f"step {r.path}", "wake_at": iso(r.deadline)})
    for r in branches:
        if r.wake_at is not None:
            timers.append({"what": f"branch {r.path}", "wake_at": iso(r.wake_at)})
    return timers


def would_undo(definition: Process, steps: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The undos compensation would run now, in their order (latest done step first).

    ``steps`` are (path, state) of the step rows in the order they were written. A done step counts
    when its definition names a ``compensate`` and its undo (``<path>:compensate``) is not done yet.
    """
    by_path = dict(walk(definition.steps))
    undone = {path.removesuffix(UNDO) for path, state in steps if state == DONE and path.endswith(UNDO)}
    pending: list[dict[str, Any]] = []
    for path, state in reversed(steps):
        if state != DONE or path.endswith(UNDO) or path in undone:
            continue
        step = by_path.get(_ITEM.sub("[*]", path))
        if step is not None and step.compensate and all(p["step"] != path for p in pending):
            pending.append({"step": path, "undo": step.compensate})
    return pending


def show_text(found: Detail) -> str:
    """The text of ``esb process show``."""
    s = found.summary
    lines = [
        f"instance  {s.id}",
        f"process   {s.process} v{s.version}",
        f"keys      {' '.join(f'{n}={v}' for n, v in sorted(s.keys.items())) or '-'}",
        f"state     {s.state}",
        f"status    {s.status}" + (" (a join ended partial)" if found.partial else ""),
        f"trigger   {found.trigger_id}",
        f"created   {found.created}",
        f"updated   {s.updated}",
    ]
    if s.waits_for:
        lines.append(f"waits for {s.waits_for} until {s.until or '-'}")
    if found.lease_owner:
        lines.append(f"leased by {found.lease_owner} until {found.lease_until}")
    if s.error:
        lines.append(f"error     {s.error}")
    lines.append("\nsteps:")
    lines.append(
        table(
            ["STEP", "ATTEMPT", "STATE", "IDEMPOTENCY KEY", "STARTED", "ENDED", "RESULT / ERROR"],
            [
                [
                    r["path"],
                    r["attempt"],
                    r["state"],
                    r["idempotency_key"] or "-",
                    r["started"],
                    r["ended"] or (f"deadline {r['deadline']}" if r["deadline"] else "-"),
                    _short(r["error"] if r["error"] else r["result"]),
                ]
                for r in found.steps
            ],
        )
        if found.steps
        else "  (none yet)"
    )
    if found.branches:
        lines.append("\nbranches:")
        lines.append(
            table(
                ["BRANCH", "ITEM", "STATUS", "STATE", "WAKE AT", "ERROR"],
                [
                    [
                        b["path"],
                        b["item_key"] or b["index"],
                        b["status"],
                        b["state"] or "-",
                        b["wake_at"] or "-",
                        _short(b["error"]),
                    ]
                    for b in found.branches
                ],
            )
        )
    lines.append("\ntimers:")
    lines.extend([f"  {t['what']}: {t['wake_at']}" for t in found.timers] or ["  (none)"])
    lines.append("\ninbox:")
    if found.inbox:
        lines.append(
            table(
                ["MESSAGE", "FROM", "STATUS", "RECEIVED", "WHY / CONSUMED BY"],
                [
                    [
                        m["message_id"],
                        m["reply_name"],
                        m["status"],
                        m["received"],
                        m["reason"] or m["consumed_by"] or "-",
                    ]
                    for m in found.inbox
                ],
            )
        )
    else:
        lines.append("  (none)")
    lines.append("\ncompensation would undo:")
    lines.extend([f"  {u['step']} by {u['undo']}" for u in found.would_undo] or ["  (nothing)"])
    return "\n".join(lines)


def _short(value: Any, limit: int = 80) -> str:
    """One line of at most ``limit`` characters (``-`` for nothing)."""
    if value is None or value == "":
        return "-"
    raw = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    text = " ".join(raw.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def retry(store: ProcessStore, instance_id: str) -> RetryAnswer:
    """Make a stuck or alert instance due again from where it stopped (audited with who asked)."""
    return engine_retry(store, instance_id, by=who())


def cancel(
    store: ProcessStore, instance_id: str, reason: str | None, now: datetime | None = None
) -> CancelAnswer:
    """Ask the engine to cancel ``instance_id`` (the definition's ``on_cancel`` decides).

    The request goes through :func:`request_cancel` by a business key that only this instance holds
    among the live ones (the engine finds instances by key); it is kept in the inbox with who asked
    and why.
    """
    t, k = process_instances.c, process_keys.c
    with store.errors("process cancel"), store.engine.connect() as conn:
        row = conn.execute(sa.select(t.id, t.process, t.status).where(t.id == instance_id)).first()
        if row is None:
            raise ConfigError(f"no process instance has the id {instance_id!r}")
        if row.status in ENDED:
            return CancelAnswer(False, f"instance {row.id} already ended ({row.status})", row.id)
        keys = conn.execute(sa.select(k.name, k.value).where(k.instance_id == row.id).order_by(k.name)).all()
        others = sa.select(k.instance_id).where(k.process == row.process, k.instance_id != row.id)
        live = sa.select(t.id).where(t.status.not_in(ENDED))
        chosen = None
        for name, value in keys:
            shared = conn.execute(
                others.where(k.name == name, k.value == value, k.instance_id.in_(live)).limit(1)
            ).first()
            if shared is None:
                chosen = (name, value)
                break
    if chosen is None:
        return CancelAnswer(
            False,
            f"instance {row.id} has no business key that no other live instance of {row.process!r} shares: "
            "the engine finds the instance to cancel by key",
            row.id,
        )
    by = who()
    request = Message(
        body={"instance": row.id, "reason": reason, "by": by},
        id=f"esb-cancel-{new_id()}",
        correlation_id=row.id,
        source="esb process cancel",
        headers={"esb-requested-by": by, **({"esb-reason": reason} if reason else {})},
    )
    return request_cancel(store, row.process, chosen[0], chosen[1], request, now=now)
