"""Prometheus metrics of the running hub, recorded from the journal's stream of state changes.

The route worker already journals every change of state of every message; :class:`MeteredJournal`
wraps the hub's journal and counts what goes through it, so the worker needs no metrics calls of its
own. Per route: messages by state, errors by reason, and the time from ingress to the final state.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from esb.exceptions import error_reason
from esb.journal import FINAL_STATES, Journal
from esb.message import Message

#: Latency buckets (seconds): a queue hop takes milliseconds, a SOAP call with retries up to minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_STARTS = 50_000

#: Process-wide metrics of servers that adapters share between routes (one SOAP listener serves several
#: routes' endpoints): adapters register their counters here, and every hub's ``/metrics`` shows them.
SHARED = CollectorRegistry(auto_describe=True)


class Metrics:
    """The hub's metrics, in a registry of its own (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "esb_messages",
            "Changes of state of messages, per route and state",
            ["route", "state"],
            registry=self.registry,
        )
        self.errors = Counter(
            "esb_errors",
            "Failures (retried or dead-lettered), per route and reason",
            ["route", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "esb_message_duration_seconds",
            "Time from ingress to the final state, per route and outcome",
            ["route", "outcome"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.suspended = Gauge(
            "esb_route_suspended",
            "1 while the route is suspended (esb route suspend)",
            ["route"],
            registry=self.registry,
        )
        self.workers = Gauge(
            "esb_route_workers_alive", "Worker threads alive per route", ["route"], registry=self.registry
        )
        self.partitions = Gauge(
            "esb_route_partitions_owned",
            "Partitions of a partitioned ordered route this process runs workers for",
            ["route"],
            registry=self.registry,
        )
        self.process = ProcessMetrics(self.registry)
        self._starts: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()
        #: The labelled children of the counters and the histogram, made once: ``labels()`` checks and
        #: joins its values under a lock each call, ~5 calls a message (no label is ever removed here).
        self._children: dict[tuple[int, str, str], Any] = {}

    def _child(self, metric: Any, route: str, value: str) -> Any:
        key = (id(metric), route, value)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(route, value)
        return child

    def observe(
        self, route: str, state: str, seconds: float | None = None, reason: str | None = None
    ) -> None:
        """Count one change of state; with ``seconds``, record the message's latency too."""
        self._child(self.messages, route, state).inc()
        if reason:
            self._child(self.errors, route, reason).inc()
        if seconds is not None:
            self._child(self.latency, route, state).observe(seconds)

    def observe_many(self, route: str, changes: Iterable[tuple[str, float | None]]) -> None:
        """Count several changes of state ``(state, seconds or None)`` of a batch, as :meth:`observe`
        would one by one: one increment per state, a latency for each that has one."""
        changes = list(changes)
        for state, count in Tally(state for state, _ in changes).items():
            self._child(self.messages, route, state).inc(count)
        for state, seconds in changes:
            if seconds is not None:
                self._child(self.latency, route, state).observe(seconds)

    def started(self, route: str, message_id: str) -> None:
        """Remember when a message entered a route (bounded: in-flight messages only)."""
        self.started_many(route, (message_id,))

    def started_many(self, route: str, message_ids: Iterable[str]) -> None:
        """Remember when messages entered a route together (one clock reading, one lock)."""
        now = time.monotonic()
        with self._lock:
            for message_id in message_ids:
                self._starts[(route, message_id)] = now
            while len(self._starts) > _STARTS:
                self._starts.popitem(last=False)

    def finished(self, route: str, message_id: str) -> float | None:
        """Return the seconds since the message entered the route (None when unknown here)."""
        return self.finished_many(route, (message_id,))[0]

    def finished_many(self, route: str, message_ids: Iterable[str]) -> list[float | None]:
        """:meth:`finished` of each message, in order (one clock reading, one lock)."""
        with self._lock:
            starts = [self._starts.pop((route, message_id), None) for message_id in message_ids]
        now = time.monotonic()
        return [None if start is None else now - start for start in starts]

    def exposition(self) -> bytes:
        """Return the metrics in Prometheus' text format: the hub's own, then the adapters' shared ones."""
        return bytes(generate_latest(self.registry)) + bytes(generate_latest(SHARED))


class ProcessMetrics:
    """The process engine's metrics (esb/runtime/process_service.py), in the hub's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.instances = Counter(
            "esb_process_instances",
            "Process instances started (status started) and ended, per process and status",
            ["process", "status"],
            registry=registry,
        )
        self.steps = Counter(
            "esb_process_steps",
            "Step rows written (done, failed, waiting, timed_out, closed), per process and state",
            ["process", "state"],
            registry=registry,
        )
        self.await_timeouts = Counter(
            "esb_process_await_timeouts",
            "Awaits whose deadline passed, per process",
            ["process"],
            registry=registry,
        )
        self.undo_failures = Counter(
            "esb_process_undo_failures",
            "Failed attempts of an undo (compensate) call, per process",
            ["process"],
            registry=registry,
        )
        self.unmatched = Counter(
            "esb_process_dead_letters",
            "Trigger or reply messages no instance took (dead-lettered), per endpoint",
            ["endpoint"],
            registry=registry,
        )
        self.lag = Gauge(
            "esb_process_runner_lag_seconds",
            "How long the oldest due instance has been waiting for a runner (0: none due)",
            registry=registry,
        )


class MeteredJournal:
    """The hub's journal, counting each state change into :class:`Metrics` once it is written."""

    def __init__(self, journal: Journal, metrics: Metrics) -> None:
        self._journal = journal
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)

    def received(self, route: str, message: Message, *, delivery_count: int = 1) -> bool:
        """Journal the ingress, start the message's clock, count it."""
        first = self._journal.received(route, message, delivery_count=delivery_count)
        self.metrics.started(route, message.id)
        self.metrics.observe(route, "received" if first else "redelivered")
        return first

    def event(self, route: str, message: Message, state: str, **kwargs: Any) -> None:
        """Journal a change of state; count it, with its error's reason and, if final, its latency."""
        self._journal.event(route, message, state, **kwargs)
        error = kwargs.get("error")
        reason = error_reason(error) if isinstance(error, BaseException) else None
        final = state in FINAL_STATES and not (state == "delivered" and kwargs.get("endpoint"))
        seconds = self.metrics.finished(route, message.id) if final else None
        self.metrics.observe(route, state, seconds, reason)

    def received_many(self, route: str, items: list[tuple[Message, int]]) -> list[bool]:
        """Journal several ingresses at once; start each message's clock and count it."""
        firsts = self._journal.received_many(route, items)
        self.metrics.started_many(route, [message.id for message, _ in items])
        self.metrics.observe_many(route, [("received" if first else "redelivered", None) for first in firsts])
        return firsts

    def settle_many(
        self,
        route: str,
        outcomes: list[tuple[Message, str, list[tuple[Message, str]]]],
        details: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Journal several outcomes at once; count deliveries and each final state with its latency."""
        self._journal.settle_many(route, outcomes, details)
        sent = [("sent", None) for _, _, outputs in outcomes for _ in outputs]
        seconds = self.metrics.finished_many(route, [original.id for original, _, _ in outcomes])
        states = [(state, took) for (_, state, _), took in zip(outcomes, seconds, strict=True)]
        self.metrics.observe_many(route, sent + states)

    def mark_delivered(self, route: str, message: Message, endpoint: str, **kwargs: Any) -> None:
        """Journal a delivery; when it ends the message's journey (``finish``), record its latency."""
        self._journal.mark_delivered(route, message, endpoint, **kwargs)
        self.metrics.observe(route, "sent")
        finish = kwargs.get("finish")
        if finish is not None:
            self.metrics.observe(route, "delivered", self.metrics.finished(route, finish.id))
