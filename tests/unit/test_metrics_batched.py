"""The hub's metrics of a batch: counted once per state, the same samples as counting message by message."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from esb.message import Message
from esb.runtime import metrics as metrics_module
from esb.runtime.metrics import MeteredJournal, Metrics

Outcome = tuple[Message, str, list[tuple[Message, str]]]


class FakeJournal:
    """The journal's batched methods: the first arrival of each id is first, nothing else is stored."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def received_many(self, route: str, items: list[tuple[Message, int]]) -> list[bool]:
        """True for each id not seen before."""
        firsts = []
        for message, _ in items:
            firsts.append(message.id not in self.seen)
            self.seen.add(message.id)
        return firsts

    def settle_many(self, route: str, outcomes: list[Outcome], details: Any = None) -> None:
        """Nothing to store."""


def one_by_one(
    metrics: Metrics, route: str, firsts: list[bool], items: list[Message], outcomes: list[Outcome]
) -> None:
    """What MeteredJournal counted before batches were counted at once (the reference)."""
    for message, first in zip(items, firsts, strict=True):
        metrics.messages.labels(route, "received" if first else "redelivered").inc()
        metrics._starts[(route, message.id)] = metrics_module.time.monotonic()
    for original, state, sent in outcomes:
        for _ in sent:
            metrics.messages.labels(route, "sent").inc()
        start = metrics._starts.pop((route, original.id), None)
        seconds = None if start is None else metrics_module.time.monotonic() - start
        metrics.messages.labels(route, state).inc()
        if seconds is not None:
            metrics.latency.labels(route, state).observe(seconds)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``registry`` by name and labels (created-at timestamps left out)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_batch_gives_the_same_samples_as_counting_message_by_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arrivals, redeliveries, deliveries and filters of batches: the same counters and latencies."""
    clock = [100.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: clock[0])
    batched, reference = Metrics(), Metrics()
    metered = MeteredJournal(FakeJournal(), batched)  # type: ignore[arg-type]
    reference_journal = FakeJournal()
    for batch in range(3):
        items = [Message(body=b"x", id=f"m{n}") for n in range(batch * 4, batch * 4 + 6)]  # 2 come again
        clock[0] += 1.0
        firsts = metered.received_many("r", [(m, 1) for m in items])
        one_by_one(reference, "r", reference_journal.received_many("r", [(m, 1) for m in items]), items, [])
        outcomes: list[Outcome] = [
            (m, "delivered", [(Message(body=b"y", id=f"{m.id}-out{k}"), f"e{k}") for k in range(n % 3)])
            if n % 4
            else (m, "filtered", [])
            for n, m in enumerate(items)
        ]
        clock[0] += 0.03 * (batch + 1)
        metered.settle_many("r", outcomes)
        one_by_one(reference, "r", [], [], outcomes)
        assert firsts == ([True] * 6 if batch == 0 else [False, False] + [True] * 4)
    assert samples(batched.registry) == samples(reference.registry)
    assert not batched._starts  # the clocks of ended messages are forgotten (in-flight ones only)
    assert (
        samples(batched.registry)[("esb_messages_total", (("route", "r"), ("state", "redelivered")))] == 4.0
    )
