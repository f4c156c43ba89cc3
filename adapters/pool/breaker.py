"""Passive health of a pool's members: one circuit breaker per member, whose open state is an ejection.

States: ``closed`` (called), ``open`` (ejected until a time), ``half_open`` (its ejection is over: one
trial call at a time decides). ``failures`` consecutive failures open a closed breaker, unless the pool
already has its largest share of members ejected; a failed trial opens it again for longer. The ejection
time is ``base_ejection`` times the member's ejection count (capped by ``max_ejection``); the count
drops by one for each ``base_ejection`` the member then stays closed.

Thread-safe (one lock per pool, never held during a call); the clock is injected (tests move it). A
listener is told every change of state: ``on_change(member, old, new)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from adapters.pool.config import PassiveHealth

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: How a member may be called now: normally, as the half-open trial, or in panic (every member ejected).
Admission = Literal["call", "trial", "panic"]
Clock = Callable[[], float]
Listener = Callable[[str, str, str], None]


@dataclass
class MemberState:
    """What the pool knows about one member (read it through :meth:`PoolBreakers.snapshot`)."""

    name: str
    state: str = CLOSED
    consecutive: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    closed_since: float = 0.0
    trial_running: bool = False
    last_error: str | None = None
    held_in: bool = False
    """True while the member failed enough to be ejected but the pool's ejected share is full."""
    calls: int = 0
    failed: int = 0
    ejected_total: int = 0


class PoolBreakers:
    """The breakers of one pool's members, shared by every sink of the pool in this process."""

    def __init__(
        self,
        members: Sequence[str],
        options: PassiveHealth,
        *,
        clock: Clock = time.monotonic,
        on_change: Listener | None = None,
    ) -> None:
        self.options = options
        self.clock = clock
        self.on_change = on_change
        self._lock = threading.Lock()
        now = clock()
        self._members = {name: MemberState(name, closed_since=now) for name in members}
        #: how many members may be ejected at once (at least one)
        self.max_ejected = max(1, int(options.max_ejected_share * len(members) + 1e-9))

    def admit(self, name: str) -> Admission | None:
        """Return how ``name`` may be called now, or None (ejected, or its trial is running elsewhere).

        ``trial`` reserves the member's one trial call: report its end with ``success``, ``failure`` or
        ``release``.
        """
        with self._lock:
            member = self._members[name]
            if member.state == CLOSED:
                return "call"
            if member.state == OPEN and self.clock() >= member.ejected_until:
                self._move(member, HALF_OPEN)
            if member.state == HALF_OPEN and not member.trial_running:
                member.trial_running = True
                return "trial"
            return None

    def success(self, name: str) -> None:
        """A call to ``name`` was answered: reset its failures; a trial (or panic call) closes it."""
        with self._lock:
            member = self._members[name]
            member.calls += 1
            member.consecutive = 0
            member.held_in = False
            member.trial_running = False
            if member.state != CLOSED:
                member.closed_since = self.clock()
                self._move(member, CLOSED)

    def failure(self, name: str, error: str) -> bool:
        """A call to ``name`` failed with ``error``; return True when this ejected it."""
        with self._lock:
            member = self._members[name]
            member.calls += 1
            member.failed += 1
            member.consecutive += 1
            member.last_error = error
            if member.state == HALF_OPEN:
                self._eject(member)
                return True
            if member.state == CLOSED and member.consecutive >= self.options.failures:
                if self._ejected() >= self.max_ejected:
                    member.held_in = True
                    return False
                self._eject(member)
                return True
            return False

    def release(self, name: str) -> None:
        """A reserved trial ended without telling anything (the message itself was bad): free the slot."""
        with self._lock:
            self._members[name].trial_running = False

    def all_ejected(self) -> bool:
        """True when no member is closed (the pool is in panic mode for calls that find none to admit)."""
        with self._lock:
            return all(m.state != CLOSED for m in self._members.values())

    def snapshot(self) -> list[MemberState]:
        """Return a copy of every member's state, in the pool's order."""
        with self._lock:
            now = self.clock()
            for member in self._members.values():
                if member.state == OPEN and now >= member.ejected_until:
                    self._move(member, HALF_OPEN)
            return [MemberState(**vars(m)) for m in self._members.values()]

    def ejection_time(self, ejections: int) -> float:
        """Return how long the ``ejections``-th ejection of a member lasts."""
        return min(self.options.base_ejection * ejections, self.options.max_ejection)

    def _ejected(self) -> int:
        return sum(1 for m in self._members.values() if m.state != CLOSED)

    def _eject(self, member: MemberState) -> None:
        now = self.clock()
        if member.state == CLOSED:  # healthy time since the last ejection takes ejections off the count
            healthy = int((now - member.closed_since) / self.options.base_ejection)
            member.ejections = max(0, member.ejections - healthy)
        member.ejections += 1
        member.ejected_total += 1
        member.ejected_until = now + self.ejection_time(member.ejections)
        member.trial_running = False
        member.held_in = False
        self._move(member, OPEN)

    def _move(self, member: MemberState, state: str) -> None:
        old, member.state = member.state, state
        if old != state and self.on_change is not None:
            self.on_change(member.name, old, state)
