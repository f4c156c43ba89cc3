"""Replay in this process, for routes whose source another process cannot publish to.

A SOAP listener or a batch folder cannot be handed a message from ``esb replay``'s process, so the
route is run here: a :class:`~esb.runtime.worker.RouteWorker` is built for the route (today's steps,
sinks and error policy) but never started as a thread, and its ``handle()`` is given one
:class:`~esb.typing.Delivery` of the original ingress bytes, exactly as a source would hand it out. The
message therefore goes through the same admission (the journal's duplicate check lets it in because a
``replayed`` event was journaled first), steps, redelivery with backoff, sinks (every one again: the
``esb-replay`` header) and dead-lettering as in the hub, and the journal records it the same way.

Refused: request-reply routes (no ``to``: the caller who would get the answer is gone), and routes with
an ``aggregate`` step (the other parts of the aggregate are not in this process).
"""

from __future__ import annotations

import threading

from esb.exceptions import ConfigError, TransportError
from esb.journal import Journal
from esb.message import Message
from esb.project import Project
from esb.runtime.worker import RouteWorker, Stopping
from esb.typing import Delivery

#: The longest one in-process replay may take (redelivery backoff included) before it is given up.
MAX_SECONDS = 600.0


def refusal(project: Project, route_id: str) -> str | None:
    """Return why ``route_id`` cannot be replayed in this process, or None when it can."""
    route = project.route(route_id)
    if route.to is None:
        return (f"route {route_id} is request-reply (no 'to'): its answer went to the caller of "
                f"{route.from_}, and a replay has no caller to answer; ask the caller to send it again")
    return None


class InProcessRun:
    """Runs journaled messages through their route in this process (one idle RouteWorker per route)."""

    def __init__(self, project: Project, journal: Journal, *, max_seconds: float = MAX_SECONDS) -> None:
        self.project = project
        self.journal = journal
        self.max_seconds = max_seconds
        self._workers: dict[str, RouteWorker] = {}

    def _worker(self, route_id: str) -> RouteWorker:
        worker = self._workers.get(route_id)
        if worker is None:
            problem = refusal(self.project, route_id)
            if problem is not None:
                raise ConfigError(problem)
            worker = RouteWorker(self.project, self.project.route(route_id), self.journal)
            if worker.aggregator is not None:
                raise ConfigError(f"route {route_id} aggregates messages: not replayed in this process")
            self._workers[route_id] = worker
        return worker

    def run(self, route_id: str, message: Message) -> BaseException | None:
        """Process ``message`` on ``route_id`` to its end; return None when it was settled (delivered,
        filtered or dead-lettered: the journal says which), else the error it was given back with."""
        worker = self._worker(route_id)
        settled: list[BaseException | None] = []
        delivery = Delivery(message, settled.append)
        timer = threading.Timer(self.max_seconds, worker.stop_event.set)
        timer.daemon = True
        timer.start()
        try:
            worker.handle(delivery)
        except Stopping:
            pass
        finally:
            timer.cancel()
        if worker.stop_event.is_set():  # timed out: a fresh worker next time
            self._close(self._workers.pop(route_id))
        if not settled:
            return TransportError(f"not settled within {self.max_seconds:g}s")
        return settled[0]

    @staticmethod
    def _close(worker: RouteWorker) -> None:
        worker.pre.close()
        worker.post.close()
        worker.outlet.close()

    def close(self) -> None:
        """Close every route's steps and sinks."""
        for worker in self._workers.values():
            self._close(worker)
        self._workers.clear()
