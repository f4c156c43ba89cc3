"""A route run inline: its steps, journal and sinks run on the threads its source's requests arrive on.

A listener's request reaches its route through a hand-over: the server thread queues it and sleeps, a
route worker wakes, runs the route, and its ack wakes the server thread. On a quiet machine those
wake-ups cost more than the listener's own work (docs/soap.md, *The listener without the hand-over*).
A source that receives on threads of its own (``InlineSource``: the SOAP listener with ``listen.inline``)
can instead run the route on them: the route worker still connects it, follows suspend, resume and stop,
and closes it, but never reads it; the source's threads call :meth:`InlineRoute.lead` instead.

One thread leads at a time (the source arranges it, ``adapters/http/inline.py``), and :meth:`lead` runs
everything waiting then as the route worker runs a backlog: one batch, one journal commit for the
arrivals and one for the outcomes, the acks after both (``esb.runtime.batching``). The guarantees are the
worker's, by the worker's own code: each thread leads through a :class:`RouteWorker` of its own (never
started as a thread), with its own steps and sinks (connections are not thread-safe, and the embedded
transport's refuse another thread): the journaled arrival before any output leaves, the ack after the
outputs are confirmed and the outcome journaled, retries with backoff, dead letters, replays.

Routes with an aggregate (their parts wait for a timer only the worker's loop runs) and routes that
write to a file-writing endpoint (a batch sink must exist once in a process) always hand over
(:func:`runs_inline`). Each leading thread holds its own sink connections: up to ``listen.threads`` per
destination, where the hand-over's worker holds one (two while a batch is in flight).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from esb.exceptions import TransportError
from esb.logging import get_logger
from esb.runtime.batching import batchable
from esb.runtime.worker import RouteWorker, Stopping
from esb.typing import Delivery, FileWriter, InlineSource, capability

if TYPE_CHECKING:
    from esb.config.routes import Route
    from esb.journal import Journal
    from esb.project import Project
    from esb.runtime.metrics import MeteredJournal

__all__ = ["InlineRoute", "offer_inline"]


def offer_inline(worker: RouteWorker) -> bool:
    """Offer ``worker``'s route to its freshly connected source to run inline; True when it accepted
    (the worker then reads nothing from it). For a route that cannot run inline the source is told to
    hand over (None)."""
    source = capability(worker.source, InlineSource)
    if source is None:
        return False
    if not runs_inline(worker):
        return source.run_inline(None)  # (after a reload that made the route ineligible: hand over)
    route = InlineRoute(worker.project, worker.route, worker.journal, worker.source_name)
    route.batches = batchable(worker)
    return source.run_inline(route)


def runs_inline(worker: RouteWorker) -> bool:
    """True when the route may run on its source's threads: no aggregate (its parts wait for the
    worker's timer), and no endpoint it writes to (destinations, dead letters) of an adapter that writes
    files (``FileWriter``: such a sink spools, schedules and elects a leader, and must exist once in a
    process, while every leading thread makes sinks of its own)."""
    route, project = worker.route, worker.project
    if worker.aggregator is not None:
        return False
    written = [*route.destinations(), *([route.on_error.dead_letter] if route.on_error.dead_letter else [])]
    return all(capability(project.adapter_for(str(e)), FileWriter) is None for e in written)


class _Reader:
    """The leader's view of its source: what is waiting now, never a wait (``read`` ignores its timeout)."""

    def __init__(self) -> None:
        self.read_now: Callable[[], Delivery | None] = lambda: None
        self.handed: list[Delivery] = []

    def read(self, timeout: float) -> Delivery | None:
        """The next waiting delivery, or None at once."""
        delivery = self.read_now()
        if delivery is not None:
            self.handed.append(delivery)
        return delivery


class _Leader(RouteWorker):
    """A route worker run by a source's thread, one batch per :meth:`run_batch` (never started)."""

    overlap_batches = False  # everything it reads is settled before run_batch returns

    def __init__(
        self, project: Project, route: Route, journal: Journal | MeteredJournal, source: str
    ) -> None:
        super().__init__(project, route, journal, source=source)
        self.reader = _Reader()
        self.source = self.reader
        self.busy = False

    def run_batch(self, read: Callable[[], Delivery | None]) -> None:
        """Run the route for what ``read`` hands out now; whatever it cannot settle is given back."""
        reader = self.reader
        reader.read_now, reader.handed = read, []
        try:
            first = reader.read(0.0)
            if first is not None:
                self._handle_ready(first, backlog=True)
        except Stopping:
            pass
        except Exception:
            self.log.exception("inline route failed: its requests are given back")
        finally:
            for delivery in reader.handed:
                if not delivery.settled:
                    delivery.ack(TransportError("the route stopped before it settled the request"))
            reader.read_now, reader.handed = lambda: None, []

    def close(self) -> None:
        """Close its steps and sinks (on another thread than theirs, a connection may refuse: left to GC)."""
        self.stop_event.set()
        for part in (self.pre, self.post, self.outlet):
            with contextlib.suppress(Exception):
                part.close()


class InlineRoute:
    """A route run on its source's threads: :meth:`lead` runs it for the deliveries waiting now."""

    def __init__(
        self, project: Project, route: Route, journal: Journal | MeteredJournal, source: str
    ) -> None:
        self.project = project
        self.route = route
        self.journal = journal
        self.source = source
        self.closed = False
        self.batches = True
        """True when a lead runs the requests waiting as one batch (``batchable``: set by the offer)."""
        self._local = threading.local()
        self._leaders: list[_Leader] = []
        self._lock = threading.Lock()
        self.log = get_logger("inline").bind(route=route.id)

    def lead(self, read: Callable[[], Delivery | None]) -> None:
        """Run the route on the calling thread for what ``read`` hands out now (the requests waiting:
        one batch), settling each; after :meth:`close`, give them back instead."""
        leader = self._leader()
        if leader is None:
            while (delivery := read()) is not None:
                delivery.ack(TransportError("the route stopped"))
            return
        try:
            leader.run_batch(read)
        finally:
            with self._lock:
                leader.busy = False
                closing = self.closed
            if closing:
                leader.close()

    def _leader(self) -> _Leader | None:
        """This thread's leader, made on its first lead; None once closed."""
        leader: _Leader | None = getattr(self._local, "leader", None)
        if leader is None:
            if self.closed:
                return None
            leader = _Leader(self.project, self.route, self.journal, self.source)
            self._local.leader = leader
            with self._lock:
                self._leaders.append(leader)
        with self._lock:
            if self.closed:
                return None
            leader.busy = True
        return leader

    def same(self, other: object) -> bool:
        """True when ``other`` runs the same route of the same loaded project (a second worker's offer)."""
        return (
            isinstance(other, InlineRoute)
            and other.project is self.project
            and other.route.id == self.route.id
        )

    def close(self) -> None:
        """Stop: a lead in progress ends at its next wait (what it has not settled is given back) and
        closes its own leader; idle leaders are closed now."""
        with self._lock:
            self.closed = True
            idle = [leader for leader in self._leaders if not leader.busy]
            for leader in self._leaders:
                leader.stop_event.set()
            self._leaders.clear()
        for leader in idle:
            leader.close()
