"""``aggregate``: group messages by key into one, released by size or by time.

The aggregator holds messages in memory together with a *token* for each (the route runner's handle on
the source delivery). A released batch carries the tokens of every message in it, and the runner settles
those deliveries only once the aggregate has been delivered: until then they stay unacknowledged on the
queue, so a crash loses nothing (the parts come back and are aggregated again). The aggregate's id is
derived from its members' ids, so a re-formed identical group is recognised by idempotent receivers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from esb.expressions import Expression
from esb.message import Message


@dataclass
class Batch:
    """A released group: the aggregate message and the tokens of its members."""

    message: Message
    tokens: list[Any]


@dataclass
class _Group:
    first_at: float
    messages: list[Message] = field(default_factory=list)
    tokens: list[Any] = field(default_factory=list)


class Aggregator:
    """Groups messages by ``key`` and releases a group at ``size`` messages or ``timeout`` seconds."""

    def __init__(
        self,
        key: Expression,
        size: int,
        timeout: float,
        into: str = "items",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.size = size
        self.timeout = timeout
        self.into = into
        self.clock = clock
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()

    def offer(self, message: Message, token: Any) -> list[Batch]:
        """Add ``message`` to its group; return the batches this released (by size)."""
        key = str(self.key.evaluate(message))
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(first_at=self.clock())
            group.messages.append(message)
            group.tokens.append(token)
            if len(group.messages) >= self.size:
                del self._groups[key]
                return [self._release(key, group)]
        return []

    def due(self) -> list[Batch]:
        """Return the batches whose time is up."""
        now = self.clock()
        released = []
        with self._lock:
            for key in [k for k, g in self._groups.items() if now - g.first_at >= self.timeout]:
                released.append(self._release(key, self._groups.pop(key)))
        return released

    def drain(self) -> list[Any]:
        """Forget every held group and return its tokens (to give the deliveries back on shutdown)."""
        with self._lock:
            tokens = [t for g in self._groups.values() for t in g.tokens]
            self._groups.clear()
        return tokens

    @property
    def held(self) -> int:
        """How many messages are held right now."""
        with self._lock:
            return sum(len(g.messages) for g in self._groups.values())

    def _release(self, key: str, group: _Group) -> Batch:
        ids = sorted(m.id for m in group.messages)
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:24]
        first = group.messages[0]
        body = {"key": key, "count": len(group.messages), self.into: [m.body for m in group.messages]}
        aggregate = first.derive(body, suffix=f"agg-{digest}", id=f"agg-{digest}")
        aggregate.headers["aggregate-key"] = key
        aggregate.headers["aggregate-size"] = len(group.messages)
        return Batch(aggregate, group.tokens)
