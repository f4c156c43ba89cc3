"""Where a route's messages go: its sinks (fixed, fan-out, recipient list) and its dead-letter endpoint.

A fan-out item ``{endpoint, transform}`` has its own mapping: the output is mapped for that endpoint only
(:meth:`Outlet.routed`), before anything of the message is written, so a mapping that fails sends nothing.

Sinks are made per worker thread (connections are not thread-safe), connected on first use, and dropped
after a transport error so the next attempt reconnects. Delivery to each endpoint is recorded in the
journal, and a message already delivered to an endpoint is not written to it again (idempotent receiver).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from esb.config.routes import RecipientList, Route
from esb.exceptions import MessageError, TransportError, error_reason
from esb.expressions import Expression
from esb.message import Message
from esb.telemetry import tracer
from esb.typing import BatchWriter, capability

if TYPE_CHECKING:
    from esb.journal import Journal
    from esb.project import Project
    from esb.runtime.metrics import MeteredJournal

DEAD_LETTER_HEADERS = ("esb-error", "esb-error-class", "esb-error-reason", "esb-route", "esb-failed-at")


class Outlet:
    """The sinks of one route worker."""

    def __init__(self, project: Project, route: Route, journal: Journal | MeteredJournal) -> None:
        self.project = project
        self.route = route
        self.journal = journal
        self._sinks: dict[str, Any] = {}
        self._recipients: Expression | None = None
        if isinstance(route.to, RecipientList):
            self._recipients = Expression(route.to.recipients, f"route {route.id}: to.recipients")
        #: the fixed endpoints (a route's ``to`` does not change while its worker runs)
        self._fixed = route.destinations()
        #: endpoint -> (its sink, whether that sink writes many): a protocol check is ~10 µs
        self._many: dict[str, tuple[Any, bool]] = {}
        self._transforms = {
            endpoint: project.transforms.get(name)
            for endpoint, name in route.destination_transforms().items()
        }

    def destinations(self, message: Message) -> list[str]:
        """Return the endpoints ``message`` goes to (the route's own list when fixed: do not change it)."""
        if self._recipients is None:
            return self._fixed
        assert isinstance(self.route.to, RecipientList)
        named = self._recipients.evaluate(message)
        if isinstance(named, str):
            named = [named]
        if not isinstance(named, list) or not named:
            raise MessageError(f"recipient list {self.route.to.recipients!r} named no endpoint")
        allowed = set(self.route.to.allowed)
        refused = [n for n in named if n not in allowed]
        if refused:
            raise MessageError(f"recipient list names endpoints not allowed for this route: {refused}")
        return [str(n) for n in named]

    def for_endpoint(self, endpoint: str, output: Message) -> Message:
        """Return what ``endpoint`` gets of ``output``: mapped by its own transform, if ``to`` gives one."""
        transform = self._transforms.get(endpoint)
        return output if transform is None else transform.apply(output)

    def routed(self, outputs: list[Message]) -> list[tuple[Message, str]]:
        """Return ``(message, endpoint)`` for every output and each of its destinations, each message as
        that endpoint gets it (a MessageError from a destination's transform is raised before any write)."""
        return [
            (self.for_endpoint(endpoint, output), endpoint)
            for output in outputs
            for endpoint in self.destinations(output)
        ]

    def deliver_all(self, original: Message, outputs: list[Message], *, check: bool = True) -> None:
        """Deliver every output to each of its destinations, then end ``original``'s journey as delivered.

        Each delivery is journaled as it is confirmed, so a retry after a partial fan-out skips the
        endpoints already served. The last delivery's commit also records the route-level outcome.
        ``check=False`` skips the journal look-ups when nothing can have been delivered yet (the first
        attempt of a message seen for the first time). Each endpoint's ``delivered`` event keeps the
        body that endpoint got (after its own transform, when ``to`` gives one).
        """
        pending = self.routed(outputs)
        if not pending:
            self.journal.event(self.route.id, original, "filtered")
            return
        finished = False
        for index, (output, endpoint) in enumerate(pending):
            if check and self.journal.was_delivered(self.route.id, output.id, endpoint):
                continue
            self.write(endpoint, output)
            last = index == len(pending) - 1
            self.journal.mark_delivered(
                self.route.id,
                output,
                endpoint,
                body=output.body_bytes(),
                event=True,
                finish=original if last else None,
            )
            finished = last
        if not finished:
            self.journal.event(self.route.id, original, "delivered")

    def deliver(self, message: Message, *, check: bool = True) -> None:
        """Deliver one message (an aggregate) to its destinations and end it as delivered."""
        self.deliver_all(message, [message], check=check)

    def dead_letter(self, original: Message, error: BaseException) -> str | None:
        """Put the original message, with the error in its headers, on the dead-letter endpoint.

        Returns the endpoint, or None when the route has none (the journal then keeps the message).
        Raises TransportError when the dead-letter endpoint cannot take it: the caller must not settle.
        """
        endpoint = self.route.on_error.dead_letter
        headers = dict(original.headers)
        headers.update(
            {
                "esb-error": str(error)[:2000],
                "esb-error-class": type(error).__name__,
                "esb-error-reason": error_reason(error),
                "esb-route": self.route.id,
                "esb-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        if endpoint is not None:
            self.write(endpoint, original.replace(headers=headers))
        self.journal.event(self.route.id, original, "dead_lettered", endpoint=endpoint, error=error)
        return endpoint

    def writes_many(self, endpoint: str) -> bool:
        """True when ``endpoint``'s sink confirms several messages at once (``BatchWriter``)."""
        sink = self._sink(endpoint)
        known = self._many.get(endpoint)
        if known is None or known[0] is not sink:  # checked once per sink (a new one after a drop)
            known = self._many[endpoint] = (sink, capability(sink, BatchWriter) is not None)
        return known[1]

    def write_many(self, endpoint: str, messages: list[Message]) -> None:
        """Write several messages to an endpoint whose sink confirms them together."""
        assert self.writes_many(endpoint), "writes_many() first"
        sink: BatchWriter = self._sink(endpoint)
        try:
            sink.write_many(messages)  # outside any message's span: each carries its inbound traceparent
        except TransportError:
            self._drop(endpoint)
            raise

    def _sink(self, endpoint: str) -> Any:
        """The connected sink of ``endpoint``, made on first use."""
        sink = self._sinks.get(endpoint)
        if sink is None:
            config = self.project.endpoint(endpoint)
            sink = self.project.adapter_for(endpoint).sink(config, self.project.context(endpoint))
            sink.connect()
            self._sinks[endpoint] = sink
        return sink

    def write(self, endpoint: str, message: Message) -> None:
        """Write to one endpoint, connecting its sink on first use and dropping it after a failure."""
        with tracer().delivery(self.route.id, endpoint, message) as span:
            sink = self._sink(endpoint)
            try:
                sink.write(message)
            except Exception as exc:
                span.outcome("failed", exc)
                if isinstance(exc, TransportError):
                    self._drop(endpoint)
                raise
            span.outcome("delivered")

    def _drop(self, endpoint: str) -> None:
        self._many.pop(endpoint, None)
        sink = self._sinks.pop(endpoint, None)
        if sink is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                sink.close()

    def close(self) -> None:
        """Close every sink."""
        for endpoint in list(self._sinks):
            self._drop(endpoint)
