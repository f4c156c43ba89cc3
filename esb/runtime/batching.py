"""The worker's batched path: several deliveries read together, journaled and settled in one commit.

When a source has more deliveries ready than one, the worker takes up to ``runtime.batch_size`` of them
at once: one read of the journal to tell first arrivals from redeliveries, the steps for each, their
outputs written to the sinks (``write_many`` where a sink can confirm several at once), then **one**
journal commit for the batch's arrivals, warnings, deliveries and outcomes (``Journal.journey_many``),
then the acks. Semantics do not change: nothing is acked before its sinks confirmed and its journey is
journaled; a crash before that commit leaves the batch unacked, so the source hands it out again and
the hub processes it again, sending outputs with the same ids (docs/journal.md, "One commit per batch").
Anything unusual (a failure in a step or a sink, a duplicate, a poison or oversized message) leaves the
batch and takes the one-message path, with its retries and dead letters; a batch that failed part-way
journals its members' arrivals and confirmed deliveries first, so the one-message path checks them and
never writes a confirmed delivery again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esb.exceptions import TransportError
from esb.journal.batched import Journey
from esb.journal.rows import Keys, keys_of
from esb.message import Message, utcnow
from esb.processors.drops import detail_of, recording
from esb.telemetry import tracer
from esb.typing import Delivery

if TYPE_CHECKING:
    from esb.runtime.worker import RouteWorker


@dataclass
class Item:
    """One delivery in a batch and what the steps made of it."""

    delivery: Delivery
    message: Message
    outputs: list[Message] = field(default_factory=list)
    sent: list[tuple[Message, str]] = field(default_factory=list)
    failure: BaseException | None = None
    dropped: dict[str, Any] | None = None
    """Why the steps dropped it (esb.processors.drops), journaled with ``filtered``."""
    keys: Keys = frozenset()
    """Its business keys as it arrived (the raw keys), journaled with its arrival."""
    warnings: list[str] | None = None
    """What a transform accepted with a warning (``esb-warnings``), journaled ``transformed``."""
    warned_keys: Keys = frozenset()
    """Its business keys after the steps, indexed with the ``transformed`` event (as ``event`` does)."""

    def journey(self) -> Journey:
        """Return what the journal keeps of this member: its arrival and its end."""
        return Journey(
            self.message,
            self.delivery.delivery_count,
            self.keys,
            "delivered" if self.outputs else "filtered",
            self.sent,
            self.dropped if not self.outputs else None,
            self.warnings,
            self.warned_keys,
        )


def batchable(worker: RouteWorker) -> bool:
    """True when the route can take the batched path (no aggregate, a fixed `to`, a batch size > 1)."""
    route = worker.route
    return (
        worker.batch_size > 1
        and worker.aggregator is None
        and route.to is not None
        and not hasattr(route.to, "recipients")
    )


def write_batch(outlet: Any, items: list[Item]) -> None:
    """Write every output of ``items`` to its endpoints, several at once where the sink allows it.

    Fills each item's ``sent`` with the confirmed ``(output, endpoint)`` pairs. On a failure, the items
    it concerns get it as their ``failure`` (all of a group written at once, else the one message whose
    write failed) and it is raised: the caller sends every unsettled item down the one-message path.
    """
    by_endpoint: dict[str, list[tuple[Item, Message]]] = defaultdict(list)
    for item in items:
        try:
            routed = outlet.routed(item.outputs)  # a destination's own transform may refuse the message
        except Exception as exc:
            item.failure = exc
            raise
        for output, endpoint in routed:
            by_endpoint[endpoint].append((item, output))
    for endpoint, pairs in by_endpoint.items():
        if outlet.writes_many(endpoint):
            try:
                outlet.write_many(endpoint, [output for _, output in pairs])
            except Exception as exc:
                for item, _ in pairs:
                    item.failure = exc
                raise
            for item, output in pairs:
                item.sent.append((output, endpoint))
            continue
        for item, output in pairs:
            try:
                outlet.write(endpoint, output)
            except Exception as exc:
                item.failure = exc
                raise
            item.sent.append((output, endpoint))


Single = tuple[Delivery, bool | None, BaseException | None]


def run_batch(worker: RouteWorker, deliveries: list[Delivery]) -> list[Single]:
    """Process ``deliveries`` together; return ``(delivery, first, failure)`` for those that must take
    the one-message path instead (``first``: whether this was their first ingress, None if not yet
    journaled; ``failure``: what their first attempt in the batch ran into, if anything)."""
    journal, route_id = worker.journal, worker.route.id
    if worker.raw_keys:
        for delivery in deliveries:
            worker.raw_keys(delivery.message)
    arrived_at = utcnow()
    try:
        known = journal.known_ids(route_id, [d.message.id for d in deliveries])
    except TransportError:
        return [(d, None, None) for d in deliveries]
    # The batch is the longest run of deliveries that can go together, in queue order; from the first
    # one that cannot, everything takes the one-message path, still in order (ordered routes rely on it).
    items: list[Item] = []
    rest: list[Single] = []
    for index, delivery in enumerate(deliveries):
        first = delivery.message.id not in known  # not journaled yet, nor earlier in this batch
        known.add(delivery.message.id)
        item = Item(delivery, delivery.message, keys=keys_of(delivery.message))
        if not first or not worker.admissible(delivery) or _prepare(worker, item) is not None:
            rest = [(d, None, None) for d in deliveries[index:]]
            rest[0] = (delivery, None, item.failure)  # its steps already failed once: that was attempt 1
            break
        items.append(item)
    if not items:
        return rest
    try:
        write_batch(worker.outlet, [i for i in items if i.outputs])
        journal.journey_many(route_id, [i.journey() for i in items], arrived_at)
    except Exception:
        return _alone(worker, items) + rest
    for item in items:
        item.delivery.ended("delivered" if item.outputs else "filtered").ack()
    return rest


def _alone(worker: RouteWorker, items: list[Item]) -> list[Single]:
    """Journal the arrivals, warnings and confirmed deliveries of a batch that failed part-way, and
    return its members for the one-message path (which then checks those deliveries, never resends)."""
    journal, route_id = worker.journal, worker.route.id
    try:
        firsts = journal.received_many(route_id, [(i.message, i.delivery.delivery_count) for i in items])
    except TransportError:  # the journal is down: the one-message path journals them when it is back
        return [(i.delivery, None, i.failure) for i in items]
    for item in items:
        if item.warnings:
            worker.journal_safely(item.message, "transformed", detail={"warnings": item.warnings})
    _record_confirmed(worker, items)
    # a member with confirmed deliveries is not "first": the one-message path checks them, never resends
    return [(i.delivery, first and not i.sent, i.failure) for i, first in zip(items, firsts, strict=True)]


def _prepare(worker: RouteWorker, item: Item) -> BaseException | None:
    """Run the route's steps for a batch member: fill ``item`` with its outputs (why a step dropped it,
    what a transform warned about), or return the failure for which it must go alone."""
    message = item.message
    with tracer().route(worker.route.id, message) as span:
        try:
            with recording() as notes:
                item.outputs = worker.pre(message.replace(attempt=1, headers=dict(message.headers)))
        except Exception as exc:  # the one-message path retries or dead-letters it
            span.outcome("retried_alone", exc)
            item.failure = exc
            return exc
        span.outcome("batched")
    warnings = worker.take_warnings(item.outputs)
    if warnings:
        item.warnings, item.warned_keys = warnings, keys_of(message)
    if not item.outputs:
        item.dropped = detail_of(notes)
    return None


def _record_confirmed(worker: RouteWorker, items: list[Item]) -> None:
    """Journal the deliveries that were confirmed before a batch failed, so they are not sent again."""
    for item in items:
        for output, endpoint in item.sent:
            try:
                worker.journal.mark_delivered(
                    worker.route.id, output, endpoint, body=output.body_bytes(), event=True
                )
            except TransportError:
                return  # the journal is down: the one-message path will wait for it
