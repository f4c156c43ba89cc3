"""One batch in flight: a batch's waits (confirms, the outcomes' commit) overlapped with the next batch.

A route worker on the batched path waits twice per batch after its steps: for the broker's publisher
confirms and for the journal's commit of the outcomes. :class:`InFlight` runs that part of one batch
(:func:`esb.runtime.batching.finish_batch`) in a thread of its own while the worker reads the next batch,
journals its arrivals and runs its steps; the worker then collects the batch in flight
(:meth:`InFlight.collect`: acks, or the members for the one-message path) before it hands the next one
over. So at most one batch is in flight, batches leave the hub in queue order, and every guarantee of
the sequential path holds (docs/journal.md, "A batch's commits and its crash windows"):

- an ack only after the member's outcome is journaled and its outputs confirmed: the acks are sent by
  the worker's thread, after ``finish_batch`` returned;
- the next batch's outputs leave only after the batch before it ended (acked, or its leftovers taken
  through the one-message path): what the next batch did meanwhile is its arrivals' commit and its
  steps, which send nothing;
- a SIGKILL leaves at most two batches unacked: the one in flight in one of the sequential path's
  windows, the next one journaled as received with nothing sent (a redelivery takes the one-message path).

The thread writes through an outlet of its own (its own sink connections, made, used and closed in that
thread: connections are not thread-safe, and the embedded transport's SQLite connections refuse another
thread outright); the one-message path keeps the worker's. A batch's outputs are confirmed before the
worker's one-message work starts, so the two outlets never write at the same time.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from esb.exceptions import TransportError
from esb.runtime.batching import Item, Prepared, Single, conclude_batch, finish_batch
from esb.runtime.outlet import Outlet

if TYPE_CHECKING:
    from esb.runtime.worker import RouteWorker


def overlappable(worker: RouteWorker) -> bool:
    """True when every destination's sink confirms several messages at once (``BatchWriter``, the queue
    sinks): the confirm waits worth overlapping, on sinks that are plain connections, so a second one in
    the thread costs a connection. Other sinks are never made twice (a batch file's sink has schedules
    and a leader election of its own): their routes run each batch to its end."""
    return all(worker.outlet.writes_many(endpoint) for endpoint in worker.route.destinations())


class InFlight:
    """At most one prepared batch whose writes and outcomes' commit run in a thread of its own."""

    def __init__(self, worker: RouteWorker) -> None:
        self.worker = worker
        self._executor: ThreadPoolExecutor | None = None
        self._batch: Prepared | None = None
        self._future: Future[list[Single] | None] | None = None
        self._outlet: Outlet | None = None  # the thread's own, made there on first use

    @property
    def busy(self) -> bool:
        """True while a batch was handed over and not collected yet."""
        return self._batch is not None

    @property
    def done(self) -> bool:
        """True when no batch is in flight or the one in flight has finished (collect it now)."""
        return self._future is None or self._future.done()

    def start(self, batch: Prepared) -> None:
        """Start writing ``batch`` (its ``rest`` must be empty) and journaling its outcomes."""
        if self._batch is not None:
            raise RuntimeError("a batch is already in flight: collect it first")
        if batch.rest:
            raise ValueError("a batch with members for the one-message path cannot go in flight")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"{self.worker.name}-settle")
        self._future = self._executor.submit(self._finish, batch.items)
        self._batch = batch

    def _finish(self, items: list[Item]) -> list[Single] | None:
        """(In the thread) write and settle ``items`` through the thread's outlet."""
        if self._outlet is None:
            worker = self.worker
            self._outlet = Outlet(worker.project, worker.route, worker.journal)
        return finish_batch(self.worker, items, self._outlet)

    def _close_outlet(self) -> None:
        """(In the thread) close the thread's sinks."""
        outlet, self._outlet = self._outlet, None
        if outlet is not None:
            outlet.close()

    def collect(self) -> list[Single]:
        """Wait for the batch in flight; ack its members, or return them for the one-message path."""
        batch, future = self._batch, self._future
        if batch is None or future is None:
            return []
        self._batch = self._future = None
        return conclude_batch(batch.items, future.result())

    def give_back(self) -> None:
        """Wait for the batch in flight and settle it without the one-message path (the worker stops):
        members that ended are acked, the others given back to the source (they come again)."""
        for delivery, _first, _failure in self.collect():
            if not delivery.settled:
                delivery.ack(TransportError("hub stopping"))

    def close(self) -> None:
        """Give back the batch in flight, if any, and end the thread."""
        try:
            self.give_back()
        finally:
            executor, self._executor = self._executor, None
            if executor is not None:
                executor.submit(self._close_outlet).result()
                executor.shutdown(wait=True)
