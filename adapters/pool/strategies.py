"""The order in which a pool offers its members for one message (the first admitted one is called).

Each strategy returns every member, best first, so that a message whose first choice is ejected or
fails goes to the next one: round robin rotates, weighted is nginx's smooth weighted round robin,
sticky is rendezvous (highest random weight) hashing of the key (a key keeps its member while it is
healthy and returns to it when it recovers; a member that leaves moves only its own keys), failover is
the configured order. Thread-safe: one strategy object serves every sink of a pool.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections.abc import Sequence
from typing import Protocol

from adapters.pool.config import Member


class Strategy(Protocol):
    """Orders a pool's members for one message."""

    def order(self, key: str | None) -> list[str]:
        """Return every member's endpoint name, the one to try first first."""
        ...


class RoundRobin:
    """Each member in turn; the rest follow in rotation."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.names = [m.endpoint for m in members]
        self._next = itertools.count()
        self._lock = threading.Lock()

    def order(self, key: str | None) -> list[str]:
        """Rotate the members one further than for the previous message."""
        with self._lock:
            start = next(self._next) % len(self.names)
        return self.names[start:] + self.names[:start]


class Weighted:
    """Smooth weighted round robin (nginx): weights 5, 1, 1 give a a b a c a a, never a burst of one."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.weights = {m.endpoint: m.weight for m in members}
        self.total = sum(self.weights.values())
        self._current = dict.fromkeys(self.weights, 0)
        self._lock = threading.Lock()

    def order(self, key: str | None) -> list[str]:
        """Pick the member with the largest current weight; the others follow, largest first."""
        with self._lock:
            for name, weight in self.weights.items():
                self._current[name] += weight
            ranked = sorted(self._current, key=lambda n: -self._current[n])
            self._current[ranked[0]] -= self.total
        return ranked


class Sticky:
    """Rendezvous hashing of the message's key, weighted: the same key always ranks members alike."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.weights = {m.endpoint: m.weight for m in members}

    def order(self, key: str | None) -> list[str]:
        """Rank the members by their score for ``key`` (highest first)."""
        if key is None:
            raise ValueError("a sticky pool needs a key")
        return sorted(self.weights, key=lambda name: -score(key, name, self.weights[name]))


class Failover:
    """The members in the configured order: the first healthy one takes everything."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.names = [m.endpoint for m in members]

    def order(self, key: str | None) -> list[str]:
        """Return the configured order."""
        return list(self.names)


def score(key: str, member: str, weight: int) -> float:
    """Weighted rendezvous score of ``member`` for ``key``: ``-weight / ln(h)``, h uniform in (0, 1)."""
    digest = hashlib.blake2b(f"{key}\x00{member}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 2)
    return -weight / math.log(unit)


STRATEGIES: dict[str, type[RoundRobin | Weighted | Sticky | Failover]] = {
    "round_robin": RoundRobin,
    "weighted": Weighted,
    "sticky": Sticky,
    "failover": Failover,
}


def make_strategy(name: str, members: Sequence[Member]) -> Strategy:
    """Return the strategy called ``name`` over ``members``."""
    return STRATEGIES[name](members)
