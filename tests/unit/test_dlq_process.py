"""``esb dlq`` on process dead letters: grouped per ``process:<endpoint>``, shown, retried to the
endpoint they were read on, purged; what cannot be retried is refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from prometheus_client import CollectorRegistry

from esb.cli.main import cli
from esb.exceptions import MessageError
from esb.journal import Journal
from esb.message import Message
from esb.ops import dlq
from esb.project import Project
from esb.runtime.metrics import ProcessMetrics
from esb.runtime.process_inlet import DeadLetters, UnmatchedMessageError

PROCESS = """\
process: activation
version: 1
trigger:
  from: crm.orders
  type: order.submitted
business_keys:
  order_id: data.id
steps:
  - name: start
    set_state: inProgress
  - name: result
    await:
      from: oss.results
      correlate: {key: order_id, match: body.orderId}
      deadline: 30m
      success: "body.result == 'COMPLETED'"
      into: activation
  - name: done
    set_state: completed
"""

ENDPOINTS: dict[str, dict[str, Any]] = {
    "crm.orders": {"adapter": "queue", "queue": "t.crm.orders"},
    "oss.results": {"adapter": "queue", "queue": "t.oss.results"},
    "rim.reserve": {"adapter": "direct", "channel": "t-dlq-process-rim"},
    "esb.process_dead": {"adapter": "queue", "queue": "t.process.dead"},
}


def write_project(root: Path, dead_letter: str | None = "esb.process_dead") -> Project:
    """A project with one process over embedded queues and ``processes.dead_letter`` set (or not)."""
    systems: dict[str, Any] = {}
    for name, config in ENDPOINTS.items():
        system, endpoint = name.split(".", 1)
        systems.setdefault(system, {"name": system, "endpoints": {}})["endpoints"][endpoint] = config
    (root / "config").mkdir()
    (root / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}))
    settings = {
        "data_dir": str(root / "var"),
        "monitoring": {"enabled": False},
        "processes": {"dead_letter": dead_letter},
    }
    (root / "config" / "settings.yaml").write_text(yaml.safe_dump(settings))
    (root / "routes.yaml").write_text("routes: []\n")
    (root / "processes").mkdir()
    (root / "processes" / "activation.yaml").write_text(PROCESS)
    return Project.load(root, environ={})


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The process project with two unknown triggers on crm.orders and a late reply on oss.results,
    dead-lettered by the process inlet's own DeadLetters."""
    project = write_project(tmp_path)
    journal = Journal(project.settings.journal.url)
    journal.connect()
    letters = DeadLetters(project, journal, ProcessMetrics(CollectorRegistry()), "esb.process_dead")
    unknown = UnmatchedMessageError("no process starts on a message of type 'order.bogus'")
    letters.send(
        "crm.orders",
        Message(body=b'{"id": "O-1"}', id="t1", type="order.bogus", headers={"channel": "web"}),
        unknown,
    )
    letters.send(
        "crm.orders",
        Message(body='{"id": "O-2", "name": "张三"}'.encode(), id="t2", type="order.bogus"),
        unknown,
    )
    letters.send(
        "oss.results",
        Message(body=b'{"orderId": "O-9"}', id="r1"),
        UnmatchedMessageError("reply not applied: activation: instance ended"),
    )
    letters.close()
    journal.close()
    return project


def esb(project: Project, *args: str) -> Result:
    """Run ``esb --project ROOT ARGS`` in this process."""
    return CliRunner().invoke(cli, ["--project", str(project.root), *args])


def take_all(project: Project, endpoint: str) -> list[Message]:
    """Read and ack every message waiting on ``endpoint``."""
    source = project.adapter_for(endpoint).source(project.endpoint(endpoint), project.context(endpoint))
    source.connect()
    out = []
    try:
        while (delivery := source.read(0.2)) is not None:
            delivery.ack()
            out.append(delivery.message)
    finally:
        source.close()
    return out


def journal_states(project: Project, message_id: str, route: str) -> list[str]:
    """Return the journal states of ``message_id`` on ``route``, in order."""
    journal = Journal(project.settings.journal.url)
    journal.connect()
    try:
        return [e.state for e in journal.history(message_id) if e.route == route]
    finally:
        journal.close()


def test_list_shows_one_group_per_process_endpoint_with_counts(project: Project) -> None:
    """dlq list: process:crm.orders has 2 waiting and journaled, process:oss.results 1; exit 1."""
    result = esb(project, "dlq", "list", "--json")
    assert result.exit_code == 1, result.output
    report = {g["route"]: g for g in json.loads(result.output)}
    assert set(report) == {"process:crm.orders", "process:oss.results"}
    orders = report["process:crm.orders"]
    assert (orders["endpoint"], orders["waiting"], orders["journal_dead_lettered"]) == (
        "esb.process_dead",
        2,
        2,
    )
    assert [m["message_id"] for m in orders["messages"]] == ["t1", "t2"]
    assert orders["messages"][0]["error_reason"] == "unmatched-process-message"
    assert report["process:oss.results"]["waiting"] == 1
    text = esb(project, "dlq", "list")
    assert "process:crm.orders: 2 waiting on esb.process_dead, 2 dead-lettered in the journal" in text.output


def test_list_of_one_process_group_lists_only_it(project: Project) -> None:
    """dlq list process:oss.results: that group alone, with its one reply."""
    result = esb(project, "dlq", "list", "process:oss.results", "--json")
    [group] = json.loads(result.output)
    assert (group["route"], [m["message_id"] for m in group["messages"]]) == ("process:oss.results", ["r1"])


def test_show_gives_the_error_and_the_original_bytes(project: Project, tmp_path: Path) -> None:
    """dlq show process:crm.orders t2: the inlet's error, and --raw writes the original bytes exactly."""
    raw = tmp_path / "t2.bin"
    result = esb(project, "dlq", "show", "process:crm.orders", "t2", "--raw", str(raw))
    assert result.exit_code == 0, result.output
    assert "UnmatchedMessageError (unmatched-process-message)" in result.output
    assert "no process starts on a message of type 'order.bogus'" in result.output
    assert raw.read_bytes() == '{"id": "O-2", "name": "张三"}'.encode()


def test_show_without_an_id_gives_the_oldest_of_the_group(project: Project) -> None:
    """dlq show process:crm.orders: the oldest dead letter (t1), its headers kept."""
    result = esb(project, "dlq", "show", "process:crm.orders", "--json")
    shown = json.loads(result.output)
    assert (shown["message_id"], shown["route"], shown["headers"]["channel"]) == (
        "t1",
        "process:crm.orders",
        "web",
    )


def test_show_of_an_id_of_another_group_is_not_found(project: Project) -> None:
    """A reply's id under the trigger endpoint's group is not there: exit 1 with the group named."""
    result = esb(project, "dlq", "show", "process:crm.orders", "r1")
    assert result.exit_code == 1
    assert "r1 is not on the dead-letter endpoint of process:crm.orders" in result.output


def test_retry_republishes_to_the_endpoint_it_came_from(project: Project) -> None:
    """dlq retry process:crm.orders t1: t1 is back on crm.orders without the error headers, journaled
    replayed on the group, and off the dead-letter endpoint; t2 and r1 stay."""
    result = esb(project, "dlq", "retry", "process:crm.orders", "t1")
    assert result.exit_code == 0, result.output
    assert "1 re-published to crm.orders for the process inlet" in result.output
    [again] = take_all(project, "crm.orders")
    assert (again.id, again.type, again.body_bytes()) == ("t1", "order.bogus", b'{"id": "O-1"}')
    assert again.headers["channel"] == "web"
    assert again.headers["esb-replay"] == "1"
    assert not set(again.headers) & set(dlq.ERROR_HEADERS)
    assert journal_states(project, "t1", "process:crm.orders")[-1] == "replayed"
    assert [d.message_id for d in dlq.peek(project, "process:crm.orders")] == ["t2"]
    assert [d.message_id for d in dlq.peek(project, "process:oss.results")] == ["r1"]


def test_retry_all_of_a_reply_group_goes_to_the_reply_endpoint(project: Project) -> None:
    """dlq retry process:oss.results --all: the late reply is back on oss.results alone."""
    result = esb(project, "dlq", "retry", "process:oss.results", "--all")
    assert result.exit_code == 0, result.output
    assert [m.id for m in take_all(project, "oss.results")] == ["r1"]
    assert take_all(project, "crm.orders") == []
    assert dlq.peek(project, "process:oss.results") == []


def test_retry_to_an_endpoint_that_cannot_be_published_to_is_refused(project: Project) -> None:
    """A dead letter read on a direct endpoint: refused with the adapter named; it stays where it was."""
    journal = Journal(project.settings.journal.url)
    journal.connect()
    letters = DeadLetters(project, journal, ProcessMetrics(CollectorRegistry()), "esb.process_dead")
    letters.send("rim.reserve", Message(body=b"x", id="d1"), MessageError("boom"))
    letters.close()
    journal.close()
    result = esb(project, "dlq", "retry", "process:rim.reserve", "d1")
    assert getattr(result.exception, "exit_code", None) == 2
    assert "rim.reserve: the 'direct' adapter cannot be published to" in str(result.exception)
    assert [d.message_id for d in dlq.peek(project, "process:rim.reserve")] == ["d1"]


def test_retry_to_an_endpoint_no_longer_declared_is_refused(project: Project) -> None:
    """A group naming an endpoint the project does not declare: refused, saying which."""
    with pytest.raises(Exception, match=r"endpoint 'crm\.gone' it came from is not declared"):
        dlq.inlet_endpoint(project, "process:crm.gone")
    result = esb(project, "dlq", "retry", "process:crm.gone", "--all")
    assert getattr(result.exception, "exit_code", None) == 2
    assert "not declared in this project" in str(result.exception)


def test_purge_archives_and_removes_one_group_only(project: Project) -> None:
    """dlq purge process:crm.orders --all: both archived then gone, journaled purged; r1 stays."""
    result = esb(project, "dlq", "purge", "process:crm.orders", "--all", "--yes")
    assert result.exit_code == 0, result.output
    assert "purged 2 dead letter(s) of process:crm.orders" in result.output
    [archive] = (project.settings.data_dir / "dlq-archive").iterdir()
    assert archive.name.startswith("process-crm.orders-")
    assert [h["esb-route"] for h, _ in dlq.read_archive(archive)] == ["process:crm.orders"] * 2
    assert journal_states(project, "t2", "process:crm.orders")[-1] == "purged"
    assert dlq.peek(project, "process:crm.orders") == []
    assert [d.message_id for d in dlq.peek(project, "process:oss.results")] == ["r1"]


def test_without_a_process_dead_letter_endpoint_the_group_is_refused(tmp_path: Path) -> None:
    """processes.dead_letter unset: list has no process group; show says the journal alone keeps them."""
    project = write_project(tmp_path, dead_letter=None)
    assert dlq.process_groups(project) == []
    result = esb(project, "dlq", "show", "process:crm.orders")
    assert getattr(result.exception, "exit_code", None) == 2
    assert "processes.dead_letter is not set" in str(result.exception)


def test_health_shows_each_process_group_waiting(project: Project) -> None:
    """esb health has a degraded line per process:<endpoint> group with how many wait on the endpoint."""
    from esb.ops.health import DEGRADED, check_process_dead_letters

    checks = {c.component: c for c in check_process_dead_letters(project)}
    assert set(checks) == {"dead letters process:crm.orders", "dead letters process:oss.results"}
    assert checks["dead letters process:crm.orders"].status == DEGRADED
    assert checks["dead letters process:crm.orders"].data == {"waiting": 2}
    assert checks["dead letters process:oss.results"].detail == "1 waiting on esb.process_dead"


def inbox_status(project: Project, message_id: str) -> set[str]:
    """The inbox status kept for ``message_id``."""
    from esb.process.engine import ProcessStore
    from esb.runtime.process_inlet import inbox_statuses

    with ProcessStore(project.settings.journal.url) as store:
        return inbox_statuses(store, message_id)


def test_a_dead_reply_redelivered_after_the_dead_letter_endpoint_failed_is_dead_lettered(
    tmp_path: Path,
) -> None:
    """A dead reply whose dead-lettering failed comes again: it is dead-lettered then (not acked as a
    duplicate), marked dead-lettered in the inbox, and a third delivery only acks."""
    from unittest.mock import patch

    from esb.exceptions import TransportError
    from esb.process.engine import ProcessStore, Runner
    from esb.process.engine.resources import ProjectResources
    from esb.process.loader import load_processes
    from esb.runtime.process_inlet import ProcessInlet
    from esb.runtime.process_journal import ProcessJournal

    project = write_project(tmp_path)
    metrics = ProcessMetrics(CollectorRegistry())
    with (
        Journal(project.settings.journal.url) as journal,
        ProcessStore(project.settings.journal.url) as store,
    ):
        letters = DeadLetters(project, journal, metrics, "esb.process_dead")
        runner = Runner(store, ProjectResources(project), owner="t", lease=30)
        inlet = ProcessInlet("oss.results", load_processes(project.root), runner,
                             ProcessJournal(journal, store, metrics), letters, json=True)  # fmt: skip
        orphan = Message(body=b'{"orderId": "O-404"}', id="orphan-1")
        with (
            patch.object(DeadLetters, "_write", side_effect=TransportError("dead-letter queue away")),
            pytest.raises(TransportError),
        ):
            inlet.take(orphan)
        assert inbox_status(project, "orphan-1") == {"dead"}
        inlet.take(orphan)
        assert inbox_status(project, "orphan-1") == {"dead_lettered"}
        inlet.take(orphan)
        letters.close()
    dead = take_all(project, "esb.process_dead")
    assert [m.id for m in dead] == ["orphan-1"]
    assert "no instance of 'activation' has a business key equal to 'O-404'" in dead[0].headers["esb-error"]


def test_the_sweep_dead_letters_replies_marked_dead_after_they_were_taken(tmp_path: Path) -> None:
    """A reply the inbox keeps dead without a dead letter (marked dead later) is put on the dead-letter
    endpoint by the sweep, under the route it came on, once; younger ones wait for the next sweep."""
    from esb.process.engine import ProcessStore, deliver_reply
    from esb.runtime.process_inlet import sweep_dead_replies

    project = write_project(tmp_path)
    metrics = ProcessMetrics(CollectorRegistry())
    with (
        Journal(project.settings.journal.url) as journal,
        ProcessStore(project.settings.journal.url) as store,
    ):
        reply = Message(body={"orderId": "O-7", "result": "COMPLETED"}, id="late-1")
        assert deliver_reply(store, "activation", "O-7", "oss.results", reply) == "dead"
        letters = DeadLetters(project, journal, metrics, "esb.process_dead")
        assert sweep_dead_replies(store, letters, older_than=3600) == 0
        assert sweep_dead_replies(store, letters, older_than=-1) == 1
        assert sweep_dead_replies(store, letters, older_than=-1) == 0
        letters.close()
        states = [e.state for e in journal.history("late-1") if e.route == "process:oss.results"]
    assert inbox_status(project, "late-1") == {"dead_lettered"}
    dead = take_all(project, "esb.process_dead")
    assert [m.id for m in dead] == ["late-1"]
    assert dead[0].headers["esb-route"] == "process:oss.results"
    assert json.loads(dead[0].body) == {"orderId": "O-7", "result": "COMPLETED"}
    assert states[-1] == "dead_lettered"


def test_journaled_counts_through_the_journal_as_the_sqlite_path_does_without_reading_keys(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dlq.journaled`` through ``Journal.find`` (any backend but SQLite) gives the counts of the
    SQLite path and reads no business keys (up to 100,000 records' keys, only to count them)."""
    from esb.journal import queries

    groups = ["process:crm.orders", "process:oss.results"]
    fast = dlq.journaled(project, groups)
    assert fast == {"process:crm.orders": 2, "process:oss.results": 1}

    def no_keys(*_: object) -> dict[str, dict[str, str]]:
        raise AssertionError("business keys read to count dead letters")

    monkeypatch.setattr(dlq, "count_dead_lettered", lambda *_: None)
    monkeypatch.setattr(queries, "_keys_of", no_keys)
    assert dlq.journaled(project, groups) == fast
