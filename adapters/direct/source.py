"""Reading from a direct channel."""

from __future__ import annotations

import queue
import threading

from adapters.direct.channels import channel, delivery_count, give_back
from adapters.direct.config import DirectEndpoint
from esb.message import Message
from esb.typing import Delivery


class DirectSource:
    """Reads messages written to an in-process channel; a nacked message is put back.

    Deliveries still unsettled when the source closes are put back too (the next reader gets them), as
    a queue gives back what a closed consumer held; each comes back with its delivery count one higher.
    """

    def __init__(self, endpoint: DirectEndpoint) -> None:
        self.endpoint = endpoint
        self._queue: queue.Queue[Message] | None = None
        self._unsettled: dict[int, tuple[Message, int]] = {}
        self._lock = threading.Lock()

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
        name = self.endpoint.channel
        count = delivery_count(name, message)
        key = id(message)
        with self._lock:
            self._unsettled[key] = (message, count)

        def settle(error: BaseException | None) -> None:
            with self._lock:
                held = self._unsettled.pop(key, None)
            if held is not None and error is not None:  # None: given back already when the source closed
                give_back(name, message, count)

        return Delivery(message, settle, delivery_count=count)

    def close(self) -> None:
        """Detach and give back every unsettled delivery. Safe to call twice."""
        with self._lock:
            unsettled, self._unsettled = list(self._unsettled.values()), {}
        for message, count in unsettled:
            give_back(self.endpoint.channel, message, count)
        self._queue = None

    def __enter__(self) -> DirectSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
