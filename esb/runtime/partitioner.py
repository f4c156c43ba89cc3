"""Per-key ordering spread over workers and processes: a route's source split into partition queues.

A route with ``ordered_by: EXPR`` and ``partitions: N`` (N > 1) reads its queue in two stages:

1. The **partitioner** (this module) reads the route's source in order (one active consumer across the
   processes: ``single_active_consumer`` on RabbitMQ), works out each message's key with the route's
   steps up to its first transform (the key is usually in the canonical body: ``body.billingAccount.id``),
   and republishes the message unchanged (same bytes, same envelope and id) to partition queue
   ``<queue>.p<i>``, ``i`` a stable hash of the key (:func:`esb.runtime.partitions.partition_of`). The
   source delivery is acked only once the partition queue confirmed it, so nothing is lost; a crash in
   between publishes the message twice and the route's idempotent receiver (the journal) drops the copy.
2. One **route worker per partition**, each reading its partition queue with a single active consumer:
   messages of one key stay in order, different keys run in parallel, and the hub processes split the
   partitions between them (:class:`esb.runtime.partitions.Membership`).

A message whose key cannot be worked out (it does not parse, the mapping fails) goes to partition 0,
where the route's worker fails it the usual way: journaled, dead-lettered with its original bytes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from esb.config.routes import Route, TransformStep, partition_endpoint
from esb.exceptions import EsbError, TransportError
from esb.expressions import Expression
from esb.logging import get_logger
from esb.runtime.partitions import partition_of
from esb.runtime.pipeline import Pipeline, StepBuilder
from esb.typing import Delivery

if TYPE_CHECKING:
    from esb.project import Project

#: Deliveries taken from the source per publish-and-confirm round.
BATCH = 200


def key_pipeline(project: Project, route: Route) -> Pipeline:
    """The route's steps up to and including its first transform: enough to read the ordering key."""
    steps = list(route.steps)
    last = next((i for i, step in enumerate(steps) if isinstance(step, TransformStep)), -1)
    builder = StepBuilder(project, route.id, lambda name: None)
    return builder.build(steps[: last + 1])


class Partitioner(threading.Thread):
    """Moves a partitioned route's source messages to their partition queues, in source order."""

    def __init__(self, project: Project, route: Route) -> None:
        super().__init__(name=f"partitioner-{route.id}", daemon=True)
        if route.ordered_by is None or route.partitions < 2:
            raise ValueError(f"route {route.id} is not partitioned (ordered_by and partitions > 1)")
        self.project, self.route = project, route
        self.partitions = route.partitions
        self.key = Expression(route.ordered_by, f"route {route.id}: ordered_by")
        self.steps = key_pipeline(project, route)
        self.poll = project.settings.runtime.poll_timeout
        self.stop_event = threading.Event()
        self.suspended = threading.Event()
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.moved = 0
        self.source: Any = None
        self.sinks: list[Any] = []
        self.log = get_logger("partitioner").bind(route=route.id)

    # -- keys -------------------------------------------------------------------------------------
    def partition(self, delivery: Delivery) -> int:
        """The partition of a delivery's message (0 when its key cannot be worked out)."""
        try:
            message = delivery.message
            outputs = self.steps(message.replace(headers=dict(message.headers)))
            key = self.key.evaluate(outputs[0]) if outputs else None
        except Exception as exc:  # the route's worker fails it properly, with the journal and the DLQ
            context = delivery.message.log_context()
            self.log.warning("ordering key unreadable: partition 0", error=str(exc), **context)
            return 0
        return partition_of(None if key is None else str(key), self.partitions)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        """Read, partition, publish, ack, until stopped."""
        try:
            self._connect()
            self.ready.set()
            while not self.stop_event.is_set():
                if self.suspended.is_set():  # esb route suspend: the source's read-ahead goes back
                    self._close()
                    self.stop_event.wait(self.poll)
                    continue
                if self.source is None:
                    self._connect()
                batch = self._take()
                if batch:
                    self._move(batch)
        except EsbError as exc:
            self.failure = exc
            self.log.error("partitioner cannot run", error=str(exc))
        except Exception as exc:
            self.failure = exc
            self.log.exception("partitioner failed")
        finally:
            self.ready.set()
            self._close()

    def _take(self) -> list[Delivery]:
        try:
            first = self.source.read(self.poll)
            if first is None:
                return []
            batch = [first]
            while len(batch) < BATCH and (more := self.source.read(0)) is not None:
                batch.append(more)
            return batch
        except TransportError as exc:
            self.log.warning("source lost, reconnecting", error=str(exc))
            self._close()
            self._connect()
            return []

    def _move(self, batch: list[Delivery]) -> None:
        """Publish each partition's messages in source order, confirmed, then ack the whole batch."""
        groups: dict[int, list[Delivery]] = defaultdict(list)
        for delivery in batch:
            groups[self.partition(delivery)].append(delivery)
        try:
            for index, members in sorted(groups.items()):
                self.sinks[index].write_many([d.message for d in members])
        except Exception as exc:  # give every one back: the broker hands them out again, in order
            self.log.warning("partition queue refused: giving the batch back", error=str(exc))
            for delivery in batch:
                delivery.ack(exc)
            self.stop_event.wait(1.0)
            return
        for delivery in batch:
            delivery.ack()
        self.moved += len(batch)

    # -- connections ------------------------------------------------------------------------------
    def _connect(self) -> None:
        attempt = 0
        while not self.stop_event.is_set():
            try:
                source_name = self.route.from_
                self.source = self.project.adapter_for(source_name).source(
                    self.project.endpoint(source_name), self.project.context(source_name)
                )
                self.source.connect()
                for index in range(self.partitions):
                    name = partition_endpoint(source_name, index)
                    adapter, endpoint = self.project.adapter_for(name), self.project.endpoint(name)
                    sink = adapter.sink(endpoint, self.project.context(name))
                    sink.connect()
                    self.sinks.append(sink)
                return
            except TransportError as exc:
                attempt += 1
                self.log.warning("broker unreachable, retrying", error=str(exc), attempt=attempt)
                self._close()
                self.stop_event.wait(min(2.0**attempt, 30.0))

    def _close(self) -> None:
        for endpoint in [self.source, *self.sinks]:
            if endpoint is not None:
                try:
                    endpoint.close()
                except Exception as exc:  # closing a dead connection: nothing left to save
                    self.log.debug("close failed", error=str(exc))
        self.source, self.sinks = None, []

    def stop(self) -> None:
        """Stop after the current batch (its deliveries are acked or given back first)."""
        self.stop_event.set()
