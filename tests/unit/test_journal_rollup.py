"""The per-minute figures (``route_minutes``, esb/journal/rollup.py) against the event scan they replace
(``esb stats --exact``): after a mixed workload through every write path (batched arrivals and outcomes,
the one-message path, redeliveries, replays, purges, two journals writing at once), the counts are the
scan's and each latency percentile is in the exact one's bucket or the next; the migration's backfill
equals what the write paths wrote; a prune keeps the figures. The PostgreSQL module runs the same."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from esb.exceptions import DecodeError, RemoteError, TransportError
from esb.journal import Journal, retention, rollup
from esb.journal import batched as batched_module
from esb.journal import journal as journal_module
from esb.journal.migrate import alembic_config
from esb.journal.schema import route_minutes
from esb.message import Message
from esb.ops.stats import compute
from esb.ops.stats_exact import compute_exact

BATCHED, SINGLE = "crm-orders", "fault-tickets"
COUNTS = ("received", "delivered", "filtered", "dead_lettered", "redelivered", "replayed")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """An empty journal in a SQLite file."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


class Clock:
    """The journal's clock, moved by the workload (both write paths read it)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        """Move the clock on by ``seconds``."""
        self.now += timedelta(seconds=seconds)


def workload(journal: Journal, other: Journal, monkeypatch: pytest.MonkeyPatch, start: datetime) -> datetime:
    """Write ~25 minutes of mixed traffic through every write path; return the end of its last minute.

    ``other`` is a second journal on the same database (another process: its own cache), which replays.
    """
    clock = Clock(start)
    monkeypatch.setattr(journal_module, "utcnow", clock)
    monkeypatch.setattr(batched_module, "utcnow", clock)
    rng = random.Random(18)
    dead: list[Message] = []
    for round_ in range(50):
        clock.tick(rng.uniform(5, 45))
        _batched_round(journal, rng, clock, round_, dead)
        _single_round(journal, rng, clock, round_)
        if round_ % 6 == 5 and dead:  # a replay by another process, then the hub takes it again
            message = dead.pop(0)
            other.event(BATCHED, message, "replayed", detail={"replay": 1})
            clock.tick(rng.uniform(0.5, 5))
            journal.received_many(BATCHED, [(message, 1)])
            clock.tick(rng.uniform(0.01, 2))
            journal.settle_many(BATCHED, [(message, "delivered", [(message, "iom.orders_in")])])
    return rollup.minute_of(clock.now) + timedelta(minutes=1)


def _batched_round(
    journal: Journal, rng: random.Random, clock: Clock, round_: int, dead: list[Message]
) -> None:
    """A batch of arrivals (one redelivered) and, some time later, its outcomes in one commit."""
    batch = [Message(body=b"<order/>", id=f"o{round_}-{i}") for i in range(rng.randint(3, 12))]
    items = [(message, 1) for message in batch]
    if round_ % 4 == 1:
        items.append((batch[0], 2))  # the same delivery twice in one batch: a redelivery
    journal.received_many(BATCHED, items)
    clock.tick(rng.choice((0.0005, 0.02, 0.3, 1.5, 9.0)) * rng.uniform(0.5, 2))
    outcomes: list[batched_module.Outcome] = []
    for message in batch:
        fate = rng.choices(("delivered", "filtered", "dead_lettered"), (8, 1, 1))[0]
        sent = [(message, "iom.orders_in"), (Message(body=b"{}", id=f"{message.id}-x"), "hub.orders")]
        outcomes.append((message, fate, sent if fate == "delivered" else []))
        if fate == "dead_lettered":
            dead.append(message)
    journal.settle_many(BATCHED, outcomes, {batch[0].id: {"why": "test"}})


def _single_round(journal: Journal, rng: random.Random, clock: Clock, round_: int) -> None:
    """Messages through the one-message path: errors with reasons, redeliveries, each fate."""
    for i in range(rng.randint(1, 4)):
        message = Message(body=b"{}", id=f"t{round_}-{i}")
        journal.received(SINGLE, message)
        clock.tick(rng.uniform(0.001, 4))
        if i % 2:
            journal.event(SINGLE, message, "failed", error=TransportError("down"))
            journal.received(SINGLE, message, delivery_count=2)
            journal.event(SINGLE, message, "redelivered", error=RemoteError("busy"))
            clock.tick(rng.uniform(0.001, 2))
        fate = rng.choice(("delivered", "finish", "filtered", "dead_lettered"))
        if fate == "finish":
            journal.mark_delivered(SINGLE, message, "hub.tickets", body=b"{}", finish=message)
        elif fate == "dead_lettered":
            journal.event(SINGLE, message, "dead_lettered", endpoint="dlq.tickets", error=DecodeError("bad"))
            if round_ % 3 == 0:
                journal.event(SINGLE, message, "purged", detail={"by": "test"})
        else:
            journal.mark_delivered(SINGLE, message, "hub.tickets", body=b"{}")
            journal.event(SINGLE, message, fate)


def assert_figures_equal_the_scan(
    journal: Journal, since: datetime, until: datetime, *, latency: bool = True
) -> int:
    """Every route's counts from the figures equal the scan's and, with ``latency`` (a window holding
    whole journeys: the scan ignores one that started before it), each percentile is in the bucket of
    the exact one (rounded by the scan to 0.1 ms, so anywhere within 0.05 ms of it) or the next;
    return the journeys compared."""
    fast = {s.route: s for s in compute(journal.url, since, until)}
    exact = {s.route: s for s in compute_exact(journal.url, since, until)}
    assert sorted(fast) == sorted(exact)
    compared = 0
    for route, s in exact.items():
        f = fast[route]
        assert [getattr(f, name) for name in COUNTS] == [getattr(s, name) for name in COUNTS], route
        assert f.errors_by_reason == s.errors_by_reason, route
        assert (f.throughput_per_s, f.error_rate) == (s.throughput_per_s, s.error_rate), route
        if not latency:
            continue
        assert f.latency_ms.get("count") == s.latency_ms.get("count"), route
        for name in ("p50", "p90", "p99", "max"):
            if s.latency_ms:
                # the scan's figure is rounded to 0.1 ms: its true value may sit in a bucket below
                lowest = rollup.bucket(_ms(s.latency_ms[name] - 0.05))
                highest = rollup.bucket(_ms(s.latency_ms[name] + 0.05)) + 1
                got = rollup.bucket(_ms(f.latency_ms[name]))
                assert lowest <= got <= highest, (route, name, f.latency_ms, s.latency_ms)
        compared += int(s.latency_ms.get("count", 0))
    return compared


def _ms(value: float) -> timedelta:
    return timedelta(milliseconds=value)


def figures(journal: Journal) -> list[tuple[object, ...]]:
    """Every ``route_minutes`` row, in key order."""
    with journal._read().connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(route_minutes).order_by(*route_minutes.c))]


def _start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def check_mixed_workload(journal: Journal, other: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workload's figures equal the scan over the whole span, its first minutes and single minutes."""
    start = _start()
    until = workload(journal, other, monkeypatch, start)
    begin = rollup.minute_of(start)
    assert assert_figures_equal_the_scan(journal, begin, until) > 200
    for minutes in (1, 5, 7):
        since = begin + timedelta(minutes=3)
        assert_figures_equal_the_scan(journal, since, since + timedelta(minutes=minutes), latency=False)
    fast = {s.route: s for s in compute(journal.url, begin, until)}
    assert fast[BATCHED].replayed > 3
    assert fast[BATCHED].redelivered > 3
    assert fast[SINGLE].filtered > 3
    assert set(fast[SINGLE].errors_by_reason) == {"transport-error", "remote-error", "decode-error"}


def test_the_figures_equal_the_event_scan_after_a_mixed_workload(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batched and one-message writes, redeliveries, replays by another journal, purges: same counts,
    percentiles in the exact ones' bucket or the next, over the whole span and over windows inside it."""
    with Journal(journal.url) as other:
        check_mixed_workload(journal, other, monkeypatch)


def check_a_broken_write_path_is_caught(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """With ``path``'s figures dropped, the comparison with the scan fails."""
    monkeypatch.setattr(journal_module.Journal, path, lambda self, *args: rollup.Increments())
    with Journal(journal.url) as other, pytest.raises(AssertionError):
        check_mixed_workload(journal, other, monkeypatch)


@pytest.mark.parametrize("path", ["_event_figures", "_arrival_figures", "_outcome_figures"])
def test_a_write_path_that_forgets_its_figures_is_caught(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Breaking one write path's figures on purpose makes the differential check fail."""
    check_a_broken_write_path_is_caught(journal, monkeypatch, path)


def check_backfill(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Down to 0014 (the table dropped) and up again: the migration's (frozen) backfill writes the write
    paths' rows; so does the live ``rollup.backfill`` (the benches' fills) on the emptied table."""
    from alembic import command

    with Journal(journal.url) as other:
        workload(journal, other, monkeypatch, _start())
    written = figures(journal)
    assert len(written) > 100
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0014_dead_letters_unhandled")
        assert "route_minutes" not in sa.inspect(conn).get_table_names()
        command.upgrade(alembic_config(conn), "head")
    assert figures(journal) == written
    with journal._read().begin() as conn:
        conn.execute(sa.delete(route_minutes))
        rollup.backfill(conn)
    assert figures(journal) == written


def test_the_migration_backfill_equals_what_the_write_paths_wrote(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0015's backfill from the events gives exactly the rows the write paths kept."""
    check_backfill(journal, monkeypatch)


def check_concurrent_writers(journal: Journal, other: Journal) -> None:
    """Two journals (processes: own caches, own connections) writing the same route and minutes at once
    lose no increment: the figures equal the scan."""
    begin = rollup.minute_of(datetime.now(UTC))

    def run(writer: Journal, name: str) -> None:
        for round_ in range(15):
            batch = [Message(body=b"{}", id=f"{name}{round_}-{i}") for i in range(20)]
            writer.received_many(BATCHED, [(m, 1) for m in batch])
            writer.settle_many(BATCHED, [(m, "delivered", [(m, "iom.orders_in")]) for m in batch])
            single = Message(body=b"{}", id=f"{name}{round_}-s")
            writer.received(BATCHED, single)
            writer.event(BATCHED, single, "dead_lettered", endpoint="dlq", error=DecodeError("bad"))

    threads = [threading.Thread(target=run, args=(w, n)) for w, n in ((journal, "a"), (other, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    until = rollup.minute_of(datetime.now(UTC)) + timedelta(minutes=1)
    assert assert_figures_equal_the_scan(journal, begin, until) == 2 * 15 * 21
    [s] = compute(journal.url, begin, until)
    assert (s.received, s.delivered, s.dead_lettered) == (630, 600, 30)


def test_two_journals_writing_at_once_lose_no_increment(journal: Journal) -> None:
    """Concurrent writers (two journals, two threads) on the same minutes: every increment is kept."""
    with Journal(journal.url) as other:
        check_concurrent_writers(journal, other)


def check_prune_keeps_the_figures(journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prune deletes the delivered and filtered messages of the window but keeps its figures; the
    figures older than the longest retention go."""
    start = _start() - timedelta(days=3)
    with Journal(journal.url) as other:
        workload(journal, other, monkeypatch, start)
    monkeypatch.undo()
    before = figures(journal)
    policy = retention.Policy(delivered_days=1, filtered_days=2, archive=tmp_path / "archive")
    result = journal.prune(policy, now=start + timedelta(days=1, hours=1))
    assert result.messages > 100
    assert figures(journal) == before, "figures of minutes inside the longest retention stay whole"
    result = journal.prune(policy, now=start + timedelta(days=2, hours=1))
    assert figures(journal) == []
    assert result.rows["route_minutes"] == len(before)


def test_a_prune_keeps_the_figures_until_the_longest_retention(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pruned messages leave their minutes' figures whole; minutes past every retention are deleted."""
    check_prune_keeps_the_figures(journal, tmp_path, monkeypatch)


def test_buckets_are_exact_at_their_bounds() -> None:
    """A latency equal to a bucket's upper bound is in that bucket; a microsecond more is in the next."""
    for index in (0, 1, 4, 17, 40):
        bound = timedelta(microseconds=rollup.UPPER_US[index])
        assert rollup.bucket(bound) == index
        assert rollup.bucket(bound + timedelta(microseconds=1)) == index + 1
    assert rollup.bucket(timedelta(0)) == 0
    assert rollup.bucket(timedelta(days=400)) == len(rollup.UPPER_US)



def test_esb_stats_reads_the_figures_and_exact_reads_the_events(tmp_path: Path) -> None:
    """`esb stats` shows bucketed latencies ("<="), `--exact` the scan's; both count the same messages."""
    import json

    from click.testing import CliRunner

    from esb.cli.main import cli
    from tests.unit.routes_fixture import make_project

    project = make_project(tmp_path, [], ["a.in"])
    with Journal(project.settings.journal.url) as journal:
        for index in range(3):
            message = Message(body=b"{}", id=f"m{index}")
            journal.received("r", message)
            journal.mark_delivered("r", message, "a.in", finish=message)

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--project", str(project.root), "stats", *args])
        assert result.exit_code == 0, result.output
        return result.output

    [fast] = json.loads(run("--json"))["routes"]
    [exact] = json.loads(run("--exact", "--json"))["routes"]
    assert (fast["received"], fast["delivered"]) == (exact["received"], exact["delivered"]) == (3, 3)
    assert (fast["latency_bucketed"], exact["latency_bucketed"]) == (True, False)
    assert fast["latency_ms"]["count"] == exact["latency_ms"]["count"] == 3
    assert "<=" in run()
    assert "<=" not in run("--exact")
