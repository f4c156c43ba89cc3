"""One request waiting on a server thread for the route that handles it (a thread-safe rendezvous).

Every request crosses two threads: the server thread that parsed it puts it in the :class:`Inbox` and
waits; a route worker takes it, and its ack (or respond) wakes the server thread. Both waits are single
locks, not ``queue.Queue`` and ``threading.Event`` (a Condition, a new lock and several Python calls per
wait and per wake-up): the server thread sleeps on its exchange's own lock, which the route's ack releases
(one wake-up), and a route worker sleeps only when the inbox is empty, so a put wakes at most one sleeping
worker and the requests that arrive while it works are taken without any (one wake-up per batch).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from esb.message import Message
from esb.typing import Delivery


class Exchange:
    """A request handed to a route: settled by the route's ack, answered by its respond.

    ``taken`` is set when a route worker read it; a request that times out before that is ``cancelled``
    and never handed out (the caller got a Timeout fault and may send it again).
    """

    def __init__(self, message: Message, one_way: bool) -> None:
        self.message = message
        self.one_way = one_way
        self.reply: Message | None = None
        self.error: BaseException | None = None
        self.acked = False
        self.outcome: str | None = None
        """How the route ended the request (``Delivery.outcome``): delivered, filtered or dead_lettered."""
        self.failure: BaseException | None = None
        self.taken = False
        self.cancelled = False
        self.settled = False
        """True once acked or answered (the server thread's wait is over)."""
        self.lock = threading.Lock()
        self.delivery: Delivery | None = None
        self._done = threading.Lock()
        self._done.acquire()  # released once, by the ack or the reply: the server thread's wake-up

    def _on_ack(self, error: BaseException | None) -> None:
        self.error = error
        if self.delivery is not None:
            self.outcome, self.failure = self.delivery.outcome, self.delivery.failure
        self.acked = True
        self._settle()

    def _on_respond(self, reply: Message) -> None:
        self.reply = reply
        self._settle()

    def _settle(self) -> None:
        with self.lock:
            if self.settled:  # a reply, then the ack: the server thread was woken by the first
                return
            self.settled = True
        self._done.release()

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
        if self._done.acquire(True, max(timeout, 0.0)):
            return True
        with self.lock:
            if not self.taken:
                self.cancelled = True
            return self.settled


class Inbox:
    """The queue between the server threads and the route workers of one (listener, operation)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.items: deque[Exchange] = deque()
        self.readers = 0
        self._mutex = threading.Lock()
        self._sleepers: deque[threading.Lock] = deque()  # route workers waiting for a request
        self._space = threading.Condition(self._mutex)  # a full inbox: the server threads wait here

    def put(self, exchange: Exchange, timeout: float) -> bool:
        """Queue ``exchange``; False when the route is too far behind."""
        with self._mutex:
            if len(self.items) >= self.capacity:
                self._space.wait_for(lambda: len(self.items) < self.capacity, timeout)
                if len(self.items) >= self.capacity:
                    return False
            self.items.append(exchange)
            sleeper = self._sleepers.popleft() if self._sleepers else None
        if sleeper is not None:
            sleeper.release()
        return True

    def get(self, timeout: float) -> Delivery | None:
        """Return the next live request as a Delivery, or None after ``timeout``."""
        deadline: float | None = None
        while True:
            with self._mutex:
                if self.items:
                    exchange = self.items.popleft()
                    if len(self.items) == self.capacity - 1:
                        self._space.notify()
                    break
                if deadline is None:
                    deadline = time.monotonic() + timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                sleeper = threading.Lock()
                sleeper.acquire()
                self._sleepers.append(sleeper)
            if not sleeper.acquire(True, remaining):  # timed out: unless a put woke it meanwhile
                with self._mutex:
                    if sleeper in self._sleepers:
                        self._sleepers.remove(sleeper)
        return exchange.take()

    def drain(self) -> list[Exchange]:
        """Remove and return every queued request (the last reader left)."""
        with self._mutex:
            out = list(self.items)
            self.items.clear()
            self._space.notify_all()
        return out
