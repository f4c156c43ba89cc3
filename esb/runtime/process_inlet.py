"""What the hub does with a message on a process endpoint: start an instance, feed a reply, or dead-letter it.

An endpoint is a **trigger** endpoint when a process's ``trigger.from`` names it and a **reply**
endpoint when an ``await``'s ``from`` does (it may be both: a reply is looked for first). The reader
(:mod:`esb.runtime.process_service`) calls :meth:`ProcessInlet.take` and acks the delivery once it
returns: by then the store has the instance or the reply, or the message is on the dead-letter
endpoint (``processes.dead_letter``) and journaled ``dead_lettered`` with its reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from esb.codec import json_body
from esb.exceptions import MessageError, TransportError, error_reason
from esb.expressions import Expression
from esb.journal import Journal
from esb.logging import get_logger
from esb.message import Message, utcnow
from esb.process.definition import Process
from esb.process.engine.feed import correlations, feed
from esb.process.engine.inbox import CANCEL, from_row
from esb.process.engine.runner import Runner
from esb.process.engine.store import ProcessStore
from esb.process.engine.tables import process_inbox
from esb.process.loader import ProcessCatalog
from esb.runtime.metrics import ProcessMetrics
from esb.runtime.process_journal import ROUTE_PREFIX, ProcessJournal
from esb.telemetry import tracer
from esb.typing import Sink

if TYPE_CHECKING:
    from esb.project import Project


class UnmatchedMessageError(MessageError):
    """A message on a process endpoint that no process starts on and no instance awaits (or too late)."""

    reason = "unmatched-process-message"


def ignored(processes: Iterable[Process], endpoint: str, message: Message) -> tuple[str, str] | None:
    """Return ``(process, reason)`` of the first ``ignore`` rule that takes ``message`` on ``endpoint``."""
    for process in processes:
        for index, rule in enumerate(process.ignore):
            if rule.from_ != endpoint or (rule.type is not None and message.type != rule.type):
                continue
            if rule.when is None or Expression(rule.when, f"ignore[{index}].when").truthy(message):
                return process.process, rule.reason
    return None


def inlet_route(endpoint: str) -> str:
    """Return the journal route of messages read on a process endpoint (``process:crm.orders``)."""
    return f"{ROUTE_PREFIX}{endpoint}"


class ProcessInlet:
    """Starts instances and feeds replies for the messages of one endpoint."""

    def __init__(
        self,
        endpoint: str,
        catalog: ProcessCatalog,
        runner: Runner,
        notes: ProcessJournal,
        dead_letters: DeadLetters,
        *,
        json: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.triggered = [
            catalog.current(name).process
            for name in catalog.names()
            if catalog.current(name).process.trigger.from_ == endpoint
        ]
        self.awaiting = [d.process for d in catalog.all()]
        self.json = json
        self.runner = runner
        self.notes = notes
        self.dead_letters = dead_letters
        self.log = get_logger("processes").bind(endpoint=endpoint)

    @property
    def store(self) -> ProcessStore:
        """The engine's store."""
        return self.runner.store

    def take(self, message: Message) -> None:
        """Start, feed or dead-letter ``message``; TransportError when the store or journal is away.

        On a ``format: json`` endpoint the body is parsed first (DecodeError when it is not JSON), so
        that triggers' business keys and awaits' ``correlate`` and ``when`` can read it. The whole take is
        one span (``route process:<endpoint>``), the parent of the started instance's step spans.
        """
        with tracer().route(inlet_route(self.endpoint), message):
            self._take(message)

    def _take(self, message: Message) -> None:
        """Start, feed or dead-letter ``message`` (see :meth:`take`)."""
        if self.json and isinstance(message.body, bytes | str):
            message = message.replace(body=json_body(message.body, f"{self.endpoint}: process message"))
        if (rule := ignored(self.awaiting, self.endpoint, message)) is not None:
            self._ignore(message, *rule)
            return
        if correlations(self.awaiting, self.endpoint, message):
            self._reply(message)
            return
        starting = [p for p in self.triggered if p.trigger.type in (None, message.type)]
        if not starting:
            expected = sorted({p.trigger.type or "any" for p in self.triggered}) or ["none: replies only"]
            self.dead_letters.send(
                self.endpoint,
                message,
                UnmatchedMessageError(
                    f"no process starts on a message of type {message.type!r} on {self.endpoint} and no "
                    f"await takes it (trigger types expected: {', '.join(expected)})"
                ),
            )
            return
        for process in starting:
            self._start(process, message)

    def _ignore(self, message: Message, process: str, reason: str) -> None:
        """Ack a message an ``ignore`` rule takes: journaled ``filtered`` with the rule's reason."""
        route = inlet_route(self.endpoint)
        if self.notes.journal.received(route, message):
            detail = {"ignored_by": process, "reason": reason}
            self.notes.journal.event(route, message, "filtered", detail=detail)

    def _start(self, process: Process, message: Message) -> None:
        """Start an instance (the same trigger id twice gives the first instance) and journal it."""
        instance_id = self.runner.start(process, message)
        self.notes.started(process.process, instance_id, message)
        self.log.info("process instance started", process=process.process, instance=instance_id)

    def _reply(self, message: Message) -> None:
        """Deliver a reply to the awaiting instances; dead-letter it when none of them may take it.

        A reply delivered again (the same message id: a redelivery after a crash or after the
        dead-letter endpoint was away) is judged by what the inbox kept: taken or waiting is delivered,
        kept ``dead`` is dead-lettered now, already dead-lettered is only acked.
        """
        outcomes = feed(self.store, self.awaiting, self.endpoint, message)
        route = inlet_route(self.endpoint)
        kept = inbox_statuses(self.store, message.id)
        if "waiting" in outcomes.values() or kept & {"waiting", "consumed"}:
            if self.notes.journal.received(route, message):
                detail = {"fed": outcomes}
                self.notes.journal.event(route, message, "delivered", detail=detail)
            return
        if kept == {DEAD_LETTERED}:
            return
        reasons = dead_reasons(self.store, message.id) or ["no await takes it"]
        self.dead_letters.send(
            self.endpoint, message, UnmatchedMessageError(f"reply not applied: {'; '.join(reasons)}")
        )
        mark_dead_lettered(self.store, [message.id])


#: The inbox status of a dead reply once it is on the dead-letter endpoint (or journaled, without one).
DEAD_LETTERED = "dead_lettered"


def inbox_statuses(store: ProcessStore, message_id: str) -> set[str]:
    """Return the status the inbox keeps for ``message_id`` (a set: empty when it keeps none)."""
    i = process_inbox.c
    with store.errors("read inbox"), store.engine.connect() as conn:
        return {r.status for r in conn.execute(sa.select(i.status).where(i.message_id == message_id))}


def dead_reasons(store: ProcessStore, message_id: str) -> list[str]:
    """Return why the inbox refused ``message_id`` (its ``dead`` rows' reasons, with their process)."""
    i = process_inbox.c
    with store.errors("read inbox"), store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.process, i.reason).where(i.message_id == message_id, i.status == "dead")
        ).all()
    return [f"{r.process}: {r.reason}" for r in rows]


def mark_dead_lettered(store: ProcessStore, message_ids: list[str]) -> None:
    """Record that the dead replies ``message_ids`` were dead-lettered (the sweep skips them from now)."""
    i = process_inbox.c
    with store.errors("mark inbox"), store.engine.begin() as conn:
        conn.execute(
            process_inbox.update()
            .where(i.message_id.in_(message_ids), i.status == "dead")
            .values(status=DEAD_LETTERED)
        )


def sweep_dead_replies(
    store: ProcessStore, dead_letters: DeadLetters, older_than: float, limit: int = 100
) -> int:
    """Dead-letter the replies the inbox marked dead after they were taken, and return how many.

    A reply for a branch's await that already closed waits in the inbox until the instance leaves the
    foreach, and is only then marked dead; a reply whose first dead-lettering failed is kept dead too.
    Rows received more than ``older_than`` seconds ago only, so the reader that is dead-lettering a
    reply of its own right now is not raced. Each is put on the dead-letter endpoint with the inbox's
    reason under the ``process:<endpoint>`` route it came on, then marked dead-lettered.
    """
    i = process_inbox.c
    since = utcnow() - timedelta(seconds=older_than)
    with store.errors("sweep inbox"), store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.message_id, i.reply_name, i.message)
            .where(i.status == "dead", i.received_at < since, i.reply_name != CANCEL)
            .order_by(i.id)
            .limit(limit)
        ).all()
    done: list[str] = []
    for row in rows:
        reasons = dead_reasons(store, row.message_id)
        error = UnmatchedMessageError(f"reply not applied: {'; '.join(reasons)}")
        dead_letters.send(row.reply_name, from_row(row.message), error)
        mark_dead_lettered(store, [row.message_id])
        done.append(row.message_id)
    return len(done)


class DeadLetters:
    """Puts unmatched process messages on ``processes.dead_letter`` with the error headers, and journals them.

    The headers are the route outlet's (``esb-error``, ``esb-error-class``, ``esb-error-reason``,
    ``esb-route``: the ``process:<endpoint>`` route, ``esb-failed-at``); with no dead-letter endpoint
    set, the journal alone keeps the message (as for a route without one).
    """

    def __init__(
        self, project: Project, journal: Journal, metrics: ProcessMetrics, endpoint: str | None
    ) -> None:
        self.project = project
        self.journal = journal
        self.metrics = metrics
        self.endpoint = endpoint
        self._sink: Sink | None = None
        self._lock = threading.Lock()  # one sink, written by every reader and the sweep: one at a time
        self.log = get_logger("processes")

    def send(self, endpoint: str, message: Message, error: BaseException) -> None:
        """Dead-letter ``message`` read on ``endpoint``; TransportError when it could not be written."""
        route = inlet_route(endpoint)
        headers = dict(message.headers)
        headers.update(
            {
                "esb-error": str(error)[:2000],
                "esb-error-class": type(error).__name__,
                "esb-error-reason": error_reason(error),
                "esb-route": route,
                "esb-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        if self.endpoint is not None:
            with self._lock:
                self._write(message.replace(headers=headers))
        self.journal.received(route, message)
        self.journal.event(route, message, "dead_lettered", endpoint=self.endpoint, error=error)
        self.metrics.unmatched.labels(endpoint).inc()
        self.log.error("dead-lettered", reason=error_reason(error), error=str(error), endpoint=self.endpoint)

    def _write(self, message: Message) -> None:
        """Write to the dead-letter endpoint through its adapter's sink (kept; dropped on a failure)."""
        assert self.endpoint is not None
        project = self.project
        try:
            if self._sink is None:
                sink: Sink = project.adapter_for(self.endpoint).sink(
                    project.endpoint(self.endpoint), project.context(self.endpoint)
                )
                sink.connect()
                self._sink = sink
            self._sink.write(message)
        except TransportError:
            self._drop()
            raise

    def close(self) -> None:
        """Close the sink. Safe to call twice."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        """Close the sink and forget it (the caller holds the lock)."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()
