"""``esb process list|show|retry|cancel`` on SQLite: instances made by the engine with in-memory
endpoints, then read and acted on through the CLI (click's CliRunner)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from esb.cli.main import cli
from esb.exceptions import ConfigError, RemoteError, TransportError
from esb.message import Message
from esb.process.engine import ProcessStore, Runner, deliver_reply
from esb.process.engine.retry import AUDIT, retry
from esb.process.engine.tables import process_inbox, process_instances
from esb.runtime.control import who
from tests.unit.test_process_engine import (
    ACTIVATE,
    FLOW,
    ON_CANCEL,
    RESERVE,
    RESULT,
    UNDOS,
    Clock,
    FakeResources,
    Mapping,
    instance,
    order,
    process,
    reply,
    steps_of,
)
from tests.unit.test_process_lint import write_project

PAUSE = {"name": "pause", "wait": {"for": "1h"}}
BILL = {"name": "bill", "call": {"endpoint": "billing.create"}}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project whose journal (and so the process tables) is a SQLite file under its data_dir."""
    write_project(tmp_path, {})
    (tmp_path / "var").mkdir(exist_ok=True)
    return tmp_path


@pytest.fixture
def store(root: Path) -> Iterator[ProcessStore]:
    """The project's process store, migrated."""
    with ProcessStore(f"sqlite:///{root / 'var' / 'journal.db'}") as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    """A clock at the real time (the CLI tells waiting from due by the real time)."""
    made = Clock()
    made.now = datetime.now(UTC).replace(microsecond=0)
    return made


@pytest.fixture
def fakes() -> FakeResources:
    """In-memory endpoints, OSS activation one way."""
    resources = FakeResources()
    resources.one_way.add("oss.activate")
    return resources


@pytest.fixture
def runner(store: ProcessStore, fakes: FakeResources, clock: Clock) -> Runner:
    """A runner on the project's store."""
    return Runner(store, fakes, owner="r1", lease=60, clock=clock)


def esb(root: Path, *args: str) -> Result:
    """Run ``esb --project ROOT process ARGS``."""
    return CliRunner().invoke(cli, ["--project", str(root), "process", *args])


def stuck(runner: Runner, fakes: FakeResources, clock: Clock, order_id: str = "o-1") -> str:
    """An instance whose billing call was refused and whose release undo kept failing: stuck."""
    fakes.endpoint("billing.create").failures = [RemoteError("no")]
    fakes.endpoint("rim.release").failures = [TransportError("down")] * 3
    flow = [{"name": "start", "set_state": "inProgress"}, RESERVE, BILL]
    iid = runner.start(process(flow, compensations=UNDOS), order(order_id))
    for _ in range(4):
        runner.run_due()
        clock.advance(10)
    assert instance(runner.store, iid).status == "stuck"
    return iid


def waiting(runner: Runner, order_id: str = "o-1", **extra: Any) -> str:
    """An instance that reserved, then waits an hour."""
    flow = [{"name": "start", "set_state": "inProgress"}, RESERVE, PAUSE, ACTIVATE]
    iid = runner.start(process(flow, compensations=UNDOS, **extra), order(order_id))
    runner.run_due()
    return iid


def ended(runner: Runner, order_id: str) -> str:
    """An instance that completed at once."""
    flow = [{"name": "start", "set_state": "inProgress"}, {"name": "done", "set_state": "completed"}]
    iid = runner.start(process(flow), order(order_id))
    runner.run_due()
    return iid


def listed(root: Path, *args: str) -> list[dict[str, Any]]:
    """The instances ``esb process list --json ARGS`` prints."""
    result = esb(root, "list", "--json", *args)
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = orjson.loads(result.output)
    return found


def touch(store: ProcessStore, instance_id: str, updated: datetime) -> None:
    """Set an instance's updated_at (the list's order)."""
    t = process_instances
    with store.engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == instance_id).values(updated_at=updated))


# -- list ---------------------------------------------------------------------------------------------------
def test_list_filters_by_status_process_key_and_state(
    root: Path, store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """Each filter keeps only the instances that match it; waiting and ended are derived statuses."""
    w = waiting(runner, "o-1")
    e = ended(runner, "o-2")
    s = stuck(runner, fakes, clock, "o-3")
    q = runner.start(process([PAUSE], process="q"), order("o-4"))
    runner.run_due()
    assert {i["id"] for i in listed(root)} == {w, e, s, q}
    assert {i["id"] for i in listed(root, "--status", "waiting")} == {w, q}
    assert [i["id"] for i in listed(root, "--status", "ended")] == [e]
    assert [i["id"] for i in listed(root, "--status", "stuck")] == [s]
    assert {i["id"] for i in listed(root, "--status", "stuck", "--status", "completed")} == {s, e}
    assert [i["id"] for i in listed(root, "--process", "q")] == [q]
    assert [i["id"] for i in listed(root, "--key", "order_id=o-2")] == [e]
    assert {i["id"] for i in listed(root, "--state", "inProgress")} == {w, s}
    assert listed(root, "--status", "alert") == []


def test_list_line_says_what_an_instance_waits_for_and_its_keys(
    root: Path, runner: Runner, clock: Clock
) -> None:
    """A waiting instance shows its key, TMF state, the step it waits in, until when, and the last step."""
    iid = waiting(runner)
    [line] = listed(root)
    assert line["keys"] == {"order_id": "o-1"}
    assert (line["process"], line["version"], line["state"], line["status"]) == (
        "p",
        1,
        "inProgress",
        "waiting",
    )
    assert line["waits_for"] == "pause"
    assert line["until"].startswith((clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    assert line["last_step"] == "pause waiting"
    text = esb(root, "list").output
    assert iid in text
    assert "order_id=o-1  inProgress  waiting  pause" in text


def test_list_is_newest_first_and_paged(root: Path, store: ProcessStore, runner: Runner) -> None:
    """--limit and --offset page the newest-first list; a full page says how to get the next one."""
    ids = [ended(runner, f"o-{n}") for n in range(5)]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for n, iid in enumerate(ids):
        touch(store, iid, base + timedelta(minutes=n))
    newest = list(reversed(ids))
    assert [i["id"] for i in listed(root, "--limit", "2")] == newest[:2]
    assert [i["id"] for i in listed(root, "--limit", "2", "--offset", "2")] == newest[2:4]
    assert [i["id"] for i in listed(root, "--limit", "2", "--offset", "4")] == newest[4:]
    assert "--offset 2 for the next page" in esb(root, "list", "--limit", "2").output


def test_list_since_keeps_recent_updates_only(root: Path, store: ProcessStore, runner: Runner) -> None:
    """--since 2h leaves out an instance last updated a day ago."""
    old, new = ended(runner, "o-1"), ended(runner, "o-2")
    touch(store, old, datetime.now(UTC) - timedelta(days=1))
    assert [i["id"] for i in listed(root, "--since", "2h")] == [new]


def test_list_refuses_a_bad_key_or_status(root: Path, store: ProcessStore) -> None:
    """A key without '=' and an unknown status are refused with what was expected."""
    result = esb(root, "list", "--key", "order_id")
    assert isinstance(result.exception, ConfigError)
    assert "NAME=VALUE" in str(result.exception)
    result = esb(root, "list", "--status", "sleeping")
    assert result.exit_code == 2
    assert "waiting" in result.output


# -- show ---------------------------------------------------------------------------------------------------
def test_show_of_a_waiting_instance_has_steps_timers_and_what_would_be_undone(
    root: Path, runner: Runner, clock: Clock
) -> None:
    """show lists each step with its idempotency key, the wait's timer, and the reserve's pending undo."""
    iid = waiting(runner)
    result = esb(root, "show", iid, "--json")
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert [(s["path"], s["state"]) for s in shown["steps"]] == [
        ("start", "done"),
        ("reserve", "done"),
        ("pause", "waiting"),
    ]
    assert shown["steps"][1]["idempotency_key"] == f"{iid}:reserve"
    assert shown["steps"][1]["result"] == {"ok": True, "from": "rim.reserve"}
    assert {t["what"] for t in shown["timers"]} == {"instance", "step pause"}
    assert shown["would_undo"] == [{"step": "reserve", "undo": "release"}]
    text = esb(root, "show", "--key", "order_id=o-1").output
    assert f"instance  {iid}" in text
    assert "waits for pause until" in text
    assert "reserve by release" in text


def test_show_of_a_stuck_instance_has_the_error_and_each_failed_undo(
    root: Path, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A stuck instance shows why, each failed undo attempt with the same key, and the undo still due."""
    iid = stuck(runner, fakes, clock)
    shown = orjson.loads(esb(root, "show", iid, "--json").output)
    assert shown["summary"]["status"] == "stuck"
    assert "failed 3 time(s)" in shown["summary"]["error"]
    undos = [s for s in shown["steps"] if s["path"] == "reserve:compensate"]
    assert [(s["attempt"], s["state"], s["idempotency_key"]) for s in undos] == [
        (n, "failed", f"{iid}:reserve:compensate") for n in (1, 2, 3)
    ]
    assert "down" in undos[0]["error"]
    assert shown["would_undo"] == [{"step": "reserve", "undo": "release"}]


def test_show_of_an_ended_instance_has_its_inbox_and_nothing_to_undo(
    root: Path, store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """A completed order shows the consumed reply, a late reply dead with why, and nothing to undo."""
    iid = runner.start(process(FLOW, compensations=UNDOS), order())
    runner.run_due()
    late = Message(body={"orderId": "o-1", "result": "COMPLETED"}, id="r-1")
    assert deliver_reply(store, "p", "o-1", "oss.results", late, now=clock()) == "waiting"
    runner.run_due()
    again = Message(body={"orderId": "o-1", "result": "COMPLETED"}, id="r-2")
    assert deliver_reply(store, "p", "o-1", "oss.results", again, now=clock()) == "dead"
    shown = orjson.loads(esb(root, "show", iid, "--json").output)
    assert shown["summary"]["status"] == "completed"
    assert [(m["message_id"], m["status"]) for m in shown["inbox"]] == [("r-1", "consumed"), ("r-2", "dead")]
    assert "ended" in shown["inbox"][1]["reason"]
    assert shown["would_undo"] == [
        {"step": "activate", "undo": "deactivate"},
        {"step": "reserve", "undo": "release"},
    ]
    assert shown["timers"] == []
    assert RESULT["name"] in {s["path"] for s in shown["steps"]}


def test_show_of_an_unknown_id_exits_1(root: Path, store: ProcessStore) -> None:
    """An id no instance has: exit 1 and says so."""
    result = esb(root, "show", "nope")
    assert result.exit_code == 1
    assert "no process instance" in result.output


def test_show_needs_an_id_or_a_key(root: Path, store: ProcessStore, runner: Runner) -> None:
    """Neither or both of ID and --key is refused; two live instances with the key ask for the ID."""
    result = esb(root, "show")
    assert isinstance(result.exception, ConfigError)
    waiting(runner, "o-1")
    runner.start(process([PAUSE], process="q"), order("o-1"))
    runner.run_due()
    result = esb(root, "show", "--key", "order_id=o-1")
    assert isinstance(result.exception, ConfigError)
    assert "2 live instances" in str(result.exception)


# -- retry --------------------------------------------------------------------------------------------------
def test_retry_of_a_stuck_instance_reruns_its_undo_with_the_same_key_then_it_ends(
    root: Path, store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """retry makes the stuck instance due; its failed undo runs again with the same key and it ends failed."""
    iid = stuck(runner, fakes, clock)
    result = esb(root, "retry", iid)
    assert result.exit_code == 0, result.output
    assert "compensating" in result.output
    row = instance(store, iid)
    assert (row.status, row.error) == ("compensating", None)
    runner.run_due()
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"] * 4
    assert instance(store, iid).status == "failed"
    shown = orjson.loads(esb(root, "show", iid, "--json").output)
    [audit] = [s for s in shown["steps"] if s["path"] == AUDIT]
    assert (audit["result"]["was"], audit["result"]["by"]) == ("stuck", who())
    assert ("reserve:compensate", "done") in steps_of(store, iid)


def test_retry_of_a_running_or_ended_instance_is_refused(
    root: Path, store: ProcessStore, runner: Runner
) -> None:
    """Only stuck and alert instances are retried: others exit 1 with their status, nothing written."""
    iid = waiting(runner)
    before = instance(store, iid)
    result = esb(root, "retry", iid)
    assert result.exit_code == 1
    assert f"instance {iid} is running" in result.output
    assert instance(store, iid).fence == before.fence
    result = esb(root, "retry", ended(runner, "o-2"))
    assert result.exit_code == 1
    assert "is completed" in result.output
    assert "no process instance" in esb(root, "retry", "nope").output


def test_retry_of_an_alert_instance_waits_again_for_a_fresh_deadline(
    store: ProcessStore, runner: Runner, clock: Clock
) -> None:
    """An alert await is closed and opened again with a new deadline; the instance runs again."""
    result = {**RESULT, "await": {**RESULT["await"], "on_timeout": "alert"}}
    iid = runner.start(process([{"name": "start", "set_state": "inProgress"}, result]), order())
    runner.run_due()
    clock.advance(30 * 60)
    runner.run_due()
    assert instance(store, iid).status == "alert"
    answer = retry(store, iid, by="tester", now=clock())
    assert (answer.done, answer.status) == (True, "running")
    runner.run_due()
    row = instance(store, iid)
    assert (row.status, row.wake_at) == ("running", clock.now + timedelta(minutes=30))
    assert [s for s in steps_of(store, iid) if s[0] == "result"] == [
        ("result", "timed_out"),
        ("result", "closed"),
        ("result", "waiting"),
    ]


def test_retry_moves_the_fence_so_a_stale_runner_cannot_write(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """After a retry the fence is one more and the lease is free: an older claim no longer matches."""
    iid = stuck(runner, fakes, clock)
    before = instance(store, iid).fence
    assert retry(store, iid, by="tester", now=clock()).done
    row = instance(store, iid)
    assert (row.fence, row.lease_owner, row.wake_at) == (before + 1, None, clock.now)


# -- cancel -------------------------------------------------------------------------------------------------
def test_cancel_before_the_point_of_no_return_is_accepted_and_the_instance_cancels(
    root: Path, store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """Accepted: exit 0; the request is kept with who asked and why; the runner undoes and cancels."""
    iid = waiting(runner, on_cancel=ON_CANCEL)
    result = esb(root, "cancel", iid, "--reason", "customer withdrew")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("accepted")
    with store.engine.connect() as conn:
        [kept] = conn.execute(sa.select(process_inbox.c.message, process_inbox.c.status)).all()
    assert kept.status == "waiting"
    assert (kept.message["body"]["reason"], kept.message["body"]["by"]) == ("customer withdrew", who())
    clock.advance(60)  # the request woke it at the real time, after the test clock (a slow CLI run: seconds)
    runner.run_due()
    assert (instance(store, iid).status, instance(store, iid).state) == ("cancelled", "cancelled")
    assert fakes.calls("rim.release") == [f"{iid}:reserve:compensate"]


def test_cancel_after_the_point_of_no_return_is_refused_with_the_definitions_reason(
    root: Path, store: ProcessStore, runner: Runner, fakes: FakeResources
) -> None:
    """Refused: exit 1 with refuse_reason; the instance goes on untouched."""
    flow = [{"name": "start", "set_state": "inProgress"}, RESERVE, ACTIVATE, PAUSE]
    iid = runner.start(process(flow, compensations=UNDOS, on_cancel=ON_CANCEL), order())
    runner.run_due()
    result = esb(root, "cancel", "--key", "order_id=o-1")
    assert result.exit_code == 1
    assert "refused: services are active" in result.output
    assert instance(store, iid).status == "running"
    assert fakes.calls("rim.release") == []
    shown = orjson.loads(esb(root, "show", iid, "--json").output)
    assert [(m["reply_name"], m["status"]) for m in shown["inbox"]] == [("(cancel request)", "refused")]


def test_cancel_of_an_ended_instance_is_refused(root: Path, store: ProcessStore, runner: Runner) -> None:
    """An instance that already ended cannot be cancelled: exit 1 and says so."""
    iid = ended(runner, "o-1")
    result = esb(root, "cancel", iid)
    assert result.exit_code == 1
    assert "already ended (completed)" in result.output


def test_retry_of_an_instance_stuck_on_a_broken_step_reruns_that_step(
    store: ProcessStore, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A step that broke on its data (a response mapping) runs again at its position once retried."""
    broken = [True]

    def response(body: Any) -> Any:
        if broken[0]:
            raise ValueError("no field orderNo")
        return body

    fakes.transforms["t/reply"] = Mapping(response)
    result = {**RESULT, "await": {**RESULT["await"], "response": "t/reply"}}
    flow = [{"name": "start", "set_state": "inProgress"}, result, {"name": "done", "set_state": "completed"}]
    iid = runner.start(process(flow), order())
    runner.run_due()
    deliver_reply(store, "p", "o-1", "oss.results", reply(), now=clock())
    runner.run_due()
    assert instance(store, iid).status == "stuck"
    broken[0] = False
    answer = retry(store, iid, by="tester", now=clock())
    assert (answer.done, answer.status) == (True, "running")
    runner.run_due()
    assert instance(store, iid).status == "completed"
    assert ("result", "done") in steps_of(store, iid)
