"""Running one step of a frame: ``set_state``, ``goto``, ``wait``, ``call``, ``send``, ``await``, ``cancel``.

Each returns True when the instance can go on at once, False when it waits (a timer, a reply, a
backoff). A call out happens before the step's transaction; everything the step decides is written in
that one transaction, guarded by the fence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from esb.exceptions import ConfigError, EsbError, StateTransitionError
from esb.expressions import Expression, is_truthy
from esb.message import Message
from esb.model.states import check_transition
from esb.process.definition import idempotency_key
from esb.process.engine import calls, undo
from esb.process.engine.frame import Frame
from esb.process.engine.inbox import accepts, bury, request_cancel, take_reply
from esb.process.engine.records import (
    DONE,
    FAILED,
    TIMED_OUT,
    WAITING,
    add_step,
    backoff,
    close_step,
    count_steps,
    key_values,
    open_step,
    record_keys,
    with_value,
)
from esb.process.engine.store import Claim
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

if TYPE_CHECKING:
    from esb.process.engine.runner import Runner


class StepKinds:
    """The step kinds the engine runs, on a runner's store, resources and clock."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.store = runner.store
        self.frames = runner.frames

    def run(self, claim: Claim, frame: Frame, step: StepBase) -> bool:
        """Run ``step`` of ``frame``; True to go on at once."""
        if isinstance(step, SetStateStep):
            return self.set_state(claim, frame, step)
        if isinstance(step, GotoStep):
            return self.goto(claim, frame, step)
        if isinstance(step, WaitStep):
            return self.wait(claim, frame, step)
        if isinstance(step, CallStep | SendStep):
            return self.call(claim, frame, step)
        if isinstance(step, AwaitStep):
            return self.await_(claim, frame, step)
        if isinstance(step, CancelStep):
            return self.cancel(claim, frame, step)
        raise ConfigError(f"step {step.name!r}: {type(step).__name__} is not run here")

    @contextlib.contextmanager
    def _begin(self, claim: Claim, frame: Frame) -> Iterator[sa.Connection]:
        """The step's transaction; a step whose write moved the instance past its last step ends it there.

        The end (:func:`.undo.write_end`) is then written with the last step, not in a transaction of
        its own, unless the write saw a cancel request waiting (the runner takes it next, as before).
        """
        with self.store.begin("step") as conn:
            yield conn
            row = claim.seen.row
            if undo.past_last(row, frame.definition):
                undo.write_end(self.runner, conn, claim, row, frame.definition, undo.ending(row))

    def fail(
        self, claim: Claim, frame: Frame, path: str, error: str, *, attempt: int = 1, key: str | None = None
    ) -> bool:
        """Record the step's failure; the frame starts undoing its done steps."""
        with self._begin(claim, frame) as conn:
            self.frames.fail(conn, claim, frame, f"step {path}: {error}")
            add_step(conn, frame.row.id, path, FAILED, attempt=attempt, key=key, error=error)
        return True

    def _next(self, conn: sa.Connection, claim: Claim, frame: Frame, **values: Any) -> None:
        self.frames.move(conn, claim, frame, position=frame.position + 1, **values)

    def set_state(self, claim: Claim, frame: Frame, step: SetStateStep) -> bool:
        """Move the instance (or the branch's sub-order) to the state, if its machine allows it."""
        target = step.set_state.state
        if target == "completed" and frame.branch is None and frame.row.partial:
            target = "partial"  # a join ended partial and the process went on (on_partial: complete)
        try:
            check_transition(frame.machine, frame.state, target)
        except StateTransitionError as exc:
            return self.fail(claim, frame, frame.path(step), str(exc))
        with self._begin(claim, frame) as conn:
            self._next(conn, claim, frame, state=target)
            add_step(conn, frame.row.id, frame.path(step), DONE, result={"state": target})
        return True

    def goto(self, claim: Claim, frame: Frame, step: GotoStep) -> bool:
        """Jump within the frame's list when ``when`` holds (``end``: past its last step)."""
        spec = step.goto
        jump = spec.when is None or is_truthy(
            Expression(spec.when, f"{step.name}.goto.when").search(frame.view())
        )
        names = [s.name for s in frame.steps]
        target = (len(names) if spec.step == END else names.index(spec.step)) if jump else frame.position + 1
        with self._begin(claim, frame) as conn:
            self.frames.move(conn, claim, frame, position=target)
            add_step(conn, frame.row.id, frame.path(step), DONE, result={"jumped": jump})
        return True

    def wait(self, claim: Claim, frame: Frame, step: WaitStep) -> bool:
        """A durable timer: the due time is stored on the step row and as ``wake_at``.

        Like an await's deadline, a due time that came while the replies are not read back is held.
        """
        now = self.runner.clock()
        path = frame.path(step)
        try:
            due = _due(step, frame, now)  # used only when the wait begins
        except EsbError as exc:
            return self.fail(claim, frame, path, str(exc))
        with self._begin(claim, frame) as conn:
            self.store.guard(conn, claim)
            waiting = open_step(conn, frame.row.id, path)
            if waiting is None:
                add_step(conn, frame.row.id, path, WAITING, deadline=due)
                self.frames.move(conn, claim, frame, attempt=frame.attempt, wake_at=due)
                return False
            if now < waiting.deadline:
                self.frames.move(conn, claim, frame, attempt=frame.attempt, wake_at=waiting.deadline)
                return False
            held = self.runner.timer_held(frame.definition)
            if held is None:
                close_step(conn, waiting.id, DONE)
                self._next(conn, claim, frame)
                return True
            self.frames.move(conn, claim, frame, attempt=frame.attempt, wake_at=held)
        self.runner.hold(frame.row.id, frame.definition)  # due, but the replies waiting are read first
        return False

    def call(self, claim: Claim, frame: Frame, step: CallStep | SendStep) -> bool:
        """Call (request-reply) or send (one way) with the idempotency key; retry transient failures."""
        spec = step.call if isinstance(step, CallStep) else step.send
        runner = self.runner
        if isinstance(step, CallStep):
            runner.ensure_lease(claim, step.call.timeout)  # nobody takes the instance over mid-call
        path = frame.path(step)
        key = idempotency_key(frame.row.id, path)
        attempt = frame.attempt + 1
        try:
            message = calls.request_message(runner.resources, frame.view(), spec.request, key, frame.row.id)
            if isinstance(step, CallStep):
                reply = calls.call(runner.resources, step.call.endpoint, message, step.call.timeout)
                if step.call.response is not None:
                    reply = runner.resources.transform(step.call.response).apply(reply)
                result = reply.body
            else:
                calls.send(runner.resources, step.send.endpoint, message)
                result = None
        except Exception as exc:  # any failure of the call is the step's, recorded with its class
            if calls.retryable(exc) and attempt <= spec.retry.max:
                wake = runner.clock() + timedelta(seconds=backoff(spec.retry, attempt))
                with self._begin(claim, frame) as conn:
                    self.frames.move(conn, claim, frame, attempt=attempt, wake_at=wake)
                    add_step(
                        conn, frame.row.id, path, FAILED, attempt=attempt, key=key, error=calls.describe(exc)
                    )
                return False
            return self.fail(claim, frame, path, calls.describe(exc), attempt=attempt, key=key)
        into = step.call.into if isinstance(step, CallStep) else None
        with self._begin(claim, frame) as conn:
            data = self._into(conn, claim, frame, into, result)
            add_step(conn, frame.row.id, path, DONE, attempt=attempt, key=key, result=result)
            self._record_keys(conn, claim, frame, data)
        return True

    def _record_keys(self, conn: sa.Connection, claim: Claim, frame: Frame, data: Any) -> None:
        """Record the business keys of ``data`` unless this claim recorded them all already."""
        keys = key_values(frame.definition, data, frame.row.state)
        if keys.items() <= claim.seen.keys.items():
            return
        record_keys(conn, frame.row.process, frame.row.id, keys)
        claim.seen.keys = {**claim.seen.keys, **keys}

    def _into(
        self, conn: sa.Connection, claim: Claim, frame: Frame, into: str | None, value: Any, **values: Any
    ) -> Any:
        """Move past the step with ``value`` at ``into`` (in a foreach: of the item); return the data."""
        if into is None:
            self._next(conn, claim, frame, **values)
            return frame.row.data
        if frame.branch is not None and frame.item is not None:
            item = with_value(frame.item, into, value)
            return self.frames.move(conn, claim, frame, position=frame.position + 1, item=item, **values)
        data = with_value(frame.row.data, into, value)
        self._next(conn, claim, frame, data=data, **values)
        return data

    def cancel(self, claim: Claim, frame: Frame, step: CancelStep) -> bool:
        """Ask another process's instance to cancel; its answer ``{accepted, reason}`` goes ``into``."""
        spec = step.cancel
        path = frame.path(step)
        value = Expression(spec.value, f"{step.name}.cancel.value").search(frame.view())
        if value is None:
            return self.fail(claim, frame, path, f"cancel.value {spec.value!r} gave no value")
        key = idempotency_key(frame.row.id, path)
        request = Message(
            body={"instance": frame.row.id},
            id=key,
            correlation_id=frame.row.id,
            headers={calls.IDEMPOTENCY_HEADER: key},
        )
        answer = request_cancel(
            self.store, spec.process, spec.key, str(value), request, now=self.runner.clock()
        )
        outcome = {"accepted": answer.accepted, "reason": answer.reason}
        with self._begin(claim, frame) as conn:
            self._into(conn, claim, frame, spec.into, outcome)
            add_step(conn, frame.row.id, path, DONE, key=key, result=outcome)
        return True

    def await_(self, claim: Claim, frame: Frame, step: AwaitStep) -> bool:
        """Consume the first matching reply from the inbox, or wait until the deadline (then on_timeout).

        A deadline that came due while the hub's reply endpoints are not read back yet is held
        (:mod:`.backlog`): an answer waiting on the queue is taken first.
        """
        spec = step.await_
        path = frame.path(step)
        value = frame.keys().get(spec.correlate.key)
        if value is None:
            return self.fail(
                claim, frame, path, f"business key {spec.correlate.key!r} has no value to correlate by"
            )
        now = self.runner.clock()
        fits = _fits(step, value, frame.branch.item_key if frame.branch is not None else None)
        with self._begin(claim, frame) as conn:
            self.store.guard(conn, claim)  # first: holds the instance against a concurrent delivery
            waiting = open_step(conn, frame.row.id, path)
            if waiting is None:
                deadline = now + timedelta(seconds=spec.deadline) if spec.deadline is not None else None
                add_step(conn, frame.row.id, path, WAITING, deadline=deadline)
                waiting = open_step(conn, frame.row.id, path)
            reply = take_reply(conn, frame.row.process, value, spec.from_, fits, f"{frame.row.id}:{path}")
            if reply is not None:
                bury(
                    conn,
                    frame.row.process,
                    [value],
                    spec.from_,
                    fits,
                    f"instance {frame.row.id}: step {path!r} is closed",
                )
                if spec.success is not None and not Expression(spec.success, f"{step.name}.success").truthy(
                    reply
                ):
                    close_step(
                        conn, waiting.id, FAILED, result=reply.body, error="the reply reports a failure"
                    )
                    self.frames.fail(conn, claim, frame, f"step {path}: the reply reports a failure")
                    return True
                body = (
                    self.runner.resources.transform(spec.response).apply(reply).body
                    if spec.response
                    else reply.body
                )
                close_step(conn, waiting.id, DONE, result=reply.body)
                data = self._into(conn, claim, frame, spec.into, body)
                if frame.row.status == "alert":  # the reply an operator was alerted about came after all
                    self.store.guard(conn, claim, status="running", error=None)
                self._record_keys(conn, claim, frame, data)
                return True
            if waiting.deadline is None or now < waiting.deadline:
                self.frames.move(conn, claim, frame, attempt=frame.attempt, wake_at=waiting.deadline)
                return False
            held = self.runner.timer_held(frame.definition)
            if held is None:
                close_step(conn, waiting.id, TIMED_OUT, error=f"no reply by {waiting.deadline.isoformat()}")
                return self._timed_out(conn, claim, frame, step)
            self.frames.move(conn, claim, frame, attempt=frame.attempt, wake_at=held)
        self.runner.hold(frame.row.id, frame.definition)  # overdue, but the replies waiting are read first
        return False

    def _timed_out(self, conn: sa.Connection, claim: Claim, frame: Frame, step: AwaitStep) -> bool:
        """Apply ``on_timeout``: retry (back to the ``reply_to`` send), compensate, fail or alert."""
        policy = step.await_.on_timeout
        path = frame.path(step)
        action = policy.action
        if action == "retry":
            spent = count_steps(conn, frame.row.id, path, TIMED_OUT)  # this timeout included
            if spent <= policy.max_retries and step.await_.reply_to is not None:
                names = [s.name for s in frame.steps]
                self.frames.move(conn, claim, frame, position=names.index(step.await_.reply_to))
                return True
            action = policy.then
        if action == "alert":
            add_step(
                conn, frame.row.id, path, WAITING, deadline=None
            )  # keeps waiting for a reply or an operator
            self.frames.move(conn, claim, frame, attempt=frame.attempt, wake_at=None)
            self.store.guard(conn, claim, status="alert", error=f"step {path}: no reply by its deadline")
            return False
        self.frames.fail(conn, claim, frame, f"step {path}: no reply by its deadline")
        return True


def _fits(step: AwaitStep, value: str, item_key: str | None) -> Callable[[Message], bool]:
    """Whether a reply is this await's: its key (and, in a foreach, its item) and its type/when."""
    spec = step.await_
    match = Expression(spec.correlate.match, f"{step.name}.correlate.match")
    item = Expression(spec.correlate.item, f"{step.name}.correlate.item") if spec.correlate.item else None

    def fits(message: Message) -> bool:
        if str(match.evaluate(message)) != value or not accepts(step, message):
            return False
        return item is None or item_key is None or str(item.evaluate(message)) == item_key

    return fits


def _due(step: WaitStep, frame: Frame, now: datetime) -> datetime:
    """The absolute time a wait ends: now + ``for``, or the time ``until`` reads from the instance."""
    if step.wait.for_ is not None:
        return now + timedelta(seconds=step.wait.for_)
    text = Expression(step.wait.until or "", f"{step.name}.wait.until").search(frame.view())
    try:
        due = datetime.fromisoformat(str(text))
    except ValueError:
        raise EsbError(
            f"step {step.name}: wait.until gave {text!r}, expected an ISO 8601 date-time"
        ) from None
    if due.tzinfo is None:
        raise EsbError(f"step {step.name}: wait.until gave {text!r} without a time zone; add Z or +08:00")
    return due
