"""Reading from a direct channel."""

from __future__ import annotations

import queue

from adapters.direct.channels import channel
from adapters.direct.config import DirectEndpoint
from esb.message import Message
from esb.typing import Delivery


class DirectSource:
    """Reads messages written to an in-process channel; a nacked message is put back."""

    def __init__(self, endpoint: DirectEndpoint) -> None:
        self.endpoint = endpoint
        self._queue: queue.Queue[Message] | None = None

    def connect(self) -> None:
        """Attach to the channel."""
        self._queue = channel(self.endpoint.channel, self.endpoint.capacity)

    def read(self, timeout: float) -> Delivery | None:
        """Return the next message, or None after ``timeout`` seconds."""
        assert self._queue is not None, "connect() first"
        try:
            message = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        target = self._queue

        def settle(error: BaseException | None) -> None:
            if error is not None:
                target.put(message)

        return Delivery(message, settle)

    def close(self) -> None:
        """Detach. Safe to call twice."""
        self._queue = None

    def __enter__(self) -> DirectSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
