"""One route worker: a thread that reads from the route's source, runs the steps, delivers, settles.

A message ends ``delivered``, ``filtered`` or ``dead_lettered`` and the journal says which. Permanent
failures (MessageError) are dead-lettered at once; transient ones are retried in place with backoff up
to the route's limit, then dead-lettered. The source's delivery is acked only after the sinks (or the
dead-letter endpoint) confirmed; when even that fails, the delivery is given back and comes again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from esb.config.routes import Route
from esb.exceptions import BodyTooLargeError, EsbError, MessageError, TransportError
from esb.logging import get_logger
from esb.message import Message
from esb.processors.aggregate import Aggregator, Batch
from esb.processors.drops import detail_of, recording
from esb.runtime.backoff import FINAL_STATES, is_retryable, redelivery_delay
from esb.runtime.batching import Single, batchable, conclude_batch, finish_batch, prepare_batch
from esb.runtime.outlet import Outlet
from esb.runtime.overlap import InFlight, overlappable
from esb.runtime.pipeline import Pipeline, build_pipeline
from esb.runtime.rawkeys import RawKeys
from esb.telemetry import tracer
from esb.typing import Breakable, Delivery, capability
from esb.xmlsafe import forget_parsed

if TYPE_CHECKING:
    from esb.journal import Journal
    from esb.project import Project
    from esb.runtime.metrics import MeteredJournal

#: Header ``esb replay`` sets (the replay's number): the message is delivered again to every sink.
REPLAY_HEADER = "esb-replay"


#: A read that returns faster than this found a backlog: the worker then batches what else is ready.
BACKLOG_SECONDS = 0.002

#: While a batch is in flight, the worker reads in slices this long until the batch is done.
IN_FLIGHT_READ_SECONDS = 0.002

#: Header in which a transform lists what it accepted with a warning (sloppy input it could read).
WARNINGS_HEADER = "esb-warnings"


class PoisonMessageError(MessageError):
    """A message handed out again and again without being settled (it crashes or stalls the hub)."""

    reason = "poison-message"


class Stopping(Exception):  # noqa: N818 - a signal, not an error (structlog's DropEvent)
    """The worker was asked to stop while waiting to retry."""


@dataclass
class _Parked:
    """A delivery whose parts wait in an aggregator; settled when every part has been released."""

    delivery: Delivery
    remaining: int


class RouteWorker(threading.Thread):
    """Consumes one route's source in its own thread with its own connections."""

    #: Overlap a batch's waits (confirms, outcomes' commit) with the next batch (esb/runtime/overlap.py);
    #: False runs each batch to its end before reading the next (the differential tests' slow path).
    overlap_batches = True

    def __init__(
        self,
        project: Project,
        route: Route,
        journal: Journal | MeteredJournal,
        index: int = 0,
        *,
        source: str | None = None,
    ) -> None:
        super().__init__(name=f"route-{route.id}-{source or index}", daemon=True)
        self.project = project
        self.route = route
        #: The endpoint read: the route's source, or one of its partition queues (esb/runtime/partitioner.py).
        self.source_name = source or route.from_
        self.journal = journal
        self.stop_event = threading.Event()
        self.suspended = threading.Event()
        self.ready = threading.Event()
        self.log = get_logger("worker").bind(route=route.id)
        self.max_bytes = (
            project.endpoint(self.source_name).max_body_bytes or project.settings.limits.max_body_bytes
        )
        self.poll = project.settings.runtime.poll_timeout
        self.pre: Pipeline
        self.aggregator: Aggregator | None
        self.post: Pipeline
        self.pre, self.aggregator, self.post = build_pipeline(project, route, self._requester)
        #: keys read from the message as it arrived, journaled with its ingress (raw_business_keys)
        self.raw_keys = RawKeys.for_route(route, self.max_bytes)
        self.outlet = Outlet(project, route, journal)
        self.source: Any = None
        self.failure: BaseException | None = None
        self.batch_size = project.settings.runtime.batch_size
        self.in_flight = InFlight(self)
        self._overlappable: bool | None = None
        self._first_time = False

    def _requester(self, endpoint: str) -> Any:
        adapter = self.project.adapter_for(endpoint)
        return adapter.sink(self.project.endpoint(endpoint), self.project.context(endpoint))

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        """Read and handle deliveries until asked to stop."""
        try:
            self._connect_source()
            self.ready.set()
            while not self.stop_event.is_set():
                if self.suspended.is_set():
                    self._collect_in_flight()
                    self._close_source()  # suspended (esb route suspend): read-ahead goes back to the queue
                    self.stop_event.wait(self.poll)
                    continue
                if self.source is None:
                    self._connect_source()
                started, busy = time.monotonic(), self.in_flight.busy
                delivery = self._read_beside_in_flight() if busy else self._read(self.poll)
                if delivery is None and busy:  # nothing came while it was in flight: end it
                    self._collect_in_flight()
                elif delivery is not None:
                    # a delivery that was waiting already means a backlog: take what else is ready with it
                    backlog = busy or time.monotonic() - started < BACKLOG_SECONDS
                    self._handle_ready(delivery, backlog=backlog)
                if self.aggregator is not None:
                    for batch in self.aggregator.due():
                        self._release(batch)
        except Stopping:
            pass
        except EsbError as exc:  # a configuration problem (a missing secret...): no traceback, a clear line
            self.failure = exc
            self.log.error("route cannot run", error=str(exc))
        except Exception as exc:
            self.failure = exc
            self.log.exception("route worker failed")
            raise
        finally:
            self._shutdown()

    def _handle_ready(self, delivery: Delivery, *, backlog: bool) -> None:
        """Handle ``delivery`` and whatever else the source has ready, together when the route allows."""
        try:
            self._handle_deliveries(delivery, backlog=backlog)
        finally:
            forget_parsed()  # trees the raw keys parsed that no mapping took

    def _handle_deliveries(self, delivery: Delivery, *, backlog: bool) -> None:
        batch = [delivery]
        if backlog and batchable(self):
            while len(batch) < self.batch_size:
                more = self.source.read(0)
                if more is None:
                    break
                batch.append(more)
        if len(batch) == 1:
            self._collect_in_flight()
            self.handle(delivery)
            return
        # the batch in flight (if any) waits for its confirms and its outcomes' commit meanwhile
        prepared = prepare_batch(self, batch)
        self._collect_in_flight()  # it ends before this batch sends anything: queue order is kept
        if prepared.items and not prepared.rest and self._overlaps():
            self.in_flight.start(prepared)
            return
        singles = prepared.rest
        if prepared.items:
            singles = conclude_batch(prepared.items, finish_batch(self, prepared.items)) + singles
        self._handle_singles(singles)

    def _overlaps(self) -> bool:
        """True when this route's batches may go in flight (decided once, on the first batch)."""
        if self._overlappable is None:
            try:
                self._overlappable = self.overlap_batches and overlappable(self)
            except Exception:  # a sink that cannot connect now: this batch runs to its end (and retries)
                return False
        return self._overlappable

    def _collect_in_flight(self) -> None:
        """End the batch in flight: ack its members, or take them through the one-message path."""
        if self.in_flight.busy:
            self._handle_singles(self.in_flight.collect())

    def _handle_singles(self, singles: list[Single]) -> None:
        """Take a batch's leftovers through the one-message path, in order."""
        for single, first, failure in singles:
            if self._source_broken():
                # the connection that handed these out is gone: the broker gives them to a consumer
                # again, so working on them here could only duplicate that consumer's work
                self.log.warning("source lost mid-batch: leaving the rest to redelivery")
                break
            self.handle(single, first=first, failure=failure)

    def stop(self) -> None:
        """Ask the worker to stop after the message in hand."""
        self.stop_event.set()

    def _connect_source(self) -> None:
        attempt = 0
        while not self.stop_event.is_set():
            endpoint = self.project.endpoint(self.source_name)
            self.source = self.project.adapter_for(self.source_name).source(
                endpoint, self.project.context(self.source_name)
            )
            try:
                self.source.connect()
                from esb.runtime.inline import offer_inline  # (it builds on this module)

                offer_inline(self)  # a listener may run the route on its own threads: then it reads nothing
                return
            except TransportError as exc:
                attempt += 1
                self.log.warning("source unreachable, retrying", error=str(exc), attempt=attempt)
                self._close_source()
                self._sleep(min(2.0**attempt, 30.0))
        raise Stopping

    def _read(self, timeout: float) -> Delivery | None:
        try:
            delivery: Delivery | None = self.source.read(timeout)
        except TransportError as exc:
            self.log.warning("source lost, reconnecting", error=str(exc))
            self.in_flight.give_back()  # its acks could only fail: the broker hands it out again
            self._close_source()
            self._connect_source()
            return None
        return delivery

    def _read_beside_in_flight(self) -> Delivery | None:
        """The next delivery if one is ready or comes before the batch in flight is done, else None.

        (The acks of the batch before it went out with this read: the broker's next deliveries come
        a round trip later, while the batch in flight still waits for its confirms and its commit.)
        """
        delivery = self._read(0.0)
        while delivery is None and not self.in_flight.done and not self.stop_event.is_set():
            delivery = self._read(IN_FLIGHT_READ_SECONDS)
        return delivery

    def _source_broken(self) -> bool:
        """True when the source knows its connection is gone (its unsettled deliveries go elsewhere)."""
        breakable = capability(self.source, Breakable)
        return breakable is not None and breakable.broken

    def _sleep(self, seconds: float) -> None:
        if self.stop_event.wait(seconds):
            raise Stopping

    # -- one delivery -----------------------------------------------------------------------------
    def handle(
        self, delivery: Delivery, *, first: bool | None = None, failure: BaseException | None = None
    ) -> None:
        """Process one delivery to its end: delivered, filtered, dead-lettered, or given back.

        ``first`` is given when the ingress was already journaled, ``failure`` when a first attempt
        already failed (both by the batched path).
        """
        message = delivery.message
        structlog.contextvars.bind_contextvars(**message.log_context(), route=self.route.id)
        with tracer().route(self.route.id, message) as span:
            try:
                if first is None and self.raw_keys:
                    self.raw_keys(message)
                if self._admit(delivery, first):
                    self._process(delivery, message, failure)
            except Stopping:
                if not delivery.settled:
                    delivery.ack(TransportError("hub stopping"))
                raise
            finally:
                span.outcome(delivery.outcome or "given_back", delivery.failure)
                structlog.contextvars.unbind_contextvars("message_id", "correlation_id", "route")
                if first is None:  # its own raw keys' tree, if no mapping took it
                    forget_parsed()

    def _admit(self, delivery: Delivery, first: bool | None = None) -> bool:
        """Journal the delivery at ingress; settle at once duplicates, poison and oversized messages."""
        message = delivery.message
        while True:
            try:
                if first is None:
                    first = self.journal.received(
                        self.route.id, message, delivery_count=delivery.delivery_count
                    )
                outcome = None if first else self.journal.outcome(self.route.id, message.id)
                break
            except TransportError as exc:
                self.log.error("journal unavailable, retrying", error=str(exc))
                self._sleep(1.0)
        if outcome in FINAL_STATES:
            self.log.info("duplicate delivery ignored", outcome=outcome)
            delivery.ended(str(outcome)).ack()
            return False
        problem = self._problem(delivery)
        if problem is not None:
            self._dead_letter(delivery, message, problem)
            return False
        self._first_time = first
        return True

    def _problem(self, delivery: Delivery) -> MessageError | None:
        """Why the delivery must be dead-lettered before any step runs (poison, too large), or None."""
        if delivery.delivery_count > self.project.settings.limits.max_deliveries:
            return PoisonMessageError(
                f"handed out {delivery.delivery_count} times without being settled: dead-lettered so it "
                "cannot crash the hub again"
            )
        body = delivery.message.body
        if isinstance(body, bytes) and len(body) > self.max_bytes:
            return BodyTooLargeError(f"body of {len(body)} bytes is over the limit of {self.max_bytes}")
        return None

    def admissible(self, delivery: Delivery) -> bool:
        """True when nothing stops the delivery before its steps (for the batched path)."""
        return self._problem(delivery) is None

    def _process(self, delivery: Delivery, original: Message, failure: BaseException | None = None) -> None:
        """Run the route for ``original`` until it ends; ``failure`` is a first attempt that already failed
        (in a batch)."""
        attempt = 1
        if failure is not None:
            if not self._after_failure(delivery, original, failure, attempt):
                return
            attempt = 2
        while True:
            try:
                self._run_once(delivery, original.replace(attempt=attempt, headers=dict(original.headers)))
                return
            except Stopping:
                raise
            except Exception as exc:
                if not self._after_failure(delivery, original, exc, attempt):
                    return
                attempt += 1

    def _after_failure(self, delivery: Delivery, original: Message, exc: BaseException, attempt: int) -> bool:
        """Wait and return True to retry a transient failure, or dead-letter the message and return False."""
        if is_retryable(exc) and attempt <= self.route.on_error.redeliver.max:
            delay = redelivery_delay(self.route.on_error.redeliver, attempt)
            self.log.warning(
                "transient failure, redelivering", error=str(exc), attempt=attempt, delay=round(delay, 3)
            )
            self._journal_safely(original, "redelivered", error=exc, detail={"attempt": attempt})
            self._sleep(delay)
            return True
        if not isinstance(exc, EsbError):
            self.log.exception("unexpected failure", error=str(exc))
        self._dead_letter(delivery, original, exc)
        return False

    def _run_once(self, delivery: Delivery, message: Message) -> None:
        with recording() as notes:
            outputs = self.pre(message)
        self.journal_warnings(message, outputs)
        if self.aggregator is not None and outputs:
            parked = _Parked(delivery, len(outputs))
            for output in outputs:
                for batch in self.aggregator.offer(output, parked):
                    self._release(batch)
            if not delivery.settled:
                self.journal.event(self.route.id, message, "aggregated", detail={"parts": len(outputs)})
            return
        if not outputs:
            if delivery.respond is not None:
                delivery.respond(message.replace(body=None))
            self.journal.event(self.route.id, message, "filtered", detail=detail_of(notes))
        elif self.route.to is None:
            if delivery.respond is not None:
                delivery.respond(outputs[0])
            self.journal.event(
                self.route.id, message, "delivered", detail={"replied": delivery.respond is not None}
            )
        else:
            # a replay (esb replay, header esb-replay) delivers again even where the message went before
            fresh = (self._first_time and message.attempt == 1) or REPLAY_HEADER in message.headers
            self.outlet.deliver_all(message, outputs, check=not fresh)
        delivery.ended("delivered" if outputs else "filtered").ack()
        why = {} if outputs or not notes else {"why": detail_of(notes)}
        self.log.info(
            "filtered" if not outputs else "delivered",
            outputs=len(outputs),
            to=self.route.destinations() or "caller",
            **why,
        )

    def journal_warnings(self, message: Message, outputs: list[Message]) -> None:
        """Journal what transforms accepted with a warning (``esb-warnings``), and keep it off the wire."""
        warnings: list[str] = []
        for output in outputs:
            found = output.headers.pop(WARNINGS_HEADER, None)
            if found:
                warnings.extend(str(w) for w in (found if isinstance(found, list) else [found]))
        if warnings:
            unique = sorted(set(warnings))
            self.log.warning("accepted with warnings", warnings=unique)
            self._journal_safely(message, "transformed", detail={"warnings": unique})

    def _release(self, batch: Batch) -> None:
        """Deliver an aggregate, then settle every delivery that contributed to it."""
        error: BaseException | None = None
        try:
            self.outlet.deliver_all(batch.message, self.post(batch.message))
        except Exception as exc:
            error = exc
            try:
                self.outlet.dead_letter(batch.message, exc)
            except TransportError as dlq_exc:
                self.log.error("dead-letter endpoint unavailable; parts given back", error=str(dlq_exc))
                for token in batch.tokens:
                    if not token.delivery.settled:
                        token.delivery.ack(dlq_exc)
                return
        for token in batch.tokens:
            token.remaining -= 1
            if token.remaining <= 0 and not token.delivery.settled:
                state = "dead_lettered" if error is not None else "delivered"
                self._journal_safely(
                    token.delivery.message, state, error=error, detail={"aggregate": batch.message.id}
                )
                token.delivery.ended(state, error).ack()

    def _dead_letter(self, delivery: Delivery, original: Message, error: BaseException) -> None:
        while True:
            try:
                if delivery.delivery_count > 1 or self._source_broken():
                    # another consumer may have had this message since (a broker restart hands out again
                    # what a lost connection held): if it already ended, do not dead-letter it twice
                    ended = self.journal.outcome(self.route.id, original.id)
                    if ended is not None:
                        self.log.info("already ended elsewhere", outcome=ended)
                        delivery.ended(ended).ack()
                        return
                endpoint = self.outlet.dead_letter(original, error)
                self.log.error(
                    "dead-lettered",
                    reason=getattr(error, "reason", "internal-error"),
                    error=str(error),
                    endpoint=endpoint,
                )
                delivery.ended("dead_lettered", error).ack()
                return
            except TransportError as exc:
                self.log.error("dead-letter endpoint unavailable, retrying", error=str(exc))
                self._sleep(2.0)

    def _journal_safely(self, message: Message, state: str, **kwargs: Any) -> None:
        try:
            self.journal.event(self.route.id, message, state, **kwargs)
        except TransportError as exc:
            self.log.error("journal unavailable", error=str(exc), state=state)

    # -- shutdown ---------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.in_flight.close()  # before the source closes: the members that ended are acked on it
        if self.aggregator is not None:
            for token in self.aggregator.drain():
                if not token.delivery.settled:
                    token.delivery.ack(TransportError("hub stopping: aggregate not complete"))
        self.pre.close()
        self.post.close()
        self.outlet.close()
        self._close_source()
        self.ready.set()

    def _close_source(self) -> None:
        if self.source is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                self.source.close()
            self.source = None


def wait_ready(workers: list[RouteWorker], timeout: float) -> bool:
    """Wait until every worker has connected its source (or gave up); True when all are ready."""
    deadline = time.monotonic() + timeout
    return all(w.ready.wait(max(deadline - time.monotonic(), 0)) for w in workers)
