"""The runner: starts instances and advances due ones, one transaction per step, under a lease.

:meth:`Runner.run_due` claims due instances one at a time (:mod:`.store`) and advances each until it
waits (a timer, a reply, a retry's backoff) or ends. Each step commits its result, the next position and
``wake_at`` in one transaction guarded by the fence; a call out happens before that transaction, so a
crash in between redoes only that call, with the same idempotency key. Failure and cancellation undo
the done steps in reverse order (:mod:`.undo`). Not built yet: ``parallel`` and ``foreach`` (a
definition using them is refused at start).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from esb.exceptions import ConfigError, EsbError, StateTransitionError
from esb.expressions import Expression
from esb.message import Message, new_id, utcnow
from esb.model.states import check_transition
from esb.process.definition import Process, idempotency_key, walk
from esb.process.engine import calls, undo
from esb.process.engine.inbox import CANCEL, accepts, bury, request_cancel, take_reply
from esb.process.engine.records import (
    DONE,
    FAILED,
    TIMED_OUT,
    WAITING,
    add_step,
    backoff,
    business_keys,
    close_step,
    count_steps,
    open_step,
    record_keys,
    view,
    with_value,
)
from esb.process.engine.resources import Resources
from esb.process.engine.store import Claim, LeaseLostError, ProcessStore
from esb.process.engine.tables import process_instances
from esb.process.steps import (
    END,
    AwaitStep,
    CallStep,
    CancelStep,
    GotoStep,
    SendStep,
    SetStateStep,
    StepBase,
    WaitStep,
)

_SUPPORTED = (SetStateStep, CallStep, SendStep, AwaitStep, WaitStep, GotoStep, CancelStep)
#: Steps one claim runs at most before the instance goes back to the queue (a goto loop cannot hog).
MAX_STEPS_PER_CLAIM = 100


class Runner:
    """Runs process instances stored in ``store``, calling endpoints through ``resources``."""

    def __init__(
        self,
        store: ProcessStore,
        resources: Resources,
        *,
        owner: str | None = None,
        lease: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.resources = resources
        self.owner = owner or f"runner-{new_id()[:12]}"
        self.lease = lease
        self.clock = clock

    # -- starting ---------------------------------------------------------------------------------------
    def start(self, process: Process, message: Message) -> str:
        """Start an instance of ``process`` for the trigger ``message``; return its id.

        A trigger delivered again (same message id) returns the instance it started the first time.
        """
        unsupported = [
            f"{p} ({type(s).__name__})" for p, s in walk(process.steps) if not isinstance(s, _SUPPORTED)
        ]
        if unsupported:
            raise ConfigError(
                f"process {process.process!r}: the engine does not run these steps yet: "
                f"{', '.join(unsupported)}"
            )
        trigger = process.trigger
        data = (
            self.resources.transform(trigger.transform).apply(message).body
            if trigger.transform
            else message.body
        )
        check_transition(process.machine, None, process.initial_state)
        keys = business_keys(process, data, process.initial_state)
        now = self.clock()
        t = process_instances.c
        with self.store.errors("start"), self.store.engine.begin() as conn:
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
                    created_at=now,
                    updated_at=now,
                )
            )
            record_keys(conn, process.process, instance_id, keys)
        return instance_id

    # -- the loop ---------------------------------------------------------------------------------------
    def run_due(self, limit: int | None = None) -> int:
        """Advance due instances until none is due (or ``limit`` claims); return how many were claimed."""
        claimed = 0
        while limit is None or claimed < limit:
            claim = self.store.claim(self.owner, self.lease, self.clock())
            if claim is None:
                break
            claimed += 1
            self.advance(claim)
        return claimed

    def advance(self, claim: Claim) -> None:
        """Run the claimed instance's steps until it waits or ends, then give the lease back."""
        try:
            for _ in range(MAX_STEPS_PER_CLAIM):
                if not self._tick(claim):
                    break
                self.store.extend(claim, self.lease, self.clock())
            self.store.release(claim)
        except LeaseLostError:
            return  # another runner has it now; nothing of ours was written

    def _tick(self, claim: Claim) -> bool:
        """Run one step (or one undo) of the instance; True to go on at once."""
        with self.store.errors("read"), self.store.engine.begin() as conn:
            row = self.store.instance(conn, claim.instance_id)
            definition = self.store.definition(conn, row.definition_hash)
            if row.fence != claim.fence:
                raise LeaseLostError(f"instance {row.id}: taken over")
            if row.status in ("running", "alert") and self._cancel_requested(conn, claim, row, definition):
                return True
        if row.status in ("compensating", "cancelling"):
            return undo.step(self, claim, row, definition)
        if row.position >= len(definition.steps):
            ending = (
                row.state if row.state in ("completed", "partial", "failed", "cancelled") else "completed"
            )
            undo.end(self, claim, row, definition, ending)
            return False
        step = definition.steps[row.position]
        return self._run(claim, row, definition, step)

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

    # -- the steps --------------------------------------------------------------------------------------
    def _run(self, claim: Claim, row: Any, definition: Process, step: StepBase) -> bool:
        if isinstance(step, SetStateStep):
            return self._set_state(claim, row, definition, step)
        if isinstance(step, GotoStep):
            return self._goto(claim, row, definition, step)
        if isinstance(step, WaitStep):
            return self._wait(claim, row, step)
        if isinstance(step, CallStep | SendStep):
            return self._call(claim, row, definition, step)
        if isinstance(step, AwaitStep):
            return self._await(claim, row, definition, step)
        if isinstance(step, CancelStep):
            return self._cancel(claim, row, definition, step)
        raise ConfigError(f"step {step.name!r}: {type(step).__name__} is not run by the engine yet")

    def _advance(self, conn: sa.Connection, claim: Claim, row: Any, position: int, **values: Any) -> None:
        """Move the instance to ``position``, due at once (in the step's transaction)."""
        self.store.guard(conn, claim, position=position, attempt=0, wake_at=self.clock(), **values)

    def fail(
        self, claim: Claim, row: Any, path: str, error: str, *, attempt: int = 1, key: str | None = None
    ) -> bool:
        """Record the step's failure and start undoing the done steps (the instance will end failed)."""
        with self.store.errors("step"), self.store.engine.begin() as conn:
            self.store.guard(
                conn, claim, status="compensating", wake_at=self.clock(), error=f"step {path}: {error}"
            )
            add_step(conn, row.id, path, FAILED, attempt=attempt, key=key, error=error)
        return True

    def _set_state(self, claim: Claim, row: Any, definition: Process, step: SetStateStep) -> bool:
        target = step.set_state.state
        try:
            check_transition(definition.machine, row.state, target)
        except StateTransitionError as exc:
            return self.fail(claim, row, step.name, str(exc))
        with self.store.errors("step"), self.store.engine.begin() as conn:
            self._advance(conn, claim, row, row.position + 1, state=target)
            add_step(conn, row.id, step.name, DONE, result={"state": target})
        return True

    def _goto(self, claim: Claim, row: Any, definition: Process, step: GotoStep) -> bool:
        spec = step.goto
        keys = business_keys(definition, row.data, row.state)
        jump = spec.when is None or _truthy(
            Expression(spec.when, f"{step.name}.goto.when").search(view(row.data, keys, row.state))
        )
        names = [s.name for s in definition.steps]
        target = (len(names) if spec.step == END else names.index(spec.step)) if jump else row.position + 1
        with self.store.errors("step"), self.store.engine.begin() as conn:
            self._advance(conn, claim, row, target)
            add_step(conn, row.id, step.name, DONE, result={"jumped": jump})
        return True

    def _wait(self, claim: Claim, row: Any, step: WaitStep) -> bool:
        now = self.clock()
        try:
            due = _due(step, row, now)  # used only when the wait begins
        except EsbError as exc:
            return self.fail(claim, row, step.name, str(exc))
        with self.store.errors("step"), self.store.engine.begin() as conn:
            self.store.guard(conn, claim)
            waiting = open_step(conn, row.id, step.name)
            if waiting is None:
                add_step(conn, row.id, step.name, WAITING, deadline=due)
                self.store.guard(conn, claim, wake_at=due)
                return False
            if now < waiting.deadline:
                self.store.guard(conn, claim, wake_at=waiting.deadline)
                return False
            close_step(conn, waiting.id, DONE)
            self._advance(conn, claim, row, row.position + 1)
        return True

    def _call(self, claim: Claim, row: Any, definition: Process, step: CallStep | SendStep) -> bool:
        spec = step.call if isinstance(step, CallStep) else step.send
        if isinstance(step, CallStep) and step.call.timeout >= self.lease:
            self.store.extend(
                claim, step.call.timeout + self.lease, self.clock()
            )  # nobody takes it over mid-call
        key = idempotency_key(row.id, step.name)
        attempt = row.attempt + 1
        keys = business_keys(definition, row.data, row.state)
        try:
            message = calls.request_message(self.resources, row.data, spec.request, key, row.id, keys)
            if isinstance(step, CallStep):
                reply = calls.call(self.resources, step.call.endpoint, message, step.call.timeout)
                if step.call.response is not None:
                    reply = self.resources.transform(step.call.response).apply(reply)
                result = reply.body
            else:
                calls.send(self.resources, step.send.endpoint, message)
                result = None
        except Exception as exc:  # any failure of the call is the step's, recorded with its class
            if calls.retryable(exc) and attempt <= spec.retry.max:
                delay = backoff(spec.retry, attempt)
                with self.store.errors("step"), self.store.engine.begin() as conn:
                    self.store.guard(
                        conn, claim, attempt=attempt, wake_at=self.clock() + timedelta(seconds=delay)
                    )
                    add_step(
                        conn, row.id, step.name, FAILED, attempt=attempt, key=key, error=calls.describe(exc)
                    )
                return False
            return self.fail(claim, row, step.name, calls.describe(exc), attempt=attempt, key=key)
        into = step.call.into if isinstance(step, CallStep) else None
        data = with_value(row.data, into, result) if into else row.data
        with self.store.errors("step"), self.store.engine.begin() as conn:
            self._advance(conn, claim, row, row.position + 1, data=data)
            add_step(conn, row.id, step.name, DONE, attempt=attempt, key=key, result=result)
            record_keys(conn, row.process, row.id, business_keys(definition, data, row.state))
        return True

    def _cancel(self, claim: Claim, row: Any, definition: Process, step: CancelStep) -> bool:
        """Ask another process's instance to cancel; its answer ``{accepted, reason}`` goes ``into``."""
        spec = step.cancel
        keys = business_keys(definition, row.data, row.state)
        value = Expression(spec.value, f"{step.name}.cancel.value").search(view(row.data, keys, row.state))
        if value is None:
            return self.fail(claim, row, step.name, f"cancel.value {spec.value!r} gave no value")
        key = idempotency_key(row.id, step.name)
        request = Message(
            body={"instance": row.id}, id=key, correlation_id=row.id, headers={calls.IDEMPOTENCY_HEADER: key}
        )
        answer = request_cancel(self.store, spec.process, spec.key, str(value), request, now=self.clock())
        outcome = {"accepted": answer.accepted, "reason": answer.reason}
        data = with_value(row.data, spec.into, outcome)
        with self.store.errors("step"), self.store.engine.begin() as conn:
            self._advance(conn, claim, row, row.position + 1, data=data)
            add_step(conn, row.id, step.name, DONE, key=key, result=outcome)
        return True

    def _await(self, claim: Claim, row: Any, definition: Process, step: AwaitStep) -> bool:
        spec = step.await_
        keys = business_keys(definition, row.data, row.state)
        value = keys.get(spec.correlate.key)
        if value is None:
            return self.fail(
                claim, row, step.name, f"business key {spec.correlate.key!r} has no value to correlate by"
            )
        now = self.clock()
        with self.store.errors("step"), self.store.engine.begin() as conn:
            self.store.guard(conn, claim)  # first: holds the instance against a concurrent delivery
            waiting = open_step(conn, row.id, step.name)
            if waiting is None:
                deadline = now + timedelta(seconds=spec.deadline) if spec.deadline is not None else None
                add_step(conn, row.id, step.name, WAITING, deadline=deadline)
                waiting = open_step(conn, row.id, step.name)

            def fits(message: Message) -> bool:
                matched = Expression(spec.correlate.match, f"{step.name}.correlate.match").evaluate(message)
                return str(matched) == value and accepts(step, message)

            reply = take_reply(conn, row.process, value, spec.from_, fits, f"{row.id}:{step.name}")
            if reply is not None:
                return self._replied(conn, claim, row, definition, step, waiting, reply, fits)
            if waiting.deadline is None or now < waiting.deadline:
                self.store.guard(conn, claim, wake_at=waiting.deadline)
                return False
            close_step(conn, waiting.id, TIMED_OUT, error=f"no reply by {waiting.deadline.isoformat()}")
            return self._timed_out(conn, claim, row, definition, step)

    def _replied(
        self,
        conn: sa.Connection,
        claim: Claim,
        row: Any,
        definition: Process,
        step: AwaitStep,
        waiting: Any,
        reply: Message,
        fits: Callable[[Message], bool],
    ) -> bool:
        spec = step.await_
        value = business_keys(definition, row.data, row.state)[spec.correlate.key]
        bury(conn, row.process, [value], spec.from_, fits, f"instance {row.id}: step {step.name!r} is closed")
        if spec.success is not None and not Expression(spec.success, f"{step.name}.success").truthy(reply):
            close_step(conn, waiting.id, FAILED, result=reply.body, error="the reply reports a failure")
            self.store.guard(
                conn,
                claim,
                status="compensating",
                wake_at=self.clock(),
                error=f"step {step.name}: the reply reports a failure",
            )
            return True
        body = self.resources.transform(spec.response).apply(reply).body if spec.response else reply.body
        data = with_value(row.data, spec.into, body) if spec.into else row.data
        close_step(conn, waiting.id, DONE, result=reply.body)
        self._advance(conn, claim, row, row.position + 1, data=data, status="running")
        record_keys(conn, row.process, row.id, business_keys(definition, data, row.state))
        return True

    def _timed_out(
        self, conn: sa.Connection, claim: Claim, row: Any, definition: Process, step: AwaitStep
    ) -> bool:
        """Apply ``on_timeout``: retry (back to the ``reply_to`` send), compensate, fail or alert."""
        policy = step.await_.on_timeout
        action = policy.action
        if action == "retry":
            spent = count_steps(conn, row.id, step.name, TIMED_OUT)  # this timeout included
            if spent <= policy.max_retries and step.await_.reply_to is not None:
                names = [s.name for s in definition.steps]
                self._advance(conn, claim, row, names.index(step.await_.reply_to))
                return True
            action = policy.then
        if action == "alert":
            add_step(
                conn, row.id, step.name, WAITING, deadline=None
            )  # keeps waiting, for a reply or an operator
            self.store.guard(
                conn, claim, status="alert", wake_at=None, error=f"step {step.name}: no reply by its deadline"
            )
            return False
        self.store.guard(
            conn,
            claim,
            status="compensating",
            wake_at=self.clock(),
            error=f"step {step.name}: no reply by its deadline",
        )
        return True


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    return not isinstance(value, str | list | dict) or bool(value)


def _due(step: WaitStep, row: Any, now: datetime) -> datetime:
    """The absolute time a wait ends: now + ``for``, or the time ``until`` reads from the instance."""
    if step.wait.for_ is not None:
        return now + timedelta(seconds=step.wait.for_)
    text = Expression(step.wait.until or "", f"{step.name}.wait.until").search(view(row.data, {}, row.state))
    try:
        due = datetime.fromisoformat(str(text))
    except ValueError:
        raise EsbError(
            f"step {step.name}: wait.until gave {text!r}, expected an ISO 8601 date-time"
        ) from None
    if due.tzinfo is None:
        raise EsbError(f"step {step.name}: wait.until gave {text!r} without a time zone; add Z or +08:00")
    return due
