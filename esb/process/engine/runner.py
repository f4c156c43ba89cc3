"""The runner: starts instances and advances due ones, one transaction per step, under a lease.

:meth:`Runner.run_due` claims due instances one at a time (:mod:`.store`) and advances each until it
waits (a timer, a reply, a retry's backoff) or ends. Each step (:mod:`.stepkinds`) commits its result,
the next position and ``wake_at`` in one transaction guarded by the fence; a call out happens before
that transaction, so a crash in between redoes only that call, with the same idempotency key.
``parallel`` and ``foreach`` run their branches one step at a time (:mod:`.branches`). Failure and
cancellation undo the done steps in reverse order (:mod:`.undo`). A branch inside a branch is not run
yet (refused at start).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from esb.codec import json_body
from esb.exceptions import ConfigError, StateTransitionError, TransportError
from esb.message import Message, new_id, utcnow
from esb.model.states import check_transition
from esb.process.definition import Process, walk
from esb.process.engine import branches, undo
from esb.process.engine.backlog import Backlog, reply_endpoints
from esb.process.engine.frame import Frames, top
from esb.process.engine.inbox import CANCEL, take_reply, wake
from esb.process.engine.records import key_values, record_keys
from esb.process.engine.resources import Resources
from esb.process.engine.stepkinds import StepKinds
from esb.process.engine.store import ENDED, STUCK, Claim, LeaseLostError, ProcessStore
from esb.process.engine.tables import process_instances
from esb.process.steps import CallStep, ForeachStep, ParallelStep, StepBase
from esb.telemetry import TRACEPARENT, TRACESTATE, current_context, tracer

#: Steps one claim runs at most before the instance goes back to the queue (a goto loop cannot hog).
MAX_STEPS_PER_CLAIM = 100


class Runner:
    """Runs process instances stored in ``store``, calling endpoints through ``resources``.

    One runner serves one thread; several runners (threads or processes) share a database safely.
    ``backlog``: the hub's reply endpoints not read back yet, whose overdue timers are held
    (:mod:`.backlog`); without one, timers fire when due.
    """

    def __init__(
        self,
        store: ProcessStore,
        resources: Resources,
        *,
        owner: str | None = None,
        lease: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        backlog: Backlog | None = None,
    ) -> None:
        self.store = store
        self.backlog = backlog
        self.resources = resources
        self.owner = owner or f"runner-{new_id()[:12]}"
        self.lease = lease
        self.clock = clock
        self.frames = Frames(self)
        self.kinds = StepKinds(self)
        self._lease_until = self.clock()  # of the instance being advanced (a Runner serves one thread)

    # -- starting ---------------------------------------------------------------------------------------
    def start(self, process: Process, message: Message) -> str:
        """Start an instance of ``process`` for the trigger ``message``; return its id.

        A trigger delivered again (same message id) returns the instance it started the first time.
        """
        nested = [
            path
            for path, step in walk(process.steps)
            if isinstance(step, ParallelStep | ForeachStep) and "." in path.replace("[*]", "")
        ]
        if nested:
            raise ConfigError(
                f"process {process.process!r}: the engine does not run a parallel or foreach inside a "
                f"branch yet: {', '.join(nested)}"
            )
        trigger = process.trigger
        data = (
            self.resources.transform(trigger.transform).apply(message).body
            if trigger.transform
            else json_body(message.body, f"process {process.process}: trigger without a transform")
        )
        check_transition(process.machine, None, process.initial_state)
        keys = key_values(process, data, process.initial_state)
        context = current_context()  # the trigger's span: the parent of the instance's step spans
        now = self.clock()
        t = process_instances.c
        with self.store.begin("start") as conn:
            found = conn.execute(
                sa.select(t.id).where(t.process == process.process, t.trigger_id == message.id)
            ).first()
            if found is not None:
                return str(found.id)
            digest = self.store.pin(conn, process)
            instance_id = new_id()
            conn.execute(
                process_instances.insert().values(
                    id=instance_id,
                    process=process.process,
                    definition_hash=digest,
                    trigger_id=message.id,
                    state=process.initial_state,
                    status="running",
                    position=0,
                    attempt=0,
                    data=data,
                    wake_at=now,
                    fence=0,
                    partial=False,
                    created_at=now,
                    updated_at=now,
                    traceparent=context.get(TRACEPARENT),
                    tracestate=context.get(TRACESTATE),
                )
            )
            record_keys(conn, process.process, instance_id, keys)
        return instance_id

    # -- the loop ---------------------------------------------------------------------------------------
    def run_due(self, limit: int | None = None) -> int:
        """Advance due instances until none is due (or ``limit`` claims); return how many were claimed."""
        claimed = 0
        with self.store.hold():  # one connection for the round's transactions
            while limit is None or claimed < limit:
                claim = self.store.claim(self.owner, self.lease, self.clock())
                if claim is None:
                    break
                claimed += 1
                self.advance(claim)
        return claimed

    def advance(self, claim: Claim) -> None:
        """Run the claimed instance's steps until it waits or ends, then give the lease back.

        A step that waits goes on at once instead when its own write saw a cancel request waiting
        (the cancel woke the instance before that write set its timer).
        """
        self._lease_until = self.clock() + timedelta(seconds=self.lease)
        try:
            for _ in range(MAX_STEPS_PER_CLAIM):
                try:
                    if not self._tick(claim) and not _cancel_waiting(claim.seen.row):
                        break
                    if claim.seen.row.status in ENDED:
                        break  # the last step's transaction ended it (and gave the lease back)
                except (LeaseLostError, TransportError):
                    raise  # taken over, or the database is away: nothing was written
                except Exception as exc:  # a bad expression, transform or datum: stop this instance, visibly
                    claim.seen.row = None  # its transaction rolled back: what it returned was not written
                    self._stuck(claim, exc)
                    break
                self.ensure_lease(claim, self.lease / 2)  # renewed when half is used, not on every step
            if claim.seen.row is None or claim.seen.row.lease_owner is not None:
                self.store.release(claim)  # (an end gives the lease back in its own write)
        except LeaseLostError:
            return  # another runner has it now; nothing of ours was written

    def _stuck(self, claim: Claim, error: Exception) -> None:
        """Stop the instance in status ``stuck`` with the error (it would fail the same way on every try)."""
        reason = f"the engine stopped this instance: {type(error).__name__}: {error}"
        with self.store.begin("stuck") as conn:
            self.store.guard(conn, claim, status=STUCK, wake_at=None, error=reason)

    def ensure_lease(self, claim: Claim, seconds: float) -> None:
        """Make the lease last at least ``seconds`` more (before a long call, when half of it is used)."""
        now = self.clock()
        if now + timedelta(seconds=seconds) > self._held_until(claim):
            self.store.extend(claim, seconds + self.lease, now)
            self._lease_until = now + timedelta(seconds=seconds + self.lease)

    def timer_held(self, definition: Process) -> datetime | None:
        """Until when a timer of ``definition`` that came due is held (its replies unread); None: fire it."""
        if self.backlog is None:
            return None
        left = self.backlog.holds(reply_endpoints(definition))
        return None if left is None else self.clock() + timedelta(seconds=left)

    def hold(self, instance_id: str, definition: Process) -> None:
        """After a held timer's write: be woken at the drain, or now if the replies were read meanwhile."""
        if self.backlog is not None and not self.backlog.hold(instance_id, reply_endpoints(definition)):
            wake(self.store, [instance_id], self.clock())

    def lease_ahead(self, claim: Claim, step: StepBase | None) -> dict[str, datetime]:
        """The lease end to write with a move on to ``step`` at once, if that step needs a longer one.

        Before a ``call`` :meth:`ensure_lease` extends the lease past its timeout; written with the move
        that leads to it, the extension needs no transaction of its own (the check before the call
        still extends it should the time between run short).
        """
        if not isinstance(step, CallStep):
            return {}
        now = self.clock()
        if now + timedelta(seconds=step.call.timeout) <= self._held_until(claim):
            return {}
        return {"lease_until": now + timedelta(seconds=step.call.timeout + self.lease)}

    def _held_until(self, claim: Claim) -> datetime:
        """The end of the lease as the claim's last write left it (else as this runner last set it)."""
        row = claim.seen.row
        if row is not None and row.lease_until is not None:
            return row.lease_until  # type: ignore[no-any-return]
        return self._lease_until

    def _tick(self, claim: Claim) -> bool:
        """Run one step (or one undo) of the instance; True to go on at once.

        The row is the one the claim or the last write returned (read only when there is none); the
        inbox is looked at for a cancel only when that row says one waits.
        """
        row = claim.seen.row
        if row is None:
            with self.store.begin("read") as conn:
                row = self.store.instance(conn, claim.instance_id)
            claim.seen.row = row
        if row.fence != claim.fence:
            raise LeaseLostError(f"instance {row.id}: taken over")
        definition = self.store.definition(None, row.definition_hash)
        if _cancel_waiting(row):
            with self.store.begin("cancel") as conn:
                if self._cancel_requested(conn, claim, row, definition):
                    return True
        if row.status in ("compensating", "cancelling"):
            undoing = f"undo@{row.position}"
            with tracer().process_step(row.process, row.id, undoing, "undo", row.traceparent, row.tracestate):
                return undo.step(self, claim, row, definition)
        if row.position >= len(definition.steps):
            undo.end(self, claim, row, definition, undo.ending(row))
            return False
        step = definition.steps[row.position]
        with tracer().process_step(
            row.process, row.id, step.name, step_kind(step), row.traceparent, row.tracestate
        ) as span:
            if isinstance(step, ParallelStep | ForeachStep):
                go_on = branches.tick(self, claim, row, definition, step)
            else:
                go_on = self.kinds.run(claim, top(row, definition), step)
            span.outcome("continued" if go_on else "waiting")
            return go_on

    def _cancel_requested(self, conn: sa.Connection, claim: Claim, row: Any, definition: Process) -> bool:
        """Consume a cancel request left in the inbox: the instance starts undoing (cancelling)."""
        request = take_reply(conn, row.process, row.id, CANCEL, lambda _m: True, f"{row.id}:cancel")
        if request is None:
            return False
        state = row.state
        try:
            check_transition(definition.machine, state, "assessingCancellation")
            state = "assessingCancellation"
        except StateTransitionError:
            pass
        self.store.guard(conn, claim, status="cancelling", state=state, wake_at=self.clock(), error=None)
        return True


def step_kind(step: StepBase) -> str:
    """Return the kind key of ``step`` as routes name it (``CallStep`` -> ``call``, ``SetStateStep`` ->
    ``set_state``)."""
    name = type(step).__name__.removesuffix("Step")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _cancel_waiting(row: Any) -> bool:
    """True when ``row`` (running or alert) was written or read while a cancel request waited for it."""
    return row is not None and row.status in ("running", "alert") and bool(row.cancel_waiting)
