"""Timers held while a reply endpoint's backlog is unread: an answer already waiting beats an overdue timer.

A hub that was down (or whose reader lost its broker) comes back to timers that came due meanwhile
and to the answers that reached the reply queues meanwhile. The runners must not fire those timers
before the readers have read what waits on the queues, or an answer that came in time loses to its
own deadline. So each hub keeps a :class:`Backlog`: every reply endpoint is **behind** from the
service's start (and again whenever its reader loses its source) until its reader has **drained** it
once (a read came back empty and the broker holds nothing in flight for another consumer, such as a
killed hub's unexpired leases). While one of a process's reply endpoints is behind, a timer of its
instances (an ``await``'s deadline, a ``wait``'s due time) that has come due is not fired but held:
the instance waits on until the endpoint drains (the reader then wakes every held instance, which
looks at its inbox first) or until ``grace`` seconds after the endpoint fell behind, whichever
comes first. A running hub whose readers are drained holds nothing: its timers fire on time.

The decision is the hub's alone: what counts is what was on the queue when the hub read it back,
never a time the sending system put in the message (its clock may be wrong).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from esb.process.definition import Process, walk
from esb.process.steps import AwaitStep

__all__ = ["Backlog", "reply_endpoints"]


def reply_endpoints(definition: Process) -> frozenset[str]:
    """Return the endpoints the awaits of ``definition`` read (its reply sources)."""
    return frozenset(s.await_.from_ for _, s in walk(definition.steps) if isinstance(s, AwaitStep))


class Backlog:
    """Which reply endpoints this hub has not read back yet, and the instances whose timers wait for them.

    Thread-safe: readers mark their endpoint behind or drained, runners ask whether a timer is held.
    ``grace``: the most seconds a timer is held after its endpoint fell behind.
    """

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self.clock = clock
        self._lock = threading.Lock()
        self._behind: dict[str, float] = {}  # endpoint -> when it fell behind (clock)
        self._held: set[str] = set()

    def behind(self, endpoint: str) -> None:
        """Mark ``endpoint`` unread (at start, or its reader lost its source); an earlier mark is kept."""
        with self._lock:
            self._behind.setdefault(endpoint, self.clock())

    def is_behind(self, endpoint: str) -> bool:
        """True while ``endpoint`` has not been drained since it fell behind."""
        with self._lock:
            return endpoint in self._behind

    def drained(self, endpoint: str) -> list[str]:
        """Mark ``endpoint`` read back; return the held instances to wake (all of them: each looks again)."""
        with self._lock:
            if self._behind.pop(endpoint, None) is None:
                return []
            held, self._held = sorted(self._held), set()
            return held

    def holds(self, endpoints: Iterable[str]) -> float | None:
        """Seconds a timer over ``endpoints`` is still held (the longest grace left); None: it may fire."""
        with self._lock:
            return self._left(endpoints)

    def hold(self, instance_id: str, endpoints: Iterable[str]) -> bool:
        """Remember a held instance for the wake at the drain; False when ``endpoints`` drained meanwhile.

        Called once the instance's held timer is written: on False the caller wakes the instance itself,
        since the drain's wake may have been written before its own write.
        """
        with self._lock:
            if self._left(endpoints) is None:
                return False
            self._held.add(instance_id)
            return True

    def _left(self, endpoints: Iterable[str]) -> float | None:
        now = self.clock()
        left = [since + self.grace - now for e in endpoints if (since := self._behind.get(e)) is not None]
        longest = max(left, default=0.0)
        return longest if longest > 0 else None
