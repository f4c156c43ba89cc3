"""An operator's retry: a ``stuck`` or ``alert`` instance is made due again from where it stopped.

``stuck`` after an undo that kept failing: the instance goes back to undoing (``compensating``, or
``cancelling`` when a cancel request was taken; ``running`` when the undo was a branch's) and the runner
re-runs that undo, with the same idempotency key (``<instance id>:<step path>:compensate``). ``stuck``
after a step broke: back to ``running`` at the same position (the step is re-run with its own key).
``alert`` (an await passed its deadline): the open await is closed and waits again for a fresh deadline.

The write is fenced like a runner's: it happens only if the instance's ``fence`` and ``status`` are still
the ones read, and it moves the fence, so a runner that still held an old lease can write nothing more.
Each retry leaves a step row (path :data:`AUDIT`, state ``operator``) saying who and what it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.message import utcnow
from esb.process.engine.inbox import CANCEL
from esb.process.engine.records import FAILED, TIMED_OUT, WAITING, add_step
from esb.process.engine.store import STUCK, LeaseLostError, ProcessStore
from esb.process.engine.tables import process_branches, process_inbox, process_instances, process_steps
from esb.process.engine.undo import OPEN, UNDO

#: Statuses an operator's retry takes.
RETRYABLE = (STUCK, "alert")
#: The step path of the row each retry leaves (never a step's name: names have no colon).
AUDIT = "esb:retry"


@dataclass(frozen=True)
class RetryAnswer:
    """The answer to a retry: done (and the status it resumed in) or refused with why."""

    done: bool
    reason: str | None = None
    status: str | None = None


def retry(store: ProcessStore, instance_id: str, *, by: str, now: datetime | None = None) -> RetryAnswer:
    """Make the ``stuck`` or ``alert`` instance ``instance_id`` due at ``now`` from where it stopped.

    Refused (nothing written) for any other status, or an unknown id. ``by`` is who asked (audited).
    """
    now = now or utcnow()
    t = process_instances.c
    with store.errors("retry"), store.engine.begin() as conn:
        row = store.instance(conn, instance_id, lock=True)
        if row is None:
            return RetryAnswer(False, f"no process instance has the id {instance_id!r}")
        if row.status not in RETRYABLE:
            return RetryAnswer(
                False,
                f"instance {row.id} is {row.status}: only a stuck or alert instance is retried "
                f"({_why_not(row.status)})",
            )
        status = _resume_status(conn, row) if row.status == STUCK else "running"
        if row.status == "alert":
            _close_open_awaits(conn, row.id, now, by)
        _wake_branches(conn, row.id, now)
        moved = conn.execute(
            process_instances.update()
            .where(t.id == row.id, t.fence == row.fence, t.status == row.status)
            .values(
                status=status,
                wake_at=now,
                error=None,
                lease_owner=None,
                lease_until=None,
                fence=t.fence + 1,
                updated_at=now,
            )
        ).rowcount
        if moved != 1:
            raise LeaseLostError(f"instance {row.id} changed while it was retried; look again and retry")
        add_step(
            conn,
            row.id,
            AUDIT,
            "operator",
            result={"by": by, "was": row.status, "resumed": status, "error": row.error},
            started=now,
        )
    return RetryAnswer(True, None, status)


def _why_not(status: str) -> str:
    if status in ("running", "compensating", "cancelling"):
        return "a runner advances it; wait, or cancel it"
    return "it ended; start a new one"


def _resume_status(conn: sa.Connection, row: Any) -> str:
    """The status a stuck instance was in: undoing (for itself or a branch), or running a step."""
    s = process_steps.c
    last = conn.execute(
        sa.select(s.path, s.state)
        .where(s.instance_id == row.id, s.path != AUDIT)
        .order_by(s.id.desc())
        .limit(1)
    ).first()
    if last is None or last.state != FAILED or not last.path.endswith(UNDO):
        return "running"
    b = process_branches.c
    branches = conn.execute(sa.select(b.path).where(b.instance_id == row.id, b.status.in_(OPEN))).all()
    if any(last.path.startswith(f"{branch.path}.") for branch in branches):
        return "running"  # the branch's own undo: the instance runs its branches
    i = process_inbox.c
    cancelled = conn.execute(
        sa.select(i.id).where(
            i.reply_name == CANCEL, i.status == "consumed", i.consumed_by == f"{row.id}:cancel"
        )
    ).first()
    return "cancelling" if cancelled is not None else "compensating"


def _close_open_awaits(conn: sa.Connection, instance_id: str, now: datetime, by: str) -> None:
    """Close the awaits an alert left waiting without a deadline: each opens again with a fresh one."""
    s = process_steps.c
    timed_out = sa.select(s.path).where(s.instance_id == instance_id, s.state == TIMED_OUT)
    conn.execute(
        process_steps.update()
        .where(
            s.instance_id == instance_id,
            s.state == WAITING,
            s.deadline.is_(None),
            s.path.in_(timed_out),
        )
        .values(state="closed", ended_at=now, error=f"retried by {by}: waits again for a fresh deadline")
    )


def _wake_branches(conn: sa.Connection, instance_id: str, now: datetime) -> None:
    """Make the open branches due at ``now`` too (each runs its next step or undo)."""
    b = process_branches.c
    conn.execute(
        process_branches.update().where(b.instance_id == instance_id, b.status.in_(OPEN)).values(wake_at=now)
    )
