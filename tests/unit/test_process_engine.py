"""The process engine on SQLite: each step kind, retries, awaits and the inbox, timers, compensation,
cancel, pinned versions and leases, with in-memory endpoints and a clock the tests move."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from esb.exceptions import ConfigError, RemoteError, TransportError
from esb.journal.migrate import alembic_config, upgrade
from esb.message import Message
from esb.process.definition import Process
from esb.process.engine import (
    ProcessStore,
    ProjectResources,
    Runner,
    correlations,
    deliver_reply,
    feed,
    request_cancel,
)
from esb.process.engine.tables import process_inbox, process_instances, process_steps
from esb.testing import BROKER
from tests.unit.test_process_lint import write_project

START = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeEndpoint:
    """An in-memory endpoint: a Requester (``request``) and a Sink (``write``) that records each call."""

    def __init__(self, name: str, log: list[tuple[str, str, Any]]) -> None:
        self.name = name
        self.log = log
        self.failures: list[Exception] = []
        self.reply: Callable[[Message], Any] = lambda m: {"ok": True, "from": self.name}

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def request(self, message: Message, timeout: float) -> Message:
        """Record the call; raise the next scripted failure or answer."""
        self.log.append((self.name, message.headers["idempotency-key"], message.body))
        if self.failures:
            raise self.failures.pop(0)
        return Message(body=self.reply(message))

    def write(self, message: Message) -> None:
        """Record the send; raise the next scripted failure."""
        self.log.append((self.name, message.headers["idempotency-key"], message.body))
        if self.failures:
            raise self.failures.pop(0)


class OneWay:
    """An endpoint that only sends (no request())."""

    def __init__(self, inner: FakeEndpoint) -> None:
        self.inner = inner

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def write(self, message: Message) -> None:
        """Send through the recording endpoint."""
        self.inner.write(message)


class Mapping:
    """A transform that maps the body with a function."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def apply(self, message: Message) -> Message:
        """Return the message with the mapped body."""
        return message.replace(body=self.fn(message.body))


class FakeResources:
    """In-memory endpoints (made on first use) and transforms for a runner."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, Any]] = []
        self.endpoints: dict[str, FakeEndpoint] = {}
        self.one_way: set[str] = set()
        self.transforms: dict[str, Mapping] = {}

    def endpoint(self, name: str) -> FakeEndpoint:
        """Return the recording endpoint ``name``."""
        return self.endpoints.setdefault(name, FakeEndpoint(name, self.log))

    def sink(self, endpoint: str) -> Any:
        """The endpoint's sink (one way for those in ``one_way``)."""
        found = self.endpoint(endpoint)
        return OneWay(found) if endpoint in self.one_way else found

    def transform(self, name: str) -> Mapping:
        """The transform ``name`` (KeyError for one the test did not give)."""
        return self.transforms[name]

    def calls(self, endpoint: str) -> list[str]:
        """The idempotency keys sent to ``endpoint``, in order."""
        return [key for name, key, _ in self.log if name == endpoint]


def process(steps: list[dict[str, Any]], **extra: Any) -> Process:
    """A process ``p`` keyed by ``data.id`` with these steps."""
    document: dict[str, Any] = {
        "process": "p",
        "version": 1,
        "trigger": {"from": "hub.orders"},
        "business_keys": {"order_id": "data.id"},
        "steps": steps,
        **extra,
    }
    return Process.model_validate(document)


RESERVE = {
    "name": "reserve",
    "call": {"endpoint": "rim.reserve", "into": "reservation"},
    "compensate": "release",
}
ACTIVATE = {"name": "activate", "send": {"endpoint": "oss.activate"}, "compensate": "deactivate"}
RESULT = {
    "name": "result",
    "await": {
        "from": "oss.results",
        "reply_to": "activate",
        "correlate": {"key": "order_id", "match": "body.orderId"},
        "deadline": "30m",
        "success": "body.result == 'COMPLETED'",
        "into": "activation",
    },
}
UNDOS = [
    {"name": "release", "call": {"endpoint": "rim.release", "retry": {"max": 2, "initial": "1s"}}},
    {"name": "deactivate", "call": {"endpoint": "oss.deactivate", "retry": {"max": 2, "initial": "1s"}}},
]
FLOW = [
    {"name": "start", "set_state": "inProgress"},
    RESERVE,
    ACTIVATE,
    RESULT,
    {"name": "done", "set_state": "completed"},
]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite file (tests/integration gives a PostgreSQL database instead)."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[ProcessStore]:
    """A migrated process store."""
    with ProcessStore(store_url) as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    """The tests' clock."""
    return Clock()


@pytest.fixture
def fakes() -> FakeResources:
    """In-memory endpoints, OSS activation one way."""
    resources = FakeResources()
    resources.one_way.add("oss.activate")
    return resources


@pytest.fixture
def runner(store: ProcessStore, fakes: FakeResources, clock: Clock) -> Runner:
    """A runner on the store with the fakes and the clock."""
    return Runner(store, fakes, owner="r1", lease=60, clock=clock)


def instance(store: ProcessStore, instance_id: str) -> Any:
    """The instance's row."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(process_instances).where(process_instances.c.id == instance_id)).one()


def steps_of(store: ProcessStore, instance_id: str) -> list[tuple[str, str]]:
    """(path, state) of every step row, in order."""
    s = process_steps.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(s.path, s.state).where(s.instance_id == instance_id).order_by(s.id))
        return [(r.path, r.state) for r in rows]


def inbox(store: ProcessStore) -> list[tuple[str, str, str | None]]:
    """(message id, status, reason) of every inbox row."""
    i = process_inbox.c
    with store.engine.connect() as conn:
        return [
            (r.message_id, r.status, r.reason)
            for r in conn.execute(sa.select(i.message_id, i.status, i.reason))
        ]


def order(order_id: str = "o-1") -> Message:
    """A trigger message for order ``order_id``."""
    return Message(body={"id": order_id}, id=f"trigger-{order_id}")


def reply(order_id: str = "o-1", result: str = "COMPLETED", message_id: str = "r-1") -> Message:
    """An OSS result for ``order_id``."""
    return Message(body={"orderId": order_id, "result": result}, id=message_id)


# -- tests --------------------------------------------------------------------------------------------------
def test_migration_creates_the_process_tables(store: ProcessStore) -> None:
    """The store's connect migrates the journal database to the process tables."""
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {
        "process_definitions",
        "process_instances",
        "process_keys",
        "process_steps",
        "process_inbox",
    } <= tables


def test_call_and_send_carry_the_idempotency_key_and_the_instance_completes(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """A call's reply goes into data; call and send carry <instance id>:<step path>; the order completes."""
    definition = process(
        [
            {"name": "start", "set_state": "inProgress"},
            RESERVE,
            ACTIVATE,
            {"name": "done", "set_state": "completed"},
        ],
        compensations=UNDOS,
    )
    iid = runner.start(definition, order())
    assert runner.run_due() == 1
    row = instance(store, iid)
    assert (row.status, row.state) == ("completed", "completed")
    assert row.data["reservation"] == {"ok": True, "from": "rim.reserve"}
    assert fakes.calls("rim.reserve") == [f"{iid}:reserve"]
    assert fakes.calls("oss.activate") == [f"{iid}:activate"]
    assert row.lease_owner is None


def test_a_trigger_delivered_twice_starts_one_instance(runner: Runner) -> None:
    """Starting with the same trigger message id returns the first instance."""
    definition = process([{"name": "start", "set_state": "inProgress"}])
    assert runner.start(definition, order()) == runner.start(definition, order())


def test_request_and_trigger_transforms_are_applied(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """The trigger transform makes the data; the request transform reads the process view with the key."""
    fakes.transforms["t/in"] = Mapping(lambda b: {"id": b["orderNo"]})
    fakes.transforms["t/req"] = Mapping(
        lambda view: {"order": view["data"]["id"], "key": view["idempotency_key"]}
    )
    definition = process(
        [{"name": "reserve", "call": {"endpoint": "rim.reserve", "request": "t/req"}}],
        trigger={"from": "hub.orders", "transform": "t/in"},
    )
    iid = runner.start(definition, Message(body={"orderNo": "o-9"}))
    runner.run_due()
    assert fakes.log == [("rim.reserve", f"{iid}:reserve", {"order": "o-9", "key": f"{iid}:reserve"})]


def test_transient_failure_is_retried_after_its_backoff_with_the_same_key(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A transport error waits the backoff as wake_at, then the call is repeated with the same key."""
    fakes.endpoint("rim.reserve").failures = [TransportError("down")]
    iid = runner.start(process([RESERVE], compensations=UNDOS), order())
    runner.run_due()
    assert instance(store, iid).status == "running"
    clock.advance(0.5)
    assert runner.run_due() == 0  # backoff 1s not over
    clock.advance(0.5)
    runner.run_due()
    assert instance(store, iid).status == "completed"
    assert fakes.calls("rim.reserve") == [f"{iid}:reserve", f"{iid}:reserve"]
    assert steps_of(store, iid) == [("reserve", "failed"), ("reserve", "done")]


def test_failure_undoes_done_steps_in_reverse_order(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """A refused call undoes the done steps, latest first, each with <key>:compensate; the order fails."""
    fakes.endpoint("billing.create").failures = [RemoteError("invalid account", code="E1")]
    flow = [
        {"name": "start", "set_state": "inProgress"},
        RESERVE,
        ACTIVATE,
        {"name": "bill", "call": {"endpoint": "billing.create"}},
    ]
    iid = runner.start(process(flow, compensations=UNDOS), order())
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("failed", "failed")
    assert "invalid account" in row.error
    assert [name for name, _, _ in fakes.log] == [
        "rim.reserve",
        "oss.activate",
        "billing.create",
        "oss.deactivate",
        "rim.release",
    ]
    assert fakes.calls("oss.deactivate") == [f"{iid}:activate:compensate"]
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"]


def test_an_undo_that_keeps_failing_leaves_the_instance_stuck_and_visible(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A failing undo is retried per its retry policy, then the instance is stuck with the error."""
    fakes.endpoint("billing.create").failures = [RemoteError("no")]
    fakes.endpoint("rim.release").failures = [TransportError("down")] * 3
    flow = [
        {"name": "start", "set_state": "inProgress"},
        RESERVE,
        {"name": "bill", "call": {"endpoint": "billing.create"}},
    ]
    iid = runner.start(process(flow, compensations=UNDOS), order())
    for _ in range(4):
        runner.run_due()
        clock.advance(10)
    row = instance(store, iid)
    assert row.status == "stuck"
    assert "release" in row.error
    assert "failed 3 time(s)" in row.error
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"] * 3


def test_a_reply_that_comes_before_the_await_is_kept_and_consumed(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """An early reply waits in the inbox; the await consumes it and maps it into data."""
    flow = [{"name": "start", "set_state": "inProgress"}, {"name": "pause", "wait": {"for": "1m"}}, RESULT]
    iid = runner.start(process(flow), order())
    runner.run_due()
    assert deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock()) == "waiting"
    clock.advance(60)
    runner.run_due()
    row = instance(store, iid)
    assert row.status == "completed"
    assert row.data["activation"] == {"orderId": "o-1", "result": "COMPLETED"}
    assert inbox(store) == [("r-1", "consumed", None)]


def test_a_reply_wakes_a_waiting_await(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """An instance waiting on an await is due as soon as its reply is delivered, not at its deadline."""
    iid = runner.start(process(FLOW, compensations=UNDOS), order())
    runner.run_due()
    assert instance(store, iid).status == "running"
    assert runner.run_due() == 0
    deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock())
    assert runner.run_due() == 1
    assert (instance(store, iid).status, instance(store, iid).state) == ("completed", "completed")


def test_a_reply_for_another_order_or_a_duplicate_is_not_applied(
    store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """A reply for an unknown key is dead with why; the same message id twice is a duplicate."""
    runner.start(process(FLOW, compensations=UNDOS), order())
    runner.run_due()
    assert deliver_reply(store, "p", "o-404", "oss.results", reply("o-404"), now=clock()) == "dead"
    assert deliver_reply(store, "p", "o-1", "oss.results", reply(message_id="r-2"), now=clock()) == "waiting"
    assert (
        deliver_reply(store, "p", "o-1", "oss.results", reply(message_id="r-2"), now=clock()) == "duplicate"
    )
    (dead,) = [r for r in inbox(store) if r[1] == "dead"]
    assert "no instance" in (dead[2] or "")


def test_replies_after_the_step_closed_or_the_instance_ended_are_dead(
    store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """A second reply for a closed await, and one after the end, are kept dead with why, never applied."""
    flow = [*FLOW, {"name": "pause", "wait": {"for": "1h"}}]
    iid = runner.start(process(flow, compensations=UNDOS), order())
    runner.run_due()
    deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock())
    runner.run_due()
    assert (
        deliver_reply(store, "p", "o-1", "oss.results", reply(result="FAILED", message_id="r-2"), now=clock())
        == "dead"
    )
    assert instance(store, iid).data["activation"]["result"] == "COMPLETED"
    reasons = {m: (s, r) for m, s, r in inbox(store)}
    assert reasons["r-2"][0] == "dead"
    assert "closed" in (reasons["r-2"][1] or "")


def test_a_reply_after_the_end_is_dead(store: ProcessStore, runner: Runner, clock: Clock) -> None:
    """A reply for an ended instance is dead-lettered in the inbox with the reason."""
    iid = runner.start(process(FLOW, compensations=UNDOS), order())
    runner.run_due()
    deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock())
    runner.run_due()
    assert instance(store, iid).status == "completed"
    assert deliver_reply(store, "p", "o-1", "oss.results", reply(message_id="r-late"), now=clock()) == "dead"
    assert next(r[2] for r in inbox(store) if r[0] == "r-late").endswith(
        "ended (completed): the reply is not applied"
    )


def test_a_reply_reporting_failure_compensates(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """An await whose success expression is false fails the instance and undoes the done steps."""
    iid = runner.start(process(FLOW, compensations=UNDOS), order())
    runner.run_due()
    deliver_reply(store, "p", "o-1", "oss.results", reply(result="FAILED"), now=clock())
    runner.run_due()
    assert instance(store, iid).status == "failed"
    assert fakes.calls("oss.deactivate") == [f"{iid}:activate:compensate"]
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"]


def test_await_timeout_retries_the_send_then_compensates(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """on_timeout retry sends reply_to again with the same key, max_retries times, then does its then."""
    result = {
        **RESULT,
        "await": {
            **RESULT["await"],
            "on_timeout": {"action": "retry", "max_retries": 1, "then": "compensate"},
        },
    }
    flow = [{"name": "start", "set_state": "inProgress"}, RESERVE, ACTIVATE, result]
    iid = runner.start(process(flow, compensations=UNDOS), order())
    runner.run_due()
    clock.advance(30 * 60 - 1)
    assert runner.run_due() == 0
    clock.advance(1)
    runner.run_due()
    assert fakes.calls("oss.activate") == [f"{iid}:activate"] * 2
    assert instance(store, iid).status == "running"
    clock.advance(30 * 60)
    runner.run_due()
    assert instance(store, iid).status == "failed"
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"]
    assert ("result", "timed_out") in steps_of(store, iid)


def test_await_timeout_alert_keeps_waiting_visibly(store: ProcessStore, runner: Runner, clock: Clock) -> None:
    """on_timeout alert sets the alert status and a late reply still completes the step."""
    result = {**RESULT, "await": {**RESULT["await"], "on_timeout": "alert"}}
    iid = runner.start(process([{"name": "start", "set_state": "inProgress"}, result]), order())
    runner.run_due()
    clock.advance(30 * 60)
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.wake_at) == ("alert", None)
    assert deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock()) == "waiting"
    runner.run_due()
    assert instance(store, iid).status == "completed"


def test_wait_fires_at_its_due_time(store: ProcessStore, runner: Runner, clock: Clock) -> None:
    """A wait is not run before its time, and is after it."""
    iid = runner.start(process([{"name": "pause", "wait": {"for": "10m"}}]), order())
    runner.run_due()
    assert instance(store, iid).wake_at == START + timedelta(minutes=10)
    clock.advance(599)
    assert runner.run_due() == 0
    clock.advance(1)
    runner.run_due()
    assert instance(store, iid).status == "completed"


def test_wait_until_a_time_in_the_data(store: ProcessStore, runner: Runner, clock: Clock) -> None:
    """wait.until reads an ISO time from the instance; one without a zone fails the instance with why."""
    definition = process([{"name": "pause", "wait": {"until": "data.at"}}])
    good = runner.start(definition, Message(body={"id": "a", "at": "2026-12-06T09:00:00+00:00"}))
    bad = runner.start(definition, Message(body={"id": "b", "at": "2026-12-06T09:00:00"}))
    runner.run_due()
    assert instance(store, good).wake_at == START + timedelta(hours=1)
    assert instance(store, bad).status == "failed"
    assert "time zone" in instance(store, bad).error


def test_goto_jumps_when_its_condition_holds(
    store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """goto with when jumps only when truthy; goto end ends the list."""
    flow = [
        {"name": "skip", "goto": {"step": "bill", "when": "data.prepaid"}},
        {"name": "reserve", "call": {"endpoint": "rim.reserve"}},
        {"name": "bill", "call": {"endpoint": "billing.create"}},
        {"name": "stop", "goto": "end"},
        {"name": "never", "call": {"endpoint": "never.called"}},
    ]
    runner.start(process(flow), Message(body={"id": "a", "prepaid": True}))
    runner.start(process(flow), Message(body={"id": "b", "prepaid": False}))
    runner.run_due()
    assert len(fakes.calls("rim.reserve")) == 1
    assert len(fakes.calls("billing.create")) == 2
    assert fakes.calls("never.called") == []


def test_a_state_the_machine_refuses_fails_the_instance(store: ProcessStore, runner: Runner) -> None:
    """set_state checks the transition with esb.model.states; a refused one fails the instance with why."""
    iid = runner.start(process([{"name": "finish", "set_state": "completed"}]), order())
    runner.run_due()
    row = instance(store, iid)
    assert row.status == "failed"
    assert "'acknowledged' -> 'completed' is not allowed" in row.error


ON_CANCEL = {"point_of_no_return": "activate", "refuse_reason": "services are active"}


def test_cancel_before_the_point_of_no_return_undoes_and_ends_cancelled(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """An accepted cancel undoes the done steps and the order ends cancelled (TMF622 states walked)."""
    flow = [
        {"name": "start", "set_state": "inProgress"},
        RESERVE,
        {"name": "pause", "wait": {"for": "1h"}},
        ACTIVATE,
    ]
    iid = runner.start(process(flow, compensations=UNDOS, on_cancel=ON_CANCEL), order())
    runner.run_due()
    answer = request_cancel(store, "p", "order_id", "o-1", Message(body={}, id="c-1"), now=clock())
    assert (answer.accepted, answer.instance_id) == (True, iid)
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("cancelled", "cancelled")
    assert ("pause", "closed") in steps_of(store, iid)
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"]
    assert fakes.calls("oss.activate") == []


def test_a_cancelled_instance_whose_undo_fails_once_is_taken_up_again_after_the_backoff(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """An undo of a cancel that fails once waits its backoff and is retried by the runner (a cancelling
    instance stays claimable), then the order ends cancelled; the retry keeps the undo's key."""
    flow = [{"name": "start", "set_state": "inProgress"}, RESERVE, {"name": "pause", "wait": {"for": "1h"}}]
    iid = runner.start(process(flow, compensations=UNDOS, on_cancel=ON_CANCEL), order())
    runner.run_due()
    fakes.endpoint("rim.release").failures = [TransportError("RIM away")]
    assert request_cancel(store, "p", "order_id", "o-1", Message(body={}, id="c-2"), now=clock()).accepted
    runner.run_due()
    assert instance(store, iid).status == "cancelling"
    clock.advance(2)
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.state) == ("cancelled", "cancelled")
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"] * 2


def test_cancel_after_the_point_of_no_return_is_refused_with_the_reason(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A cancel once the point of no return is done is refused with refuse_reason; nothing is undone."""
    flow = [
        {"name": "start", "set_state": "inProgress"},
        RESERVE,
        ACTIVATE,
        {"name": "pause", "wait": {"for": "1h"}},
    ]
    iid = runner.start(process(flow, compensations=UNDOS, on_cancel=ON_CANCEL), order())
    runner.run_due()
    answer = request_cancel(store, "p", "order_id", "o-1", Message(body={}, id="c-1"), now=clock())
    assert (answer.accepted, answer.reason) == (False, "services are active")
    assert runner.run_due() == 0
    assert instance(store, iid).status == "running"
    assert fakes.calls("rim.release") == []


def test_cancel_of_a_process_without_on_cancel_or_unknown_key_is_refused(
    store: ProcessStore, runner: Runner
) -> None:
    """Without on_cancel, or with no instance for the key, the cancel is refused and says why."""
    runner.start(process([{"name": "pause", "wait": {"for": "1h"}}]), order())
    runner.run_due()
    assert "no on_cancel" in (request_cancel(store, "p", "order_id", "o-1", Message(body={})).reason or "")
    assert "no instance" in (request_cancel(store, "p", "order_id", "o-2", Message(body={})).reason or "")


def test_an_instance_keeps_the_definition_it_started_with(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A v1 instance ends on v1's steps while new instances start on v2."""
    v1 = process([{"name": "pause", "wait": {"for": "1m"}}, {"name": "old", "call": {"endpoint": "old.ep"}}])
    v2 = process(
        [{"name": "pause", "wait": {"for": "1m"}}, {"name": "new", "call": {"endpoint": "new.ep"}}], version=2
    )
    first = runner.start(v1, order("o-1"))
    runner.run_due()
    other = Runner(store, fakes, owner="r2", clock=clock)  # a restarted hub: no definition cached
    second = other.start(v2, order("o-2"))
    for _ in range(2):
        clock.advance(60)
        other.run_due()
    assert fakes.calls("old.ep") == [f"{first}:old"]
    assert fakes.calls("new.ep") == [f"{second}:new"]


def test_a_branch_inside_a_branch_is_refused_at_start(runner: Runner) -> None:
    """A foreach inside a parallel branch is refused with the step named."""
    inner = {
        "name": "each",
        "foreach": {"items": "data.xs", "steps": [{"name": "x", "send": {"endpoint": "x.e"}}]},
    }
    definition = process(
        [
            {
                "name": "both",
                "parallel": {
                    "branches": [
                        {"name": "a", "steps": [inner]},
                        {"name": "b", "steps": [{"name": "y", "send": {"endpoint": "x.e"}}]},
                    ]
                },
            }
        ]
    )
    with pytest.raises(ConfigError, match=r"inside a branch yet: both\.a\.each"):
        runner.start(definition, order())


def test_a_leased_instance_is_not_claimed_by_a_second_runner_until_the_lease_expires(
    store: ProcessStore, clock: Clock
) -> None:
    """Runner B cannot claim what A holds; after A's lease expires B takes it and A can no longer write."""
    fakes = FakeResources()
    a = Runner(store, fakes, owner="a", lease=30, clock=clock)
    iid = a.start(process([{"name": "start", "set_state": "inProgress"}]), order())
    held = store.claim("a", 30, clock())
    assert held is not None
    assert held.instance_id == iid
    assert store.claim("b", 30, clock()) is None
    clock.advance(31)
    taken = store.claim("b", 30, clock())
    assert taken is not None
    assert taken.fence == held.fence + 1
    a.advance(held)  # its fence is stale: it stops without writing
    assert steps_of(store, iid) == []
    assert instance(store, iid).lease_owner == "b"
    b = Runner(store, fakes, owner="b", lease=30, clock=clock)
    b.advance(taken)
    assert instance(store, iid).state == "inProgress"


def test_a_call_longer_than_the_lease_extends_the_lease_first(
    store: ProcessStore, fakes: FakeResources, clock: Clock
) -> None:
    """Before a call whose timeout exceeds the lease the lease is extended past it (no takeover mid-call)."""
    seen: list[datetime] = []

    def answer(_message: Message) -> dict[str, Any]:
        with store.engine.connect() as conn:
            seen.append(conn.execute(sa.select(process_instances.c.lease_until)).scalar_one())
        return {}

    fakes.endpoint("slow.ep").reply = answer
    short = Runner(store, fakes, owner="s", lease=5, clock=clock)
    short.start(process([{"name": "slow", "call": {"endpoint": "slow.ep", "timeout": "30s"}}]), order())
    short.run_due()
    assert seen == [START + timedelta(seconds=35)]


class Overlaps:
    """An endpoint that notes when two calls for one instance are in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: set[str] = set()
        self.overlaps: list[str] = []
        self.calls: list[str] = []

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def request(self, message: Message, timeout: float) -> Message:
        """Enter, yield the CPU a little, leave; an instance entering twice is an overlap."""
        with self.lock:
            if message.correlation_id in self.active:
                self.overlaps.append(message.correlation_id)
            self.active.add(message.correlation_id)
            self.calls.append(message.headers["idempotency-key"])
        threading.Event().wait(0.002)
        with self.lock:
            self.active.discard(message.correlation_id)
        return Message(body={})


def test_two_runners_never_run_one_instance_at_once(store: ProcessStore) -> None:
    """Two runners on one database: no instance is in both at once, no call is made twice."""
    endpoint = Overlaps()
    resources = FakeResources()
    resources.endpoints["x.work"] = endpoint  # type: ignore[assignment]
    step = {"call": {"endpoint": "x.work"}}
    definition = process([{"name": "one", **step}, {"name": "two", **step}, {"name": "three", **step}])
    starter = Runner(store, resources, owner="starter")
    ids = [starter.start(definition, order(f"o-{n}")) for n in range(20)]
    runners = [Runner(store, resources, owner=f"w{n}", lease=30) for n in range(2)]
    threads = [threading.Thread(target=r.run_due) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert endpoint.overlaps == []
    assert sorted(endpoint.calls) == sorted(f"{i}:{s}" for i in ids for s in ("one", "two", "three"))
    assert {instance(store, i).status for i in ids} == {"completed"}


def test_feed_finds_the_process_and_key_of_a_reply_and_delivers_it(
    store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """feed evaluates the awaits' correlate.match on the endpoint; a reply nobody awaits is not delivered."""
    definition = process(FLOW, compensations=UNDOS)
    iid = runner.start(definition, order())
    runner.run_due()
    assert correlations([definition], "oss.results", reply()) == [("p", "o-1")]
    assert feed(store, [definition], "oss.other", reply(message_id="r-x")) == {}
    assert feed(store, [definition], "oss.results", reply(), now=clock()) == {"p": "waiting"}
    runner.run_due()
    assert instance(store, iid).status == "completed"


def test_a_cancel_step_asks_another_process_and_keeps_its_answer(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A cancel step cancels another process's instance by business key; {accepted, reason} goes into."""
    target = process(
        [{"name": "start", "set_state": "inProgress"}, RESERVE, {"name": "pause", "wait": {"for": "1h"}}],
        compensations=UNDOS,
        on_cancel=ON_CANCEL,
    )
    asker = Process.model_validate(
        {
            "process": "q",
            "version": 1,
            "trigger": {"from": "crm.cancels"},
            "business_keys": {"cancel_id": "data.id"},
            "steps": [
                {
                    "name": "cancel_order",
                    "cancel": {"process": "p", "key": "order_id", "value": "data.order", "into": "outcome"},
                },
            ],
        }
    )
    order_id = runner.start(target, order())
    runner.run_due()
    cancel_id = runner.start(asker, Message(body={"id": "c-1", "order": "o-1"}))
    runner.run_due()
    late_id = runner.start(asker, Message(body={"id": "c-2", "order": "o-1"}))
    runner.run_due()
    assert instance(store, cancel_id).data["outcome"] == {"accepted": True, "reason": None}
    late = instance(store, late_id).data["outcome"]
    assert late["accepted"] is False
    assert late["reason"].endswith("already ended (cancelled)")
    assert instance(store, order_id).status == "cancelled"
    assert fakes.calls("rim.release") == [f"{order_id}:reserve:compensate"]


def test_a_cancel_request_sent_again_gets_the_first_answer(
    store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """The same cancel message id twice: the second gets the first answer, even once the instance moved on."""
    target = process(
        [{"name": "start", "set_state": "inProgress"}, {"name": "pause", "wait": {"for": "1h"}}],
        on_cancel=ON_CANCEL,
    )
    runner.start(target, order())
    runner.run_due()
    request = Message(body={}, id="c-1")
    first = request_cancel(store, "p", "order_id", "o-1", request, now=clock())
    runner.run_due()
    assert request_cancel(store, "p", "order_id", "o-1", request, now=clock()) == first
    assert first.accepted


def test_project_resources_reach_endpoints_through_their_adapter(store: ProcessStore, tmp_path: Path) -> None:
    """With a real project a call goes through the endpoint's adapter sink (memory), with its key header."""
    project = write_project(
        tmp_path,
        {},
        endpoints={"hub.orders": {"adapter": "memory"}, "rim.reserve": {"adapter": "memory"}},
        transforms=[],
    )
    BROKER.reset()
    BROKER.box("rim.reserve").replies["*"] = {"msisdn": "13307550001"}
    resources = ProjectResources(project)
    try:
        runner = Runner(store, resources)
        iid = runner.start(process([RESERVE]), order())
        runner.run_due()
    finally:
        resources.close()
    (sent,) = BROKER.written("rim.reserve")
    assert sent.headers["idempotency-key"] == f"{iid}:reserve"
    assert instance(store, iid).data["reservation"] == {"msisdn": "13307550001"}
    BROKER.reset()


def test_the_migration_downgrades_to_the_journal_without_process_tables(store: ProcessStore) -> None:
    """Downgrading 0003_processes drops exactly the process tables; upgrading again restores them."""
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002_one_time_keys")
    with store.engine.connect() as conn:
        assert not [t for t in sa.inspect(conn).get_table_names() if t.startswith("process_")]
        assert "messages" in sa.inspect(conn).get_table_names()
    with store.engine.begin() as conn:
        upgrade(conn)
    with store.engine.connect() as conn:
        assert len([t for t in sa.inspect(conn).get_table_names() if t.startswith("process_")]) == 6


def test_an_instance_whose_data_breaks_a_step_is_stuck_and_the_others_run(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A step that cannot run on its data (a response transform raising) stops that instance, visibly."""

    def broken(_body: Any) -> Any:
        raise ValueError("no field orderNo")

    fakes.transforms["t/broken"] = Mapping(broken)
    result = {**RESULT, "await": {**RESULT["await"], "response": "t/broken"}}
    bad = runner.start(process([result]), order("o-1"))
    runner.run_due()
    deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock())
    good = runner.start(process([{"name": "start", "set_state": "inProgress"}]), order("o-2"))
    runner.run_due()
    row = instance(store, bad)
    assert row.status == "stuck"
    assert "ValueError: no field orderNo" in row.error
    assert instance(store, good).status == "completed"
