"""The small contracts between the hub's parts, as ``typing.Protocol``s.

Named Source/Sink so they never collide with kombu's Consumer/Producer. Constructors store configuration
only; I/O begins in ``connect``; ``close`` may be called twice; both are context managers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from esb.message import Message


@runtime_checkable
class Ack(Protocol):
    """Settles one delivery: ``ack()`` commits it, ``ack(error)`` gives it back for redelivery.

    A second call raises :class:`AlreadySettledError` (kombu's ``Message`` refuses a second ack too).
    """

    def ack(self, error: BaseException | None = None) -> None:
        """Commit (no error) or give back (error) the delivery."""
        ...


class AlreadySettledError(RuntimeError):
    """A delivery was acked or nacked twice."""


class Delivery:
    """A message read from a source together with the means to settle it.

    ``delivery_count`` is how many times the source has handed this message out (1 the first time); a
    route dead-letters a message that keeps coming back (a poison message that crashes the hub).
    ``respond`` is set by request-reply sources (a SOAP listener): the route's result is its answer.
    """

    __slots__ = ("_ack", "_settled", "delivery_count", "message", "respond")

    def __init__(
        self,
        message: Message,
        ack: Callable[[BaseException | None], None],
        *,
        delivery_count: int = 1,
        respond: Callable[[Message], None] | None = None,
    ) -> None:
        self.message = message
        self._ack = ack
        self._settled = False
        self.delivery_count = delivery_count
        self.respond = respond

    @property
    def settled(self) -> bool:
        """True once ``ack`` has been called."""
        return self._settled

    def ack(self, error: BaseException | None = None) -> None:
        """Commit (no error) or give back (error) the delivery; refuses a second call."""
        if self._settled:
            raise AlreadySettledError(f"message {self.message.id} was already settled")
        self._settled = True
        self._ack(error)


@runtime_checkable
class Source(Protocol):
    """Where messages come in: a queue, a SOAP listener, a folder of batch files."""

    def connect(self) -> None:
        """Open connections; called once before the first ``read``."""
        ...

    def read(self, timeout: float) -> Delivery | None:
        """Return the next delivery, or None when nothing arrived within ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Release everything; unsettled deliveries come back later. Safe to call twice."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where messages go out. ``write`` returns only once the peer confirmed (or raises)."""

    def connect(self) -> None:
        """Open connections; called once before the first ``write``."""
        ...

    def write(self, message: Message) -> None:
        """Deliver ``message``; raise TransportError (retryable) or RemoteError on failure."""
        ...

    def close(self) -> None:
        """Release everything. Safe to call twice."""
        ...


@runtime_checkable
class Requester(Protocol):
    """A sink that can also answer: used by the enrich step and request-reply routes."""

    def connect(self) -> None:
        """Open connections."""
        ...

    def request(self, message: Message, timeout: float) -> Message:
        """Send ``message`` and return the peer's reply."""
        ...

    def close(self) -> None:
        """Release everything. Safe to call twice."""
        ...


class Processor(Protocol):
    """One route step: a message in, zero or more messages out (an empty list means filtered)."""

    def __call__(self, message: Message) -> list[Message]:
        """Process ``message``."""
        ...


@runtime_checkable
class Adapter(Protocol):
    """A protocol adapter: makes sources and sinks for the endpoints of its kind."""

    name: str

    def endpoint_model(self) -> type[Any]:
        """Return the pydantic model that an endpoint of this adapter is validated against."""
        ...

    def source(self, endpoint: Any, context: Any) -> Source:
        """Return an unconnected source for ``endpoint``."""
        ...

    def sink(self, endpoint: Any, context: Any) -> Sink:
        """Return an unconnected sink for ``endpoint``."""
        ...
