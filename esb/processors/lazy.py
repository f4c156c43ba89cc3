"""A database handle a step opens on its first message and closes with its route."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Closeable(Protocol):
    """What the handle needs of the store or journal it holds."""

    def connect(self) -> None:
        """Open it."""

    def close(self) -> None:
        """Release it; harmless twice."""


T = TypeVar("T", bound=Closeable)


class OpenedOnFirstUse(Generic[T]):
    """``make()``'s object, connected on the first :meth:`get` (from any worker thread, once)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._opened: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The connected object, opened now if this is the first use."""
        with self._lock:
            if self._opened is None:
                opened = self._make()
                opened.connect()
                self._opened = opened
            return self._opened

    def close(self) -> None:
        """Close the object if it was opened; harmless twice (a later get() opens it again)."""
        with self._lock:
            opened, self._opened = self._opened, None
        if opened is not None:
            opened.close()
