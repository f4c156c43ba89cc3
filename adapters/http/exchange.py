"""One request waiting on a server thread for the route that handles it (a thread-safe rendezvous)."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from esb.message import Message
from esb.typing import Delivery


@dataclass
class Exchange:
    """A request handed to a route: settled by the route's ack, answered by its respond.

    ``taken`` is set when a route worker read it; a request that times out before that is ``cancelled``
    and never handed out (the caller got a Timeout fault and may send it again).
    """

    message: Message
    one_way: bool
    done: threading.Event = field(default_factory=threading.Event)
    reply: Message | None = None
    error: BaseException | None = None
    acked: bool = False
    outcome: str | None = None
    """How the route ended the request (``Delivery.outcome``): delivered, filtered or dead_lettered."""
    failure: BaseException | None = None
    taken: bool = False
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    delivery: Delivery | None = None

    def _on_ack(self, error: BaseException | None) -> None:
        self.error = error
        if self.delivery is not None:
            self.outcome, self.failure = self.delivery.outcome, self.delivery.failure
        self.acked = True
        self.done.set()

    def _on_respond(self, reply: Message) -> None:
        self.reply = reply
        self.done.set()

    def take(self) -> Delivery | None:
        """Return the Delivery for a route worker, or None when the caller already gave up."""
        with self.lock:
            if self.cancelled:
                return None
            self.taken = True
        respond = None if self.one_way else self._on_respond
        self.delivery = Delivery(self.message, self._on_ack, respond=respond)
        return self.delivery

    def wait(self, timeout: float) -> bool:
        """Wait for the route; on timeout, cancel unless already taken. True when settled or answered."""
        if self.done.wait(timeout):
            return True
        with self.lock:
            if not self.taken:
                self.cancelled = True
        return self.done.is_set()


class Inbox:
    """The queue between the server threads and the route workers of one (listener, operation)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.queue: queue.Queue[Exchange] = queue.Queue(maxsize=capacity)
        self.readers = 0
        self.lock = threading.Lock()

    def put(self, exchange: Exchange, timeout: float) -> bool:
        """Queue ``exchange``; False when the route is too far behind."""
        try:
            self.queue.put(exchange, timeout=timeout)
        except queue.Full:
            return False
        return True

    def get(self, timeout: float) -> Delivery | None:
        """Return the next live request as a Delivery, or None after ``timeout``."""
        try:
            exchange = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        return exchange.take()

    def drain(self) -> list[Exchange]:
        """Remove and return every queued request (the last reader left)."""
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out
