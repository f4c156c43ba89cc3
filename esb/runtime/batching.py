"""The worker's batched path: several deliveries read together, journaled and settled in few commits.

When a source has more deliveries ready than one, the worker takes up to ``runtime.batch_size`` of them
at once: one journal commit for their ingress, the steps for each, their outputs written to the sinks
(``write_many`` where a sink can confirm several at once), one journal commit for all their outcomes,
then the acks. Semantics do not change: nothing is acked before its sinks confirmed and its outcome is
journaled. Anything unusual (a failure in a step or a sink, a duplicate, a poison or oversized message)
leaves the batch and takes the one-message path, with its retries and dead letters; a partly written
batch is safe there too, because writes to sinks are journaled per endpoint only once confirmed and a
message re-sent after a failed batch is recognised downstream by its id.

A batch goes through three calls: :func:`prepare_batch` (arrivals' commit, steps), :func:`finish_batch`
(writes, confirms, outcomes' commit: the batch's waits) and :func:`conclude_batch` (acks).
:func:`run_batch` makes them in a row; the route worker may instead run a batch's ``finish_batch`` in a
thread while it prepares the next one (:mod:`esb.runtime.overlap`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esb.exceptions import TransportError
from esb.message import Message
from esb.processors.drops import detail_of, recording
from esb.telemetry import tracer
from esb.typing import Delivery

if TYPE_CHECKING:
    from esb.runtime.outlet import Outlet
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


@dataclass
class Prepared:
    """A batch after its arrivals' commit and its steps: the members written together (``items``), and
    those that must take the one-message path after them, in queue order (``rest``)."""

    items: list[Item]
    rest: list[Single]


def run_batch(worker: RouteWorker, deliveries: list[Delivery]) -> list[Single]:
    """Process ``deliveries`` together; return ``(delivery, first, failure)`` for those that must take
    the one-message path instead (``first``: whether this was their first ingress, None if not yet
    journaled; ``failure``: what their first attempt in the batch ran into, if anything)."""
    prepared = prepare_batch(worker, deliveries)
    if not prepared.items:
        return prepared.rest
    return conclude_batch(prepared.items, finish_batch(worker, prepared.items)) + prepared.rest


def prepare_batch(worker: RouteWorker, deliveries: list[Delivery]) -> Prepared:
    """Journal the arrivals of ``deliveries`` (one commit) and run the route's steps for the batch.

    Nothing leaves the hub here: the members' outputs are written by :func:`finish_batch`.
    """
    journal, route_id = worker.journal, worker.route.id
    if worker.raw_keys:
        for delivery in deliveries:
            worker.raw_keys(delivery.message)
    try:
        firsts = journal.received_many(route_id, [(d.message, d.delivery_count) for d in deliveries])
    except TransportError:
        return Prepared([], [(d, None, None) for d in deliveries])
    # The batch is the longest run of deliveries that can go together, in queue order; from the first
    # one that cannot, everything takes the one-message path, still in order (ordered routes rely on it).
    items: list[Item] = []
    rest: list[Single] = []
    for index, (delivery, first) in enumerate(zip(deliveries, firsts, strict=True)):
        outputs, failure, why = (
            _prepare(worker, delivery) if first and worker.admissible(delivery) else (None, None, None)
        )
        if outputs is None:
            rest = [(d, f, None) for d, f in zip(deliveries[index:], firsts[index:], strict=True)]
            rest[0] = (delivery, first, failure)  # its steps already failed once: that was attempt 1
            break
        items.append(Item(delivery, delivery.message, outputs, dropped=why))
    return Prepared(items, rest)


def finish_batch(worker: RouteWorker, items: list[Item], outlet: Outlet | None = None) -> list[Single] | None:
    """Write the members' outputs (confirmed) and journal their outcomes in one commit; settle nothing.

    Returns None when every member ended, else every member as a :data:`Single` for the one-message
    path (the deliveries already confirmed journaled, so that path checks them and never resends).
    Touches only the journal and ``outlet`` (the worker's by default), never the source: it may run in a
    thread of its own, with that thread's outlet (:mod:`esb.runtime.overlap`), while the worker prepares
    the next batch.
    """
    try:
        write_batch(outlet or worker.outlet, [i for i in items if i.outputs])
        worker.journal.settle_many(
            worker.route.id,
            [(i.message, "delivered" if i.outputs else "filtered", i.sent) for i in items],
            {i.message.id: i.dropped for i in items if i.dropped is not None and not i.outputs},
        )
    except Exception:
        _record_confirmed(worker, items)
        # a member with confirmed deliveries is not "first": the one-message path checks them, never resends
        return [(i.delivery, not i.sent, i.failure) for i in items]
    return None


def conclude_batch(items: list[Item], failed: list[Single] | None) -> list[Single]:
    """Ack the members of a finished batch (their outcomes are journaled, their outputs confirmed), or
    return them for the one-message path when :func:`finish_batch` did not end them."""
    if failed is not None:
        return failed
    for item in items:
        item.delivery.ended("delivered" if item.outputs else "filtered").ack()
    return []


def _prepare(
    worker: RouteWorker, delivery: Delivery
) -> tuple[list[Message] | None, BaseException | None, dict[str, Any] | None]:
    """Run the route's steps for a batch member: its outputs (and why a step dropped it, if one did),
    or None and why it must go alone."""
    message = delivery.message
    with tracer().route(worker.route.id, message) as span:
        try:
            with recording() as notes:
                outputs: list[Message] = worker.pre(message.replace(attempt=1, headers=dict(message.headers)))
        except Exception as exc:  # the one-message path retries or dead-letters it
            span.outcome("retried_alone", exc)
            return None, exc, None
        span.outcome("batched")
    worker.journal_warnings(message, outputs)
    return outputs, None, None if outputs else detail_of(notes)


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
