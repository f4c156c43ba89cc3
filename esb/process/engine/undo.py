"""Compensation and the end of an instance.

The undo is read backwards from ``process_steps``: the latest done step whose definition names a
``compensate`` and whose undo (path ``<step path>:compensate``) is not done yet is undone next, by a
call with the key ``<instance id>:<step path>:compensate``, retried with its backoff. An undo that fails
past its retries stops the instance in status ``stuck`` with the error (visible, never silent). The
instance's undo covers every done step (branches included); a failed or cancelled branch undoes only
its own. When nothing is left to undo the instance ends ``failed`` or ``cancelled``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from esb.exceptions import StateTransitionError
from esb.model.states import check_transition
from esb.process.definition import Process, idempotency_key, walk
from esb.process.engine import calls, statements
from esb.process.engine.records import (
    DONE,
    FAILED,
    add_step,
    backoff,
    business_keys,
    count_steps,
    view,
)
from esb.process.engine.store import ENDED, STUCK, Claim
from esb.process.engine.tables import process_branches, process_steps
from esb.process.steps import AwaitStep, CallStep, ForeachStep, ParallelStep, WaitStep

if TYPE_CHECKING:
    from esb.process.engine.runner import Runner

UNDO = ":compensate"
#: Seconds of lease an ``after_undo`` send needs (a one-way write).
SEND_TIMEOUT = 30.0
_ITEM = re.compile(r"\[[^\]]*\]")
#: Branch statuses that are not over yet.
OPEN = ("running", "compensating", "cancelling")


def pending(
    conn: sa.Connection, instance_id: str, definition: Process, prefix: str = ""
) -> tuple[str, CallStep] | None:
    """Return the next (step path, undo call) under ``prefix``, latest first; None when all are undone."""
    steps = dict(walk(definition.steps))
    undos = {c.name: c for c in definition.compensations}
    s = process_steps.c
    rows = conn.execute(
        sa.select(s.path).where(s.instance_id == instance_id, s.state == DONE).order_by(s.id.desc())
    ).all()
    undone = {r.path.removesuffix(UNDO) for r in rows if r.path.endswith(UNDO)}
    for r in rows:
        if r.path.endswith(UNDO) or r.path in undone or not r.path.startswith(prefix):
            continue
        step = steps.get(_ITEM.sub("[*]", r.path))
        if step is not None and step.compensate:
            return r.path, undos[step.compensate]
    return None


def _undo_one(runner: Runner, claim: Claim, row: Any, definition: Process, branch: Any = None) -> bool | None:
    """Run the next undo (of the branch, or of the whole instance); None when nothing is left to undo."""
    prefix = "" if branch is None else f"{branch.path}."
    with runner.store.begin("undo") as conn:
        nxt = pending(conn, row.id, definition, prefix)
        attempt = 1 + (count_steps(conn, row.id, nxt[0] + UNDO, FAILED) if nxt else 0)
    if nxt is None:
        return None
    path, undo = nxt
    key = idempotency_key(row.id, path, undo=True)
    spec = undo.call
    runner.ensure_lease(claim, spec.timeout)
    try:
        message = calls.request_message(
            runner.resources, _undo_view(runner, row, definition, path), spec.request, key, row.id
        )
        reply = calls.call(runner.resources, spec.endpoint, message, spec.timeout)
    except Exception as exc:  # every failed undo is retried, then made visible
        error = calls.describe(exc)
        with runner.store.begin("undo") as conn:
            add_step(conn, row.id, path + UNDO, FAILED, attempt=attempt, key=key, error=error)
            if attempt <= spec.retry.max:
                wake = runner.clock() + timedelta(seconds=backoff(spec.retry, attempt))
                runner.store.guard(conn, claim, wake_at=wake)
                if branch is not None:
                    _update_branch(conn, row.id, branch.path, wake_at=wake)
            else:
                reason = f"undo {undo.name!r} of step {path!r} failed {attempt} time(s): {error}"
                runner.store.guard(conn, claim, status=STUCK, wake_at=None, error=reason)
        return False
    with runner.store.begin("undo") as conn:
        runner.store.guard(conn, claim, wake_at=runner.clock())
        add_step(conn, row.id, path + UNDO, DONE, attempt=attempt, key=key, result=reply.body)
    return True


def _undo_view(runner: Runner, row: Any, definition: Process, path: str) -> dict[str, Any]:
    """The process view an undo's request reads: in a branch, with the branch's item and state."""
    with runner.store.begin("undo") as conn:
        b = process_branches.c
        rows = conn.execute(sa.select(b.path, b.item, b.state).where(b.instance_id == row.id)).all()
    owners = [r for r in rows if path.startswith(f"{r.path}.")]
    branch = max(owners, key=lambda r: len(r.path)) if owners else None
    found = view(row.data, business_keys(definition, row.data, row.state), row.state)
    if branch is not None:
        found["item"] = branch.item
        found["state"] = branch.state or row.state
    return found


def step(runner: Runner, claim: Claim, row: Any, definition: Process) -> bool:
    """Run the instance's next undo, then its next ``after_undo`` send, or end it when none is left;
    True to go on at once."""
    done = _undo_one(runner, claim, row, definition)
    if done is not None:
        return done
    ending = "cancelled" if row.status == "cancelling" else "failed"
    told = _tell_one(runner, claim, row, definition, ending)
    if told is not None:
        return told
    end(runner, claim, row, definition, ending)
    return False


#: The path segment of the ``after_undo`` sends in ``process_steps`` (``after_undo.tell_crm``).
AFTER_UNDO = "after_undo"


def _tell_one(runner: Runner, claim: Claim, row: Any, definition: Process, ending: str) -> bool | None:
    """Make the next ``after_undo`` send not done yet (its view's state: the state the instance ends
    in); None when all are done. A send failing past its retries stops the instance ``stuck``."""
    with runner.store.begin("after undo") as conn:
        s = process_steps.c
        done = {
            r.path
            for r in conn.execute(
                sa.select(s.path).where(
                    s.instance_id == row.id, s.state == DONE, s.path.startswith(f"{AFTER_UNDO}.")
                )
            )
        }
        nxt = next((t for t in definition.after_undo if f"{AFTER_UNDO}.{t.name}" not in done), None)
        if nxt is None:
            return None
        path = f"{AFTER_UNDO}.{nxt.name}"
        attempt = 1 + count_steps(conn, row.id, path, FAILED)
    key = idempotency_key(row.id, path)
    spec = nxt.send
    runner.ensure_lease(claim, SEND_TIMEOUT)
    state = _final_state(definition.machine, row.state, ending)
    try:
        found = view(row.data, business_keys(definition, row.data, row.state), state)
        message = calls.request_message(runner.resources, found, spec.request, key, row.id)
        calls.send(runner.resources, spec.endpoint, message)
    except Exception as exc:  # retried, then made visible like a failed undo
        error = calls.describe(exc)
        with runner.store.begin("after undo") as conn:
            add_step(conn, row.id, path, FAILED, attempt=attempt, key=key, error=error)
            if attempt <= spec.retry.max:
                wake = runner.clock() + timedelta(seconds=backoff(spec.retry, attempt))
                runner.store.guard(conn, claim, wake_at=wake)
            else:
                reason = f"after_undo {nxt.name!r} failed {attempt} time(s): {error}"
                runner.store.guard(conn, claim, status=STUCK, wake_at=None, error=reason)
        return False
    with runner.store.begin("after undo") as conn:
        runner.store.guard(conn, claim, wake_at=runner.clock())
        add_step(conn, row.id, path, DONE, attempt=attempt, key=key)
    return True


def branch_step(
    runner: Runner,
    claim: Claim,
    row: Any,
    definition: Process,
    parent: ParallelStep | ForeachStep,
    branch: Any,
) -> bool:
    """Run the branch's next undo; with none left the branch ends ``failed`` (or ``cancelled``)."""
    done = _undo_one(runner, claim, row, definition, branch)
    if done is not None:
        return done
    ending = "cancelled" if branch.status == "cancelling" else "failed"
    machine = parent.parallel.machine if isinstance(parent, ParallelStep) else parent.foreach.machine
    state = (
        branch.state
        if machine is None or branch.state is None
        else _final_state(machine, branch.state, ending)
    )
    with runner.store.begin("undo") as conn:
        runner.store.guard(conn, claim, wake_at=runner.clock())
        _update_branch(conn, row.id, branch.path, status=ending, state=state, wake_at=None)
    return True


def _update_branch(conn: sa.Connection, instance_id: str, path: str, **values: Any) -> None:
    b = process_branches.c
    conn.execute(
        process_branches.update().where(b.instance_id == instance_id, b.path == path).values(**values)
    )


def _final_state(machine: str, state: str, ending: str) -> str:
    """Walk towards ``ending`` (through pendingCancellation on TMF622); keep ``state`` where barred."""
    path = ["pendingCancellation", "cancelled"] if ending == "cancelled" else [ending]
    current = state
    for target in path:
        try:
            check_transition(machine, current, target)
        except StateTransitionError:
            continue
        current = target
    return current


def end(runner: Runner, claim: Claim, row: Any, definition: Process, ending: str) -> None:
    """End the instance (``completed``, ``partial``, ``failed`` or ``cancelled``); later replies are dead.

    The same write gives the lease back (an ended instance is never claimed again).
    """
    with runner.store.begin("end") as conn:
        write_end(runner, conn, claim, row, definition, ending)


def write_end(
    runner: Runner, conn: sa.Connection, claim: Claim, row: Any, definition: Process, ending: str
) -> None:
    """Write the end of the instance in ``conn``'s transaction (:func:`end`, or a last step's own).

    The instance row is written ended with its lease given back, its open waits are closed (only when
    its definition has a step that waits) and every reply still waiting for its keys or its id is dead.
    """
    final = ending in ("completed", "partial")
    state = row.state if final else _final_state(definition.machine, row.state, ending)
    runner.store.guard(
        conn, claim, status=ending, state=state, wake_at=None, lease_owner=None, lease_until=None
    )
    sql = statements.of(conn)
    if may_wait(definition):
        closed = f"the instance ended ({ending})"
        conn.execute(sql.close_waiting, {"iid": row.id, "closed_at": runner.clock(), "why": closed})
    if any(isinstance(outer, ParallelStep | ForeachStep) for outer in definition.steps):
        b = process_branches.c  # (branch rows exist only under a top-level parallel or foreach)
        conn.execute(
            process_branches.update()
            .where(b.instance_id == row.id, b.status.in_(OPEN))
            .values(status="cancelled", wake_at=None)
        )
    # every reply still waiting for its keys or its id is dead (bury() with every reply fitting)
    dead = f"instance {row.id} ended ({ending})"
    conn.execute(sql.bury_ended, {"pname": row.process, "iid": row.id, "why": dead})


def ending(row: Any) -> str:
    """How an instance past its last step ends: its state when that is an ending, else ``completed``."""
    return row.state if row.state in ENDED else "completed"


def past_last(row: Any, definition: Process) -> bool:
    """True when ``row`` (as its claim's last write returned it) runs past its last step, ready to end.

    Running (not undoing, not alerted) and with no cancel request seen waiting: a cancel is taken first.
    """
    return (
        row is not None
        and row.status == "running"
        and row.position >= len(definition.steps)
        and not row.cancel_waiting
    )


def may_wait(definition: Process) -> bool:
    """True when ``definition`` has a step that leaves a waiting step row (a ``wait`` or an ``await``).

    Only those write one (:mod:`.stepkinds`), so an end of an instance whose definition has none has no
    open wait to close.
    """
    return any(isinstance(step, WaitStep | AwaitStep) for _path, step in walk(definition.steps))
