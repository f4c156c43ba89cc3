"""How the process engine writes a step (issue 15's step cost): one transaction per step, the row each
write returns used instead of a read, a cancel looked up only when a write saw one, the lease a call
needs written with the move before it, the end written with the last step, and the fixed statements
built once per dialect."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from esb.exceptions import TransportError
from esb.message import Message
from esb.process.engine import ProcessStore, Runner, request_cancel, undo
from esb.process.engine import store as store_module
from esb.process.engine.inbox import to_row
from esb.process.engine.statements import for_dialect
from esb.process.engine.store import Claim
from esb.process.engine.tables import process_inbox, process_instances
from tests.unit.test_process_engine import (
    ON_CANCEL,
    RESERVE,
    START,
    UNDOS,
    Clock,
    FakeResources,
    instance,
    order,
    process,
    steps_of,
)

FOUR_STEPS = [
    {"name": "start", "set_state": "inProgress"},
    RESERVE,
    {"name": "activate", "send": {"endpoint": "oss.activate"}},
    {"name": "done", "set_state": "completed"},
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProcessStore]:
    """A migrated process store on a SQLite file."""
    with ProcessStore(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    """The tests' clock."""
    return Clock()


@pytest.fixture
def fakes() -> FakeResources:
    """In-memory endpoints."""
    return FakeResources()


class Statements:
    """Counts the transactions begun and the statements that read ``process_instances`` on a store."""

    def __init__(self, store: ProcessStore) -> None:
        self.begun = 0
        self.reads = 0
        self.keys = 0
        self.step_updates = 0
        self.engine = store._engine  # the pool's engine: its listeners hear every view of it (the writer)
        assert self.engine is not None
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "before_cursor_execute", self._execute)

    def _begin(self, _conn: Any) -> None:
        self.begun += 1

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM process_instances" in statement:
            self.reads += 1
        if "INTO process_keys" in statement:
            self.keys += 1
        if statement.lstrip().upper().startswith("UPDATE PROCESS_STEPS"):
            self.step_updates += 1

    def stop(self) -> None:
        """Stop counting."""
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._execute)


def test_each_step_is_one_transaction_and_the_instance_is_never_read_between_steps(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """A 4-step instance: 5 transactions (claim, a step each, the last with the end), no read, keys once."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)
    iid = runner.start(process(FOUR_STEPS), order())
    counted = Statements(store)
    try:
        assert runner.run_due() == 1
    finally:
        counted.stop()
    row = instance(store, iid)
    assert (row.status, row.state, row.lease_owner) == ("completed", "completed", None)
    assert [path for path, _ in steps_of(store, iid)] == ["start", "reserve", "activate", "done"]
    assert counted.begun == 6  # claim, 4 steps (the last with the end); and the claim that finds nothing
    assert counted.reads == 0
    assert counted.keys == 1  # recorded after the call; the send after it finds no new key
    assert counted.step_updates == 0  # no wait or await in the definition: no open wait to close


def test_the_lease_a_call_needs_is_written_with_the_step_before_it(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """The call sees its lease past timeout + lease, written by the step before (no extension of its own)."""
    seen: list[datetime] = []

    def answer(_message: Message) -> dict[str, Any]:
        with store.engine.connect() as conn:
            seen.append(conn.execute(sa.select(process_instances.c.lease_until)).scalar_one())
        return {}

    fakes.endpoint("slow.ep").reply = answer
    runner = Runner(store, fakes, owner="r", lease=5, clock=clock)
    flow = [
        {"name": "start", "set_state": "inProgress"},
        {"name": "slow", "call": {"endpoint": "slow.ep", "timeout": "30s"}},
    ]
    runner.start(process(flow), order())
    counted = Statements(store)
    try:
        runner.run_due()
    finally:
        counted.stop()
    assert seen == [START + timedelta(seconds=35)]
    # claim, start (with the lease), the test's read in the call, slow with the end, the claim that finds
    # nothing
    assert counted.begun == 5


def test_a_cancel_that_arrives_during_a_call_stops_the_instance_before_its_next_step(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """The call's write sees the waiting cancel: the done call is undone, the next step never runs."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)

    def reserve(_message: Message) -> dict[str, Any]:
        answer = request_cancel(store, "p", "order_id", "o-1", Message(body={}, id="c-1"), now=clock())
        assert answer.accepted
        return {"ok": True}

    fakes.endpoint("rim.reserve").reply = reserve
    iid = runner.start(process(FOUR_STEPS, compensations=UNDOS, on_cancel=ON_CANCEL), order())
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("cancelled", "cancelled")
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"]
    assert fakes.calls("oss.activate") == []


def test_a_cancel_that_arrives_during_a_call_that_then_backs_off_is_acted_on_at_once(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """A step that would wait (a retry's backoff) goes on when its write saw a cancel: no timer waited."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)

    def reserve(_message: Message) -> dict[str, Any]:
        assert request_cancel(store, "p", "order_id", "o-1", Message(body={}, id="c-1"), now=clock()).accepted
        raise TransportError("RIM away")

    fakes.endpoint("rim.reserve").reply = reserve
    flow = [
        {"name": "start", "set_state": "inProgress"},
        {"name": "reserve", "call": {"endpoint": "rim.reserve", "retry": {"max": 3, "initial": "1h"}}},
    ]
    iid = runner.start(process(flow, on_cancel=ON_CANCEL), order())
    runner.run_due()  # the clock does not move: the 1h backoff is never waited
    row = instance(store, iid)
    assert (row.status, row.state) == ("cancelled", "cancelled")
    assert fakes.calls("rim.reserve") == [f"{iid}:reserve"]


def test_a_claim_without_a_row_reads_the_instance_once_and_runs_it(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """A claim made from its id, owner and fence alone (no row seen) reads the row first, then runs on."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)
    iid = runner.start(process(FOUR_STEPS), order())
    held = store.claim("r", 60, clock())
    assert held is not None
    bare = Claim(held.instance_id, held.owner, held.fence)
    counted = Statements(store)
    try:
        runner.advance(bare)
    finally:
        counted.stop()
    assert instance(store, iid).status == "completed"
    assert counted.reads == 1


def test_the_fixed_statements_are_built_once_per_dialect() -> None:
    """The same dialect gets the same statements; PostgreSQL's claim skips locked rows, SQLite's cannot."""
    assert for_dialect("sqlite") is for_dialect("sqlite")
    lite = str(for_dialect("sqlite").claim.compile(dialect=sqlite.dialect()))
    pg = str(for_dialect("postgresql").claim.compile(dialect=postgresql.dialect()))
    assert "SKIP LOCKED" in pg
    assert "SKIP LOCKED" not in lite
    assert "RETURNING" in lite
    assert "cancel_waiting" in lite


def test_a_closed_store_has_no_engine_until_connected_again(tmp_path: Path) -> None:
    """close() drops the writing engine (kept since connect); connect() makes it anew and runs on it."""
    store = ProcessStore(f"sqlite:///{tmp_path / 'journal.db'}")
    store.connect()
    store.close()
    with pytest.raises(RuntimeError, match=r"connect\(\) first"):
        _ = store.engine
    store.connect()
    try:
        runner = Runner(store, FakeResources(), owner="r", clock=Clock())
        iid = runner.start(process([{"name": "start", "set_state": "inProgress"}]), order())
        assert runner.run_due() == 1
        assert instance(store, iid).state == "inProgress"
    finally:
        store.close()


def test_a_round_of_run_due_checks_out_one_connection(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """Two instances of 4 steps are claimed, run and ended on one connection taken from the pool once."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)
    runner.start(process(FOUR_STEPS), order("o-1"))
    runner.start(process(FOUR_STEPS), order("o-2"))
    pool = store.engine.pool
    checkouts: list[object] = []

    def checkout(*_args: Any) -> None:
        checkouts.append(object())

    event.listen(pool, "checkout", checkout)
    try:
        assert runner.run_due() == 2
    finally:
        event.remove(pool, "checkout", checkout)
    assert len(checkouts) == 1


def test_a_held_connection_the_database_dropped_is_not_used_again(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """The round's connection invalidated mid-instance (a dropped database): the next step writes anew."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)
    dropped: list[bool] = []

    def reserve(_message: Message) -> dict[str, Any]:
        held = store._held.conn  # the round's connection, as a dropped database leaves it
        held.invalidate()
        dropped.append(held.invalidated)
        return {"ok": True}

    fakes.endpoint("rim.reserve").reply = reserve
    iid = runner.start(process(FOUR_STEPS), order())
    assert runner.run_due() == 1
    assert dropped == [True]
    assert (instance(store, iid).status, instance(store, iid).lease_owner) == ("completed", None)


def test_a_held_connection_idle_too_long_is_checked_out_again(
    store: ProcessStore, fakes: FakeResources, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HOLD_IDLE passed before every transaction, each one takes its connection from the pool again."""
    monkeypatch.setattr(store_module, "HOLD_IDLE", -1.0)
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)
    iid = runner.start(process(FOUR_STEPS), order())
    pool = store.engine.pool
    checkouts: list[object] = []

    def checkout(*_args: Any) -> None:
        checkouts.append(object())

    event.listen(pool, "checkout", checkout)
    try:
        assert runner.run_due() == 1
    finally:
        event.remove(pool, "checkout", checkout)
    assert instance(store, iid).status == "completed"
    assert len(checkouts) == 7  # the hold's, then one per transaction: 2 claims, 4 steps (with the end)


def test_a_cancel_seen_by_the_last_steps_write_is_taken_instead_of_the_end(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """A cancel that arrives during the last step's call: not ended completed, the call is undone."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)

    def reserve(_message: Message) -> dict[str, Any]:
        assert request_cancel(store, "p", "order_id", "o-1", Message(body={}, id="c-1"), now=clock()).accepted
        return {"ok": True}

    fakes.endpoint("rim.reserve").reply = reserve
    flow = [{"name": "start", "set_state": "inProgress"}, RESERVE]
    iid = runner.start(process(flow, compensations=UNDOS, on_cancel=ON_CANCEL), order())
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state, row.lease_owner) == ("cancelled", "cancelled", None)
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"]


def test_the_end_with_the_last_step_buries_replies_for_a_key_that_step_recorded(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """A reply waiting for a business key the last step records is dead once the instance has ended."""
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)
    fakes.endpoint("rim.reserve").reply = lambda _m: {"resource": "R-9"}
    keys = {"order_id": "data.id", "resource": "data.reservation.resource"}
    flow = [{"name": "start", "set_state": "inProgress"}, RESERVE]
    iid = runner.start(process(flow, business_keys=keys, compensations=UNDOS), order())
    with store.engine.begin() as conn:
        conn.execute(
            process_inbox.insert().values(
                process="p",
                correlation_key="R-9",
                reply_name="oss.results",
                message_id="r-9",
                message=to_row(Message(body={}, id="r-9")),
                received_at=clock(),
                status="waiting",
            )
        )
    runner.run_due()
    assert instance(store, iid).status == "completed"
    with store.engine.connect() as conn:
        status, reason = conn.execute(sa.select(process_inbox.c.status, process_inbox.c.reason)).one()
    assert (status, reason) == ("dead", f"instance {iid} ended (completed)")


def test_a_last_step_whose_transaction_fails_at_the_end_is_run_again_with_it(
    store: ProcessStore, fakes: FakeResources, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last step and the end commit together: a failure in the end leaves neither; a rerun does both."""
    write_end = undo.write_end
    failures = [TransportError("the database went away before the commit")]

    def failing(*args: Any) -> None:
        write_end(*args)
        if failures:
            raise failures.pop()

    monkeypatch.setattr(undo, "write_end", failing)
    runner = Runner(store, fakes, owner="r", lease=60, clock=clock)
    iid = runner.start(process(FOUR_STEPS), order())
    with pytest.raises(TransportError):
        runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state, row.position, row.lease_owner) == ("running", "inProgress", 3, "r")
    assert [path for path, _ in steps_of(store, iid)] == ["start", "reserve", "activate"]
    clock.advance(61)  # the lease of the failed round runs out
    assert runner.run_due() == 1
    row = instance(store, iid)
    assert (row.status, row.state, row.lease_owner) == ("completed", "completed", None)
    assert [path for path, _ in steps_of(store, iid)] == ["start", "reserve", "activate", "done"]
