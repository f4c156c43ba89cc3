"""Each capability an adapter declares (``esb/typing.py``), shown to work; run over every harness.

A capability is declared by implementing its protocol; the first test pins what each adapter declares,
so that a method added or renamed (which silently changes what the engine asks of it) is caught here.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import click
import pytest
from click.testing import CliRunner

from esb.exceptions import TransportError
from esb.typing import (
    BatchWriter,
    Breakable,
    CommandProvider,
    HealthReporter,
    JobReporter,
    Partitionable,
    QueueInspector,
    Republisher,
    capability,
)
from tests.contract.harness import (
    ADAPTER_CAPABILITIES,
    PATIENCE,
    SINK_CAPABILITIES,
    SOURCE_CAPABILITIES,
    AdapterHarness,
    read_n,
    require,
)
from tests.e2e.ops_hub import wait_until

C = TypeVar("C")


def declared(harness: AdapterHarness, kind: type[C]) -> C:
    """Return the harness's adapter as capability ``kind``, or skip the test when it does not declare it."""
    found = capability(harness.adapter, kind)
    if found is None:
        pytest.skip(f"{harness.adapter.name} does not declare {kind.__name__}")
    return found


def test_declares_exactly_the_capabilities_of_its_harness(harness: AdapterHarness) -> None:
    """The adapter, its sources and its sinks implement exactly the capabilities the harness lists."""
    found = {kind for kind in ADAPTER_CAPABILITIES if capability(harness.adapter, kind) is not None}
    if "read" not in harness.cannot:
        source = harness.source()
        found |= {kind for kind in SOURCE_CAPABILITIES if capability(source, kind) is not None}
    if "write" not in harness.cannot:
        sink = harness.sink()
        found |= {kind for kind in SINK_CAPABILITIES if capability(sink, kind) is not None}
    assert sorted(k.__name__ for k in found) == sorted(k.__name__ for k in harness.declares)


def test_queue_inspector_counts_and_peeks_without_taking(harness: AdapterHarness) -> None:
    """Depth and stats count what was put in; peek shows the oldest, in order, and takes nothing."""
    inspector = declared(harness, QueueInspector)
    probe = harness.source_probe()
    sent = list(harness.put(3))
    assert wait_until(lambda: inspector.queue_depth(probe.endpoint, probe.context) == 3, PATIENCE)
    assert inspector.queue_stats(probe.endpoint, probe.context)["ready"] == 3
    assert [m.id for m in inspector.peek(probe.endpoint, probe.context, limit=2)] == sent[:2]
    # RabbitMQ gives peeked messages back as the peeking connection closes, a moment after peek returns
    assert wait_until(lambda: inspector.queue_depth(probe.endpoint, probe.context) == 3, PATIENCE)
    with harness.source() as source:
        assert sorted(d.message.id for d in read_n(source, 3)) == sorted(sent)
    assert inspector.queue_depth(probe.endpoint, probe.context) == 0


def test_batch_writer_delivers_every_message(harness: AdapterHarness) -> None:
    """write_many hands the peer every message it was given."""
    require(harness, "write")
    with harness.sink() as sink:
        writer = capability(sink, BatchWriter)
        if writer is None:
            pytest.skip(f"{harness.adapter.name} sinks do not declare BatchWriter")
        writer.write_many([harness.message(i) for i in range(20)])
    assert sorted(harness.received(), key=int) == [str(i) for i in range(20)]


def test_breakable_source_reports_a_killed_connection(harness: AdapterHarness) -> None:
    """Once its connection is killed, a Breakable source says it is broken; a new one reads on."""
    require(harness, "read", "break")
    source, kill = harness.broken_source()
    breakable = capability(source, Breakable)
    assert breakable is not None
    source.connect()
    try:
        [mid] = harness.put(1)
        [held] = read_n(source, 1, ack=False)
        assert not breakable.broken
        kill()
        held.ack()  # the broker never gets it: the connection is gone, and the message comes back
        with contextlib.suppress(TransportError):
            source.read(0.5)
        assert breakable.broken
    finally:
        source.close()
    with harness.source() as fresh:
        [again] = read_n(fresh, 1)
    assert again.message.id == mid


def test_health_reporter_tells_a_live_peer_from_a_dead_one(harness: AdapterHarness) -> None:
    """health answers ok for a peer that is up; down or degraded (or a TransportError) for one that is not."""
    reporter = declared(harness, HealthReporter)
    live, dead = harness.health_probes()
    status, detail = reporter.health(live.endpoint, live.context)
    assert status == "ok", detail
    try:
        status, detail = reporter.health(dead.endpoint, dead.context)
    except TransportError as exc:  # the engine's health check shows an EsbError as down
        status, detail = "down", str(exc)
    assert status in ("down", "degraded"), detail
    assert detail


def test_republisher_puts_messages_where_the_source_reads(harness: AdapterHarness) -> None:
    """A message written through the publisher of a source endpoint is read by that source."""
    republisher = declared(harness, Republisher)
    probe = harness.source_probe()
    message = harness.message(42)
    with republisher.publisher(probe.endpoint, probe.context) as publisher:
        publisher.write(message)
    with harness.source() as source:
        [got] = read_n(source, 1)
    assert got.message.id == message.id


def test_partitionable_gives_distinct_single_consumer_endpoints(harness: AdapterHarness) -> None:
    """Each partition is an endpoint of its own that keeps order (lint finds no problem with it)."""
    partitioner = declared(harness, Partitionable)
    endpoint = harness.source_probe().endpoint
    parts = [partitioner.partition(endpoint, i) for i in range(3)]
    assert len({p.model_dump_json() for p in [endpoint, *parts]}) == 4
    assert all(partitioner.ordering_problem(p) is None for p in parts)


def test_partitions_carry_messages_apart(harness: AdapterHarness) -> None:
    """A message published to one partition is read from that partition and not from another."""
    partitioner = declared(harness, Partitionable)
    republisher = declared(harness, Republisher)
    probe = harness.source_probe()
    first, second = (partitioner.partition(probe.endpoint, i) for i in (0, 1))
    message = harness.message(7)
    with republisher.publisher(first, probe.context) as publisher:
        publisher.write(message)
    with harness.adapter.source(second, probe.context) as other:
        assert other.read(0.3) is None
    with harness.adapter.source(first, probe.context) as source:
        [got] = read_n(source, 1)
    assert got.message.id == message.id


def test_job_reporter_lists_each_job_with_its_schedule(harness: AdapterHarness) -> None:
    """jobs lists the endpoint's scheduled jobs, each with the fields esb health shows."""
    reporter = declared(harness, JobReporter)
    probe = harness.source_probe()
    jobs = reporter.jobs(probe.endpoint, probe.context)
    assert jobs
    for job in jobs:
        assert {"job", "schedule", "last_run", "outcome", "next_run", "overdue"} <= set(job)
        assert job["job"]
        assert job["schedule"]


def test_command_provider_adds_working_commands(harness: AdapterHarness) -> None:
    """Each command an adapter adds is a named click command that answers --help."""
    provider = declared(harness, CommandProvider)
    commands: list[Any] = provider.commands()
    assert commands
    for command in commands:
        assert isinstance(command, click.Command)
        assert command.name
        result = CliRunner().invoke(command, ["--help"])
        assert result.exit_code == 0, result.output
