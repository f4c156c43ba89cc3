"""What this process already wrote, so the hot path skips statements that would change nothing.

After ``received`` the message row exists (its ``seq`` is known) and its business keys are indexed; the
``event`` and ``mark_delivered`` that follow would only repeat ``INSERT ... ON CONFLICT DO NOTHING`` and
look the row's ``seq`` up again. Entries are added
after a commit and dropped after any failed write, so a miss costs one idempotent statement and a stale
hit (a row deleted by another process) costs one failed, retryable write. A message is also dropped when
its journey on the route ends (its final event): the cache holds in-flight messages, not history, so a
process's memory stays flat however many messages pass (``SIZE`` is only a safety cap).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

#: Messages remembered per journal at most: a safety cap over the in-flight messages (a worker holds at
#: most ``broker.prefetch`` unsettled deliveries), for paths that end without a final event of their own
#: (split parts before the last). ~800 bytes an entry with three business keys: at most ~4 MB.
SIZE = 5_000


class Known(NamedTuple):
    """A message row this process wrote or read: its ``seq``, the business keys indexed for it and, when
    this process wrote it, the start of its journey (``received`` or ``replayed``: its latency's start)."""

    seq: int
    keys: frozenset[tuple[str, str]]
    start: datetime | None = None


class Seen:
    """A thread-safe bounded LRU of (route, message id) -> :class:`Known`."""

    def __init__(self, size: int = SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], Known] = OrderedDict()

    def get(self, route: str, message_id: str) -> Known | None:
        """Return the row's seq and the keys indexed for it, or None if unknown here."""
        return self.get_many(route, (message_id,)).get(message_id)

    def add(
        self,
        route: str,
        message_id: str,
        seq: int,
        keys: frozenset[tuple[str, str]],
        start: datetime | None = None,
    ) -> None:
        """Remember the message row's ``seq``, that ``keys`` are indexed and its journey's ``start`` (None:
        the one known, if any) (call after the commit)."""
        self.add_many(route, ((message_id, seq, keys, start),))

    def get_many(self, route: str, message_ids: Iterable[str]) -> dict[str, Known]:
        """Return what :meth:`get` returns for each of ``message_ids`` known here (one lock for all)."""
        found: dict[str, Known] = {}
        items = self._items
        with self._lock:
            for message_id in message_ids:
                known = items.get((route, message_id))
                if known is not None:
                    items.move_to_end((route, message_id))
                    found[message_id] = known
        return found

    def add_many(
        self, route: str, entries: Iterable[tuple[str, int, frozenset[tuple[str, str]], datetime | None]]
    ) -> None:
        """:meth:`add` each ``(message id, seq, keys, start)`` in order (one lock for all)."""
        items = self._items
        with self._lock:
            for message_id, seq, keys, start in entries:
                key = (route, message_id)
                if start is None and (before := items.get(key)) is not None:
                    start = before.start if before.seq == seq else None
                items[key] = Known(seq, keys, start)
                items.move_to_end(key)
            while len(items) > self._size:
                items.popitem(last=False)

    def forget_many(self, route: str, message_ids: Iterable[str]) -> None:
        """:meth:`forget` each of ``message_ids`` (one lock for all)."""
        items = self._items
        with self._lock:
            for message_id in message_ids:
                items.pop((route, message_id), None)

    def __len__(self) -> int:
        """Messages remembered now."""
        with self._lock:
            return len(self._items)

    def forget(self, route: str, message_id: str) -> None:
        """Drop what is known about a message (after a failed write)."""
        self.forget_many(route, (message_id,))
