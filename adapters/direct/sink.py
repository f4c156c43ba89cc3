"""Writing to a direct channel, and request-reply through a registered handler."""

from __future__ import annotations

import queue

from adapters.direct.channels import channel, handler
from adapters.direct.config import DirectEndpoint
from adapters.direct.errors import NoHandlerError
from esb.exceptions import TransportError
from esb.message import Message
from esb.telemetry import carried


class DirectSink:
    """Puts messages on an in-process channel; ``request`` calls the channel's handler."""

    def __init__(self, endpoint: DirectEndpoint) -> None:
        self.endpoint = endpoint
        self._queue: queue.Queue[Message] | None = None

    def connect(self) -> None:
        """Attach to the channel."""
        self._queue = channel(self.endpoint.channel, self.endpoint.capacity)

    def write(self, message: Message) -> None:
        """Put ``message`` on the channel; a full channel for 5 s is a TransportError."""
        assert self._queue is not None, "connect() first"
        try:
            self._queue.put(carried(message), timeout=5.0)
        except queue.Full as exc:
            raise TransportError(f"direct channel {self.endpoint.channel!r} is full") from exc

    def request(self, message: Message, timeout: float) -> Message:
        """Return the registered handler's answer to ``message``."""
        answer = handler(self.endpoint.channel)
        if answer is None:
            raise NoHandlerError(f"no handler registered for direct channel {self.endpoint.channel!r}")
        return answer(message)

    def close(self) -> None:
        """Detach. Safe to call twice."""
        self._queue = None

    def __enter__(self) -> DirectSink:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
