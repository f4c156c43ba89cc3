"""A sync's route, run in this process from its ``sync`` step on: the path resync and repair send through.

The route that declares ``sync: {name: N}`` is split at that step. Changes from an extract go through the
route **from the sync step on** (the same judging, compare-and-set, exclude rule, target mapping and
endpoint as live traffic); deletes and repairs decided here go through the steps **after** it, with the
``sync-action`` header set. Both run as an idle :class:`~esb.runtime.worker.RouteWorker` of a derived
route ``<route>-resync`` (the journal, redelivery with backoff, dead-lettering and the outlet are the
route's own; the derived id keeps ``esb replay`` from publishing a canonical body to the live source).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from esb.config.steps.sync import SyncStep
from esb.exceptions import ConfigError, TransportError
from esb.message import Message
from esb.processors.sync import Syncer
from esb.runtime.batching import batchable, run_batch
from esb.runtime.worker import RouteWorker, Stopping
from esb.typing import Delivery

if TYPE_CHECKING:
    from esb.config.routes import Route
    from esb.journal import Journal
    from esb.project import Project

#: Suffix of the derived route's id in the journal.
SUFFIX = "-resync"
#: The longest a batch of sends may take (redelivery backoff included) before it is given up.
MAX_SECONDS = 600.0


def find_sync(project: Project, name: str) -> tuple[Route, int]:
    """Return the route declaring sync ``name`` and the index of its (top-level) sync step."""
    for route in project.routes:
        for index, step in enumerate(route.steps):
            if isinstance(step, SyncStep) and step.sync.name == name:
                return route, index
    known = sorted(s.sync.name for r in project.routes for s in r.steps if isinstance(s, SyncStep))
    raise ConfigError(f"no route declares sync {name!r} (known: {', '.join(known) or 'none'})")


class SyncPath:
    """The sync's route from its sync step (``judged``) and after it (``decided``), in this process."""

    def __init__(self, project: Project, journal: Journal, name: str) -> None:
        route, index = find_sync(project, name)
        if route.to is None:
            raise ConfigError(f"route {route.id} (sync {name}) has no 'to': nothing to resync to")
        self.route = route
        self.index = index
        self.id = f"{route.id}{SUFFIX}"
        self.judged = self._worker(project, journal, route, route.steps[index:])
        self.decided = self._worker(project, journal, route, route.steps[index + 1 :])
        syncer = self.judged.pre.processors[0]
        assert isinstance(syncer, Syncer)
        self.syncer = syncer

    def _worker(self, project: Project, journal: Journal, route: Route, steps: list[Any]) -> RouteWorker:
        derived = route.model_copy(
            update={"id": self.id, "steps": steps, "raw_business_keys": {}, "ordered_by": None}
        )
        worker = RouteWorker(project, derived, journal)
        if worker.aggregator is not None:
            raise ConfigError(f"route {route.id} aggregates after its sync step: not resynced")
        return worker

    def send(self, worker: RouteWorker, messages: list[Message]) -> list[str]:
        """Run ``messages`` through ``worker`` (batched when the route allows); return each one's outcome
        (``delivered``, ``filtered``, ``dead_lettered``, or ``failed: <error>`` when it was given back)."""
        if not messages:
            return []
        outcomes: dict[str, str] = {}
        deliveries = [Delivery(m, self._settle(outcomes, m.id)) for m in messages]
        timer = threading.Timer(MAX_SECONDS, worker.stop_event.set)
        timer.daemon = True
        timer.start()
        try:
            if batchable(worker) and len(deliveries) > 1:
                for single, first, failure in run_batch(worker, deliveries):
                    worker.handle(single, first=first, failure=failure)
            else:
                for delivery in deliveries:
                    worker.handle(delivery)
        except Stopping:
            worker.stop_event.clear()
        finally:
            timer.cancel()
        result = []
        for delivery in deliveries:
            if delivery.settled and delivery.message.id in outcomes:
                result.append(outcomes[delivery.message.id] or str(delivery.outcome))
            else:
                result.append(f"failed: {TransportError(f'not settled within {MAX_SECONDS:g}s')}")
        return result

    @staticmethod
    def _settle(outcomes: dict[str, str], message_id: str) -> Any:
        def ack(error: BaseException | None) -> None:
            outcomes[message_id] = "" if error is None else f"failed: {error}"

        return ack

    def close(self) -> None:
        """Close both workers' steps and sinks."""
        for worker in (self.judged, self.decided):
            worker.pre.close()
            worker.post.close()
            worker.outlet.close()
