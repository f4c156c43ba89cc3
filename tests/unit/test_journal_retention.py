"""Compressed bodies, retention (prune with archive), usage figures and the scheduled prune, on SQLite here
and on PostgreSQL in tests/integration/test_journal_retention_postgres.py (the same cases, its own URL)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from esb.journal import Journal
from esb.journal import journal as journal_module
from esb.journal.bodies import MARK, SAMPLES, BodyFormatError, pack, unpack
from esb.journal.migrate import alembic_config
from esb.journal.retention import Policy, archived_body, read_archive
from esb.journal.schema import business_keys, dictionaries, messages
from esb.message import Message, utcnow
from esb.ops.retention import ScheduledPrune
from esb.runtime.leader import FileLock, LeaderElection

ORDER = (
    '<?xml version="1.0" encoding="UTF-8"?><SiebelMessage MessageType="Integration Object">'
    '<Order OrderNumber="SO{n:08d}" Status="Open" Channel="web"><Account Id="1-BA{n:05d}"/>'
    '<Customer Name="张伟" Phone="1330755{n:04d}"/><LineItem Product="Broadband 500M" Qty="1"/>'
    "</Order></SiebelMessage>"
)


def order_body(n: int) -> bytes:
    """A Siebel-like order, different for each ``n`` (Chinese text included)."""
    return ORDER.format(n=n).encode("utf-8") * 3


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    """A connected journal on a fresh database."""
    with Journal(journal_url) as opened:
        yield opened


def stored_bodies(journal: Journal) -> list[bytes]:
    """The ingress body column as stored, oldest first."""
    with journal._read().connect() as conn:
        rows = conn.execute(sa.select(messages.c.body).order_by(messages.c.received_at, messages.c.id))
        return [bytes(row[0]) for row in rows if row[0] is not None]


def deliver(journal: Journal, n: int, route: str = "orders", state: str = "delivered") -> Message:
    """Journal one order entering ``route`` and ending in ``state`` (delivered with an output body)."""
    message = Message(body=order_body(n), id=f"m{n:05d}", business_keys={"order_id": f"SO{n:08d}"})
    journal.received(route, message)
    if state == "delivered":
        journal.mark_delivered(
            route, message, "iom.orders_in", body=order_body(n + 1), event=True, finish=message
        )
    elif state != "received":
        journal.event(route, message, state, endpoint="dlq.orders" if state == "dead_lettered" else None)
    return message


def at(monkeypatch: pytest.MonkeyPatch, days_ago: float) -> None:
    """Make the journal write its timestamps ``days_ago`` days back."""
    when = utcnow() - timedelta(days=days_ago)
    monkeypatch.setattr(journal_module, "utcnow", lambda: when)


# -- compressed bodies --------------------------------------------------------------------------------
def test_pack_and_unpack_round_trip_and_keep_unmarked_bytes_as_they_are() -> None:
    """Compressed bodies come back identical; a short body is stored as is; unmarked bytes read as is."""
    body = order_body(1)
    stored = pack(body)
    assert stored.startswith(MARK)
    assert len(stored) < len(body)
    assert unpack(stored) == body
    assert pack(b"tiny") == b"tiny"
    assert unpack(b"<old row written before compression/>") == b"<old row written before compression/>"


def test_a_body_that_starts_with_the_marker_is_always_compressed() -> None:
    """An original body beginning with the marker cannot be mistaken for a compressed one."""
    tricky = MARK + b"x"
    assert pack(tricky) != tricky
    assert unpack(pack(tricky)) == tricky


def test_a_damaged_or_unknown_body_format_is_a_clear_error() -> None:
    """A marked body with an unknown version, a missing dictionary or bad data raises BodyFormatError."""
    stored = pack(order_body(2), 7, b"dictionary")
    with pytest.raises(BodyFormatError, match="dictionary 7 is missing"):
        unpack(stored)
    with pytest.raises(BodyFormatError, match="version"):
        unpack(MARK + b"\x09" + stored[5:])
    with pytest.raises(BodyFormatError, match="decompress"):
        unpack(pack(order_body(3))[:-10] + b"garbage!!!")


def test_bodies_of_a_route_are_compressed_with_a_learnt_dictionary_and_read_back(journal: Journal) -> None:
    """After the first bodies of a kind, later ones are stored far smaller; every body reads back intact."""
    sent = [deliver(journal, n) for n in range(SAMPLES + 6)]
    stored = stored_bodies(journal)
    assert all(s.startswith(MARK) for s in stored)
    plain, learnt = len(stored[0]), len(stored[-1])
    assert learnt < plain / 2, (plain, learnt)
    for message in sent:
        assert journal.body(message.id) == message.body_bytes()
    [delivered] = [e for e in journal.history(sent[-1].id) if e.has_body]
    assert journal.event_body(delivered.id) == order_body(SAMPLES + 6)


def test_another_journal_reads_the_bodies_and_reuses_the_dictionary(
    journal: Journal, journal_url: str
) -> None:
    """A second process decodes with the stored dictionary and compresses with it, learning no new one."""
    sent = [deliver(journal, n) for n in range(SAMPLES + 2)]
    with Journal(journal_url) as other:
        assert other.body(sent[-1].id) == sent[-1].body_bytes()
        later = deliver(other, 500)
        assert journal.body(later.id) == later.body_bytes()
        with other._read().connect() as conn:
            kinds = conn.execute(sa.select(dictionaries.c.kind)).scalars().all()
    assert sorted(kinds) == ["orders|in", "orders|iom.orders_in"]


def test_rows_written_before_compression_stay_readable(journal: Journal) -> None:
    """A body stored raw (as before migration 0006) is returned as it is."""
    deliver(journal, 1)
    with journal._write()[0].begin() as conn:
        conn.execute(sa.update(messages).values(body=b"<raw>old row</raw>"))
    assert journal.body("m00001") == b"<raw>old row</raw>"


def test_the_migration_keeps_rows_written_before_it(journal_url: str) -> None:
    """A journal at 0003 with rows: upgrading to head keeps messages, keys and deliveries, bodies readable."""
    url = journal_url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003_processes")
        conn.execute(
            sa.text(
                "INSERT INTO messages (id, route, correlation_id, body, received_at, attempt, delivery_count)"
                " VALUES ('m1', 'orders', 'm1', :body, '2026-11-01 10:00:00.000000', 1, 1)"
            ),
            {"body": b"<old/>"},
        )
        conn.exec_driver_sql("INSERT INTO business_keys VALUES ('m1', 'order_id', 'SO1')")
        conn.exec_driver_sql(
            "INSERT INTO deliveries VALUES ('orders', 'm1', 'iom.orders_in', '2026-11-01 10:00:01')"
        )
    engine.dispose()
    with Journal(url) as journal:
        assert journal.body("m1") == b"<old/>"
        assert journal.was_delivered("orders", "m1", "iom.orders_in")
        [record] = journal.find(key=("order_id", "SO1"))
        assert record.id == "m1"


JOURNAL_0006 = (  # a journal as revision 0006 wrote it (timestamps as SQLAlchemy writes them on SQLite)
    "INSERT INTO messages (id, route, correlation_id, causation_id, body, received_at, attempt,"
    " delivery_count) VALUES ('m1', 'orders', 'm1', NULL, :body, '2026-11-01 10:00:00.000000', 1, 2),"
    " ('m1', 'audit', 'm1', NULL, NULL, '2026-11-01 10:00:02.000000', 1, 1),"
    " ('m2', 'orders', 'm1', 'm1', NULL, '2026-11-01 10:00:03.000000', 1, 1),"
    " ('m3', 'orders', 'm3', NULL, NULL, '2026-11-01 10:00:04.000000', 1, 1)",
    "INSERT INTO events (id, message_id, route, state, endpoint, error_class, detail, at) VALUES"
    " (1, 'm1', 'orders', 'received', NULL, NULL, NULL, '2026-11-01 10:00:00.000000'),"
    " (2, 'm1', 'orders', 'redelivered', NULL, NULL, '{\"delivery_count\": 2}',"
    " '2026-11-01 10:00:00.500000'),"
    " (3, 'm1', 'orders', 'delivered', 'iom.orders_in', NULL, NULL, '2026-11-01 10:00:01.000000'),"
    " (4, 'm1', 'orders', 'delivered', NULL, NULL, NULL, '2026-11-01 10:00:01.000000'),"
    " (5, 'm1', 'audit', 'received', NULL, NULL, NULL, '2026-11-01 10:00:02.000000'),"
    " (6, 'm2', 'orders', 'received', NULL, NULL, NULL, '2026-11-01 10:00:03.000000'),"
    " (7, 'm3', 'orders', 'dead_lettered', 'dlq', 'SchemaValidationError', NULL,"
    " '2026-11-01 10:00:04.000000')",
    "INSERT INTO deliveries (route, message_id, endpoint, at) VALUES"
    " ('orders', 'm1', 'iom.orders_in', '2026-11-01 10:00:01.000000'),"
    " ('orders', 'm2', 'billing', '2026-11-01 10:00:03.500000')",
    "INSERT INTO business_keys (message_id, name, value) VALUES ('m1', 'order_id', 'SO1'),"
    " ('m1', 'msisdn', '13307550001'), ('m3', 'order_id', 'SO3'), ('gone', 'order_id', 'SO9')",
)


def test_the_0007_migration_keeps_a_journal_written_by_0006(journal_url: str) -> None:
    """0006 -> 0007 keeps every message, event (and its id), delivery and key; new writes follow on."""
    engine = sa.create_engine(journal_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0006_journal_compact")
        for statement in JOURNAL_0006:
            conn.execute(sa.text(statement), {"body": b"<old/>"})
    engine.dispose()
    with Journal(journal_url) as journal:
        assert journal.body("m1") == b"<old/>"
        history = [(e.id, e.route, e.state, e.endpoint) for e in journal.history("m1")]
        assert history == [
            (1, "orders", "received", None),
            (2, "orders", "redelivered", None),
            (3, "orders", "delivered", "iom.orders_in"),
            (4, "orders", "delivered", None),
            (5, "audit", "received", None),
        ]
        assert journal.history("m1")[1].detail == {"delivery_count": 2}
        assert journal.was_delivered("orders", "m1", "iom.orders_in")
        assert journal.was_delivered("orders", "m2", "billing"), "a delivery row without its event"
        assert not journal.was_delivered("audit", "m1", "iom.orders_in")
        assert [e.state for e in journal.history("m2")] == ["received", "delivered"]
        assert sorted(r.route for r in journal.find(key=("order_id", "SO1"))) == ["audit", "orders"]
        assert journal.find(message_id="m1", route="orders")[0].business_keys == {
            "order_id": "SO1",
            "msisdn": "13307550001",
        }
        assert journal.find(message_id="m1", route="orders")[0].delivery_count == 2
        assert {e.message_id for e in journal.trace("13307550001")} == {"m1", "m2"}
        assert journal.outcome("orders", "m1") == "delivered"
        [dead], _ = journal.dead_letters()
        assert (dead.id, dead.business_keys) == ("m3", {"order_id": "SO3"})
        assert journal.find(key=("order_id", "SO9")) == []
        later = Message(body=b"<new/>", id="m4", business_keys={"order_id": "SO4"})
        journal.received("orders", later)  # new rows and event ids follow the copied ones
        journal.event("orders", journal_message("m1"), "replayed")
        assert [e.id > 7 for e in journal.history("m4")] == [True]
        assert journal.outcome("orders", "m1") is None
        assert journal.counts()["orders"]["delivered"] == 3


def journal_message(message_id: str) -> Message:
    """A message with just an id (an event about a message already journaled)."""
    return Message(body=b"", id=message_id)


def test_the_0007_migration_goes_back_to_0006(journal_url: str) -> None:
    """Downgrading 0007 gives 0006's ids in events, a deliveries row per delivered endpoint, and the keys."""
    with Journal(journal_url) as journal:
        message = Message(body=order_body(1), id="m1", business_keys={"order_id": "SO1"})
        journal.received("orders", message)
        journal.mark_delivered("orders", message, "iom.orders_in", body=b"<sent/>", finish=message)
    engine = sa.create_engine(journal_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0006_journal_compact")
        deliveries = conn.execute(sa.text("SELECT route, message_id, endpoint FROM deliveries")).all()
        events = conn.execute(sa.text("SELECT message_id, state FROM events ORDER BY id")).all()
        keys = conn.execute(sa.text("SELECT message_id, name, value FROM business_keys")).all()
    engine.dispose()
    assert [tuple(r) for r in deliveries] == [("orders", "m1", "iom.orders_in")]
    assert [tuple(r) for r in events] == [("m1", "received"), ("m1", "delivered"), ("m1", "delivered")]
    assert [tuple(r) for r in keys] == [("m1", "order_id", "SO1")]
    with Journal(journal_url) as journal:  # and up again
        assert journal.body("m1") == order_body(1)
        assert journal.was_delivered("orders", "m1", "iom.orders_in")


# -- retention ----------------------------------------------------------------------------------------
def test_prune_archives_then_deletes_old_finished_messages_and_keeps_the_rest(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old delivered and filtered go (archived first); dead letters, in-flight and young messages stay."""
    at(monkeypatch, 40)
    old_delivered = [deliver(journal, n) for n in range(3)]
    old_filtered = deliver(journal, 10, state="filtered")
    old_dead = deliver(journal, 20, state="dead_lettered")
    old_in_flight = deliver(journal, 30, state="received")
    at(monkeypatch, 20)
    middle_filtered = deliver(journal, 40, state="filtered")
    at(monkeypatch, 1)
    young = deliver(journal, 50)
    monkeypatch.undo()
    archive = tmp_path / "archive"
    result = journal.prune(Policy(delivered_days=30, filtered_days=10, archive=archive, batch=2))
    gone = {m.id for m in (*old_delivered, old_filtered, middle_filtered)}
    assert result.messages == len(gone)
    for message in (old_dead, old_in_flight, young):
        assert journal.body(message.id) == message.body_bytes()
    assert journal.find(state="dead_lettered")[0].id == old_dead.id
    for mid in gone:
        assert journal.history(mid) == []
        assert journal.find(message_id=mid) == []
    with journal._read().connect() as conn:
        keyed = business_keys.join(messages, messages.c.seq == business_keys.c.message_seq)
        left = set(conn.execute(sa.select(messages.c.id).select_from(keyed)).scalars())
    assert left == {old_dead.id, old_in_flight.id, young.id}
    records = [r for f in sorted(archive.iterdir()) for r in read_archive(f)]
    assert {r["id"] for r in records} == gone
    first = next(r for r in records if r["id"] == old_delivered[0].id)
    assert archived_body(first) == old_delivered[0].body_bytes()
    assert [e["state"] for e in first["events"]] == ["received", "delivered", "delivered"]
    assert first["business_keys"] == {"order_id": "SO00000000"}
    assert [d["endpoint"] for d in first["deliveries"]] == ["iom.orders_in"]
    assert journal.prune(Policy(30, 10, archive)).messages == 0  # nothing left to prune


def test_a_message_on_two_routes_keeps_its_keys_while_one_row_remains(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pruning the message on one route keeps its business keys for the route where it is still kept."""
    at(monkeypatch, 40)
    message = deliver(journal, 1, route="a")
    journal.received("b", message)
    journal.event("b", message, "dead_lettered", endpoint="dlq.b")
    monkeypatch.undo()
    assert journal.prune(Policy(delivered_days=30, filtered_days=None, archive=None)).messages == 1
    assert [r.route for r in journal.find(key=("order_id", "SO00000001"))] == ["b"]


def test_without_days_nothing_is_pruned(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy with no days set keeps every message, however old."""
    at(monkeypatch, 400)
    deliver(journal, 1)
    monkeypatch.undo()
    assert journal.prune(Policy(None, None, None)).messages == 0
    assert journal.body("m00001") is not None


def test_usage_reports_rows_bytes_per_message_age_and_outcomes(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stats: rows per table, bytes and bytes per message, the oldest message, route-level outcomes."""
    at(monkeypatch, 5)
    deliver(journal, 1)
    monkeypatch.undo()
    deliver(journal, 2)
    deliver(journal, 3, state="filtered")
    deliver(journal, 4, state="dead_lettered")
    found = journal.usage()
    assert found.rows["messages"] == found.messages == 4
    assert found.rows["events"] == 2 * 3 + 2 + 2
    assert "deliveries" not in found.rows, "a delivery is its delivered event since migration 0007"
    assert found.rows["business_keys"] == 4
    assert found.outcomes == {"delivered": 2, "filtered": 1, "dead_lettered": 1}
    assert found.bytes > 0
    assert found.bytes_per_message == round(found.bytes / 4, 1)
    assert found.oldest is not None
    assert found.newest is not None
    assert timedelta(days=4.9) < found.newest - found.oldest < timedelta(days=5.1)


def test_sqlite_file_does_not_grow_when_refilled_after_a_prune(
    journal: Journal, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: a new journal is auto_vacuum incremental; prune gives pages back, a refill reuses the room."""
    if not journal_url.startswith("sqlite"):
        pytest.skip("SQLite files only")
    path = Path(journal_url.removeprefix("sqlite:///"))

    def fill(first: int) -> None:
        for n in range(first, first + 300):
            message = Message(body=os.urandom(600).hex().encode(), id=f"r{n}", business_keys={"k": str(n)})
            journal.received("orders", message)
            journal.mark_delivered(
                "orders", message, "out.x", body=os.urandom(300), event=True, finish=message
            )

    def checkpoint() -> None:
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()

    at(monkeypatch, 40)
    fill(0)
    monkeypatch.undo()
    checkpoint()
    full = path.stat().st_size
    assert journal.usage().auto_vacuum == "incremental"
    result = journal.prune(Policy(delivered_days=30, filtered_days=None, archive=None))
    assert result.messages == 300
    assert result.vacuumed_pages > 0
    checkpoint()  # the file shrinks when the WAL is written back (the hub's WAL auto-checkpoint does it)
    assert path.stat().st_size < full / 2
    fill(1000)
    checkpoint()
    assert path.stat().st_size <= full * 1.05


# -- the scheduled prune: the leader only ---------------------------------------------------------------
class _Settings:
    """The settings the scheduled prune reads."""

    def __init__(self, data_dir: Path) -> None:
        from esb.config.settings import Settings

        self.real = Settings(data_dir=data_dir)
        self.real.journal.retention.delivered_days = 30

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_the_scheduled_prune_runs_on_the_leader_only(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' schedulers share one lock: exactly one prunes; the other does nothing."""
    at(monkeypatch, 40)
    deliver(journal, 1)
    monkeypatch.undo()
    settings = _Settings(tmp_path).real
    elections = [
        LeaderElection("journal:prune", settings, lock=FileLock("journal:prune", tmp_path)) for _ in range(2)
    ]
    for election in elections:
        election.start()
    try:
        assert any(e.elected.wait(5) for e in elections)
        results = [ScheduledPrune(journal, settings, e).run_once() for e in elections]
    finally:
        for election in elections:
            election.stop()
    done = [r for r in results if r is not None]
    assert len(done) == 1
    assert done[0].messages == 1
    assert (tmp_path / "archive" / "journal").is_dir()


def test_the_scheduled_prune_runs_every_interval_until_stopped(journal: Journal, tmp_path: Path) -> None:
    """The thread prunes again at every interval while leader, and ends when stopped."""
    settings = _Settings(tmp_path).real
    settings.journal.retention.every = 0.05

    class Leader:
        is_leader = True

    pruner = ScheduledPrune(journal, settings, Leader())
    assert ScheduledPrune.wanted(settings)
    pruner.start()
    deadline = time.monotonic() + 30
    while pruner.runs < 3:
        assert time.monotonic() < deadline, f"{pruner.runs} prunes in 30 s at a 50 ms interval"
        time.sleep(0.01)
    pruner.stop()
    pruner.join(30)
    assert not pruner.is_alive()


# -- the commands ---------------------------------------------------------------------------------------
def test_esb_journal_stats_and_prune_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`esb journal stats --json` reports the figures; `prune --delivered-days` archives and prunes."""
    import json

    from click.testing import CliRunner

    from esb.cli.main import cli
    from tests.unit.routes_fixture import make_project

    project = make_project(tmp_path, [], ["a.in"])
    with Journal(project.settings.journal.url) as journal:
        at(monkeypatch, 40)
        deliver(journal, 1)
        monkeypatch.undo()
        deliver(journal, 2, state="dead_lettered")

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli, ["--project", str(project.root), "journal", *args])
        assert result.exit_code == 0, result.output
        return result.output

    stats = json.loads(run("stats", "--json"))
    assert stats["messages"] == 2
    assert stats["outcomes"] == {"delivered": 1, "dead_lettered": 1}
    assert "nothing to prune" in run("prune")
    pruned = json.loads(run("prune", "--delivered-days", "30", "--json"))
    assert pruned["messages"] == 1
    assert pruned["archives"] == [f"{(utcnow() - timedelta(days=40)):%Y-%m-%d}.jsonl.gz"]
    assert (Path(project.settings.data_dir) / "archive" / "journal" / pruned["archives"][0]).is_file()
    assert "messages: 1" in run("stats")


def test_another_process_prunes_bodies_it_never_compressed(
    journal: Journal, journal_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`esb journal prune` in a new process archives the original bytes (it loads the dictionaries)."""
    at(monkeypatch, 40)
    sent = [deliver(journal, n) for n in range(SAMPLES + 3)]
    monkeypatch.undo()
    with Journal(journal_url) as other:
        result = other.prune(Policy(delivered_days=30, filtered_days=None, archive=tmp_path / "arch"))
    assert result.messages == len(sent)
    records = {r["id"]: r for f in (tmp_path / "arch").iterdir() for r in read_archive(f)}
    assert archived_body(records[sent[-1].id]) == sent[-1].body_bytes()


def test_a_new_connection_opens_while_another_process_writes(journal: Journal, journal_url: str) -> None:
    """A pooled connection opened while another process holds the write lock reads at once (WAL)."""
    if not journal_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    deliver(journal, 1)
    journal._read().dispose()  # the next read opens a new connection (its pragmas run then)
    holder = sqlite3.connect(journal_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert journal.body("m00001") == order_body(1)
        assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_hub_prunes_on_its_schedule_when_retention_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub with journal.retention days prunes old delivered messages by itself and stops its pruner."""
    from esb.runtime.hub import Hub
    from esb.testing import BROKER
    from tests.unit.routes_fixture import make_project
    from tests.unit.test_worker import ENDPOINTS, route

    BROKER.reset()
    project = make_project(tmp_path, [route()], ENDPOINTS)
    project.settings.monitoring.enabled = False
    project.settings.journal.retention.delivered_days = 30
    project.settings.journal.retention.every = 0.05
    with Journal(project.settings.journal.url) as journal:
        at(monkeypatch, 40)
        deliver(journal, 1)
        monkeypatch.undo()
    hub = Hub(project)
    hub.start()
    try:
        deadline = time.monotonic() + 10
        # the prune's commit deletes the row a moment before the pruner counts its run
        while time.monotonic() < deadline and (hub.journal.find(message_id="m00001") or not hub.pruner.runs):
            time.sleep(0.05)
        assert hub.journal.find(message_id="m00001") == []
        assert hub.pruner.runs >= 1
    finally:
        hub.stop()
    assert not hub.pruner.is_alive()
    assert list((Path(project.settings.data_dir) / "archive" / "journal").iterdir())
