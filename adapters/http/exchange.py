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

#: :meth:`Exchange.wait_turn`'s answers: the request was settled, its thread leads now, or time ran out.
SETTLED, LEAD, TIMED_OUT = "settled", "lead", "timed_out"


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
        self.lead = False
        """True when the inline route's lead was handed to this request's thread (not yet taken up)."""
        self._done = threading.Lock()
        self._done.acquire()  # released by the ack or the reply (or a hand-over of the lead): the wake-up
        self._woken = False  # a release of _done is pending: never release it twice

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
            wake, self._woken = not self._woken, True
        if wake:
            self._done.release()

    def hand_lead(self) -> bool:
        """Wake this request's waiting thread as the inline route's next leader; False when the request
        no longer waits (its caller gave up, or it was settled), and the lead must go elsewhere."""
        with self.lock:
            if self.cancelled or self.settled or self.taken:
                return False
            self.lead = True
            wake, self._woken = not self._woken, True
        if wake:
            self._done.release()
        return True

    def wait_turn(self, timeout: float) -> str:
        """Wait until the request is settled (:data:`SETTLED`) or its thread is handed the lead
        (:data:`LEAD`); after ``timeout``, :data:`TIMED_OUT`, the request cancelled unless already taken."""
        woken = self._done.acquire(True, max(timeout, 0.0))
        with self.lock:
            if not woken and not self._woken:
                if not self.taken:
                    self.cancelled = True
                return SETTLED if self.settled else TIMED_OUT
        if not woken:  # the wake-up raced the timeout: its release is on its way, take it
            self._done.acquire()
        with self.lock:
            self._woken = False
            if self.lead:
                self.lead = False
                return LEAD
            return SETTLED if self.settled else TIMED_OUT

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
        self.leading = False
        """Inline only: True while a server thread leads the route (or the lead is being handed on)."""
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

    def join(self, exchange: Exchange, timeout: float) -> bool | None:
        """Inline: queue ``exchange``; True when the calling thread must lead the route now (nobody
        does), False when it waits for the leader, None when the route is too far behind."""
        with self._mutex:
            if len(self.items) >= self.capacity:
                self._space.wait_for(lambda: len(self.items) < self.capacity, timeout)
                if len(self.items) >= self.capacity:
                    return None
            self.items.append(exchange)
            if self.leading:
                return False
            self.leading = True
            return True

    def take_now(self) -> Delivery | None:
        """Inline: the next live request as a Delivery, at once, or None when none waits."""
        while True:
            with self._mutex:
                if not self.items:
                    return None
                exchange = self.items.popleft()
                if len(self.items) == self.capacity - 1:
                    self._space.notify()
            delivery = exchange.take()
            if delivery is not None:
                return delivery

    def pass_lead(self) -> None:
        """Inline: the leader is done; hand the lead to the thread of the first request still waiting,
        or end it when none waits (a thread that joins later leads)."""
        while True:
            with self._mutex:
                if not self.items:
                    self.leading = False
                    return
                head = self.items[0]
            if head.hand_lead():
                return
            with self._mutex:  # its caller gave up: it is never handed out
                if self.items and self.items[0] is head:
                    self.items.popleft()

    def drain(self) -> list[Exchange]:
        """Remove and return every queued request (the last reader left)."""
        with self._mutex:
            out = list(self.items)
            self.items.clear()
            self._space.notify_all()
        return out
