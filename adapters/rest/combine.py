"""Group commit of the listener's writes by flat combining: no writer thread, no extra hand-over.

A server thread with an order to store queues it and takes the store's lock. If its order was written
while it waited (another thread took the whole queue), it returns that outcome at once; else it takes
the whole queue and writes it, its own order and those queued behind the lock meanwhile, in one
transaction. Alone, a thread writes its order by itself (one statement, as without combining); under
contention the threads that would have waited on the lock one after another are answered by one
commit, and a second order in a transaction costs ~10-20 µs of SQLite's CPU less than in its own
(measured: docs/rest.md, *Speed*). Every order is still durable before its thread returns: no thread
returns before the transaction holding its order committed, and a failed transaction fails every order
in it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class _Pending(Generic[T, R]):
    """One queued item and, once written, its outcome."""

    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class Combiner(Generic[T, R]):
    """Writes queued items in batches under ``lock`` with ``write`` (items -> their outcomes, in order)."""

    def __init__(self, lock: threading.Lock, write: Callable[[list[T]], list[R]]) -> None:
        self.lock = lock
        self.write = write
        self._mutex = threading.Lock()
        self._queue: list[_Pending[T, R]] = []
        self.batches = 0
        """Batches written so far (with :attr:`items`, the bench's figure of how much was combined)."""
        self.items = 0

    def submit(self, item: T) -> R:
        """Write ``item`` (in a batch with whatever else is queued) and return its outcome once committed;
        raise what the batch's write raised."""
        pending: _Pending[T, R] = _Pending(item)
        with self._mutex:
            self._queue.append(pending)
        combined = False
        with self.lock:
            if not pending.done:
                with self._mutex:
                    batch, self._queue = self._queue, []
                combined = True
                self._write(batch)
        if pending.error is not None:  # another thread's batch failed: its own copy of the error
            raise pending.error if combined else copy.copy(pending.error)
        return cast(R, pending.result)  # (set with done)

    def _write(self, batch: list[_Pending[T, R]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = self.write([p.item for p in batch])
        except BaseException as exc:
            for p in batch:
                p.error, p.done = exc, True
            return
        for p, result in zip(batch, results, strict=True):
            p.result, p.done = result, True
