"""What the hub does with a message on a process endpoint: start an instance, feed a reply, or dead-letter it.

An endpoint is a **trigger** endpoint when a process's ``trigger.from`` names it and a **reply**
endpoint when an ``await``'s ``from`` does (it may be both: a reply is looked for first). The reader
(:mod:`esb.runtime.process_service`) calls :meth:`ProcessInlet.take` and acks the delivery once it
returns: by then the store has the instance or the reply, or the message is on the dead-letter
endpoint (``processes.dead_letter``) and journaled ``dead_lettered`` with its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from esb.codec import json_body
from esb.exceptions import MessageError, TransportError, error_reason
from esb.journal import Journal
from esb.logging import get_logger
from esb.message import Message
from esb.process.definition import Process
from esb.process.engine.feed import correlations, feed
from esb.process.engine.runner import Runner
from esb.process.engine.store import ProcessStore
from esb.process.engine.tables import process_inbox
from esb.process.loader import ProcessCatalog
from esb.runtime.metrics import ProcessMetrics
from esb.runtime.process_journal import ROUTE_PREFIX, ProcessJournal
from esb.typing import Sink

if TYPE_CHECKING:
    from esb.project import Project


class UnmatchedMessageError(MessageError):
    """A message on a process endpoint that no process starts on and no instance awaits (or too late)."""

    reason = "unmatched-process-message"


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
        that triggers' business keys and awaits' ``correlate`` and ``when`` can read it.
        """
        if self.json and isinstance(message.body, bytes | str):
            message = message.replace(body=json_body(message.body, f"{self.endpoint}: process message"))
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

    def _start(self, process: Process, message: Message) -> None:
        """Start an instance (the same trigger id twice gives the first instance) and journal it."""
        instance_id = self.runner.start(process, message)
        self.notes.started(process.process, instance_id, message)
        self.log.info("process instance started", process=process.process, instance=instance_id)

    def _reply(self, message: Message) -> None:
        """Deliver a reply to the awaiting instances; dead-letter it when none of them may take it."""
        outcomes = feed(self.store, self.awaiting, self.endpoint, message)
        route = inlet_route(self.endpoint)
        if any(o in ("waiting", "duplicate") for o in outcomes.values()):
            if self.notes.journal.received(route, message):
                detail = {"fed": outcomes}
                self.notes.journal.event(route, message, "delivered", detail=detail)
            return
        reasons = self._dead_reasons(message) or ["no await takes it"]
        self.dead_letters.send(
            self.endpoint, message, UnmatchedMessageError(f"reply not applied: {'; '.join(reasons)}")
        )

    def _dead_reasons(self, message: Message) -> list[str]:
        """Return why the inbox refused ``message`` (its ``dead`` rows' reasons)."""
        i = process_inbox.c
        with self.store.errors("read inbox"), self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(i.process, i.reason).where(i.message_id == message.id, i.status == "dead")
            ).all()
        return [f"{r.process}: {r.reason}" for r in rows]


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
            self.close()
            raise

    def close(self) -> None:
        """Close the sink. Safe to call twice."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()
