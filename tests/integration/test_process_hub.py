"""The hub runs the project's processes: a trigger on a queue starts an instance, which calls a simulated
endpoint, sends, awaits a reply on a queue and ends; late replies are dead-lettered; instances survive
a hub restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from adapters.direct.channels import register_handler
from esb.cli.main import cli
from esb.journal import Journal
from esb.message import Message
from esb.process.engine.tables import process_instances, process_steps
from esb.project import Project
from esb.runtime.hub import Hub

pytestmark = pytest.mark.integration

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
  - name: reserve
    call: {endpoint: rim.reserve, into: reservation}
  - name: activate
    send: {endpoint: oss.activate}
  - name: result
    await:
      from: oss.results
      reply_to: activate
      correlate: {key: order_id, match: body.orderId}
      deadline: 30m
      success: "body.result == 'COMPLETED'"
      into: activation
  - name: done
    set_state: completed
ignore:
  - from: oss.results
    when: "body.result == 'ACK'"
    reason: OSS acknowledges each request before its result
"""

ENDPOINTS: dict[str, dict[str, Any]] = {
    "crm.orders": {"adapter": "queue", "queue": "t.crm.orders", "format": "json"},
    "rim.reserve": {"adapter": "direct", "channel": "t-proc-hub-rim"},
    "oss.activate": {"adapter": "queue", "queue": "t.oss.activate", "format": "json"},
    "oss.results": {"adapter": "queue", "queue": "t.oss.results", "format": "json"},
    "esb.process_dead": {"adapter": "queue", "queue": "t.process.dead", "format": "json"},
}


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``; return the last answer."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project with one process over embedded queues and a direct (in-process) RIM endpoint."""
    systems: dict[str, Any] = {}
    for name, config in ENDPOINTS.items():
        system, endpoint = name.split(".", 1)
        systems.setdefault(system, {"name": system, "endpoints": {}})["endpoints"][endpoint] = config
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}))
    settings = {
        "data_dir": str(tmp_path / "var"),
        "monitoring": {"enabled": False},
        "runtime": {"poll_timeout": "0.1s", "watch_project": False},
        "processes": {"runners": 2, "poll": "0.1s", "dead_letter": "esb.process_dead"},
    }
    (tmp_path / "config" / "settings.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "routes.yaml").write_text("routes: []\n")
    (tmp_path / "processes").mkdir()
    (tmp_path / "processes" / "activation.yaml").write_text(PROCESS)
    register_handler("t-proc-hub-rim", lambda m: Message(body={"msisdn": "13800000001"}))
    return Project.load(tmp_path, environ={})


@pytest.fixture
def hub(project: Project) -> Iterator[Hub]:
    """The hub on the project, started; stopped at the end."""
    running = Hub(project)
    running.start(wait=20)
    yield running
    running.stop(timeout=5)


def send(project: Project, endpoint: str, body: dict[str, Any], type_: str | None = None) -> Message:
    """Write one JSON message to ``endpoint`` through its adapter; return it."""
    message = Message(body=body, type=type_)
    sink = project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint))
    with sink:
        sink.write(message)
    return message


def take(project: Project, endpoint: str, timeout: float = 10.0) -> Message | None:
    """Read and ack one message from ``endpoint`` (None when none came)."""
    source = project.adapter_for(endpoint).source(project.endpoint(endpoint), project.context(endpoint))
    source.connect()
    try:
        delivery = source.read(timeout)
        if delivery is None:
            return None
        delivery.ack()
        return delivery.message
    finally:
        source.close()


def status(project: Project, order_id: str) -> tuple[str, str] | None:
    """Return (status, state) of the instance started for ``order_id`` (None before it exists)."""
    t = process_instances.c
    engine = sa.create_engine(project.settings.journal.url)
    try:
        with engine.connect() as conn:
            for row in conn.execute(sa.select(t.status, t.state, t.data)):
                if row.data.get("id") == order_id:
                    return str(row.status), str(row.state)
    finally:
        engine.dispose()
    return None


def waiting_on_await(project: Project, order_id: str) -> bool:
    """True once the instance of ``order_id`` has an open row for its ``result`` await."""
    if status(project, order_id) is None:
        return False
    engine = sa.create_engine(project.settings.journal.url)
    try:
        with engine.connect() as conn:
            s = process_steps.c
            rows = conn.execute(sa.select(s.path).where(s.state == "waiting")).all()
    finally:
        engine.dispose()
    return any(r.path == "result" for r in rows)


def test_trigger_call_send_await_reply_completes_and_trace_shows_steps(project: Project, hub: Hub) -> None:
    """A trigger starts an instance that calls RIM, sends to OSS, takes OSS's reply and ends completed;
    esb trace <order id> shows the process's steps in time order."""
    send(project, "crm.orders", {"id": "o-1"}, "order.submitted")
    sent = take(project, "oss.activate")
    assert sent is not None
    assert sent.headers["idempotency-key"].endswith(":activate")
    assert wait_for(lambda: waiting_on_await(project, "o-1"))
    send(project, "oss.results", {"orderId": "o-1", "result": "COMPLETED"})
    assert wait_for(lambda: status(project, "o-1") == ("completed", "completed"))
    assert wait_for(lambda: any(e.state == "delivered" for e in _journal_trace(project, "o-1")
                                if e.route == "process:activation"))  # fmt: skip
    metrics = hub.metrics.exposition().decode()
    assert 'esb_process_instances_total{process="activation",status="started"} 1.0' in metrics
    assert 'esb_process_instances_total{process="activation",status="completed"} 1.0' in metrics
    assert 'esb_process_steps_total{process="activation",state="done"} 5.0' in metrics
    result = CliRunner().invoke(cli, ["--project", str(project.root), "trace", "o-1", "--json"])
    assert result.exit_code == 0, result.output
    steps = [s["detail"]["step"] for s in _trace_json(result.output) if s["route"] == "process:activation"
             and s["detail"] and "step" in s["detail"]]  # fmt: skip
    assert steps[:1] == ["start"]
    ordered = [s for s in steps if s in ("reserve", "activate", "result", "done")]
    assert ordered[0] == "reserve"
    assert ordered.index("activate") < ordered.index("done")
    assert "result" in ordered


def test_a_late_reply_is_dead_lettered_with_its_reason(project: Project, hub: Hub) -> None:
    """A reply for an instance that already ended goes to processes.dead_letter with the inbox's reason,
    journaled dead_lettered on the process endpoint's route."""
    send(project, "crm.orders", {"id": "o-2"}, "order.submitted")
    assert take(project, "oss.activate") is not None
    assert wait_for(lambda: waiting_on_await(project, "o-2"))
    send(project, "oss.results", {"orderId": "o-2", "result": "COMPLETED"})
    assert wait_for(lambda: status(project, "o-2") == ("completed", "completed"))
    late = send(project, "oss.results", {"orderId": "o-2", "result": "COMPLETED"})
    dead = take(project, "esb.process_dead")
    assert dead is not None
    assert dead.id == late.id
    assert dead.headers["esb-error-reason"] == "unmatched-process-message"
    assert dead.headers["esb-route"] == "process:oss.results"
    assert "reply not applied: activation:" in dead.headers["esb-error"]
    with Journal(project.settings.journal.url) as journal:
        states = [e.state for e in journal.history(late.id) if e.route == "process:oss.results"]
    assert states[-1] == "dead_lettered"


def test_a_message_an_ignore_rule_takes_is_journaled_filtered_not_dead_lettered(
    project: Project, hub: Hub
) -> None:
    """A message on a process endpoint that no await takes but an ignore rule does is acked and
    journaled filtered with the rule's reason; nothing reaches the dead-letter endpoint."""
    ack = send(project, "oss.results", {"orderId": "o-10", "result": "ACK"})

    def final() -> str | None:
        with Journal(project.settings.journal.url) as journal:
            states = [e for e in journal.history(ack.id) if e.route == "process:oss.results"]
        return states[-1].state if states else None

    assert wait_for(lambda: final() == "filtered")
    with Journal(project.settings.journal.url) as journal:
        [event] = [e for e in journal.history(ack.id) if e.state == "filtered"]
    reason = "OSS acknowledges each request before its result"
    assert event.detail == {"ignored_by": "activation", "reason": reason}
    assert take(project, "esb.process_dead", timeout=0.5) is None


def test_an_unknown_trigger_type_is_dead_lettered(project: Project, hub: Hub) -> None:
    """A message on the trigger endpoint of a type no process starts on is dead-lettered, saying which type
    was expected, and starts nothing."""
    wrong = send(project, "crm.orders", {"id": "o-3"}, "order.amended")
    dead = take(project, "esb.process_dead")
    assert dead is not None
    assert dead.id == wrong.id
    assert "trigger types expected: order.submitted" in dead.headers["esb-error"]
    assert status(project, "o-3") is None


def test_a_trigger_not_in_json_is_dead_lettered_with_the_decode_error(project: Project, hub: Hub) -> None:
    """A trigger whose body is not JSON on a format: json endpoint is dead-lettered with the parse error
    (reason decode-error) and starts nothing."""
    bad = Message(body=b"<order id='o-5'/>", type="order.submitted")
    endpoint = project.endpoint("crm.orders")
    with project.adapter_for("crm.orders").sink(endpoint, project.context("crm.orders")) as sink:
        sink.write(bad)
    dead = take(project, "esb.process_dead")
    assert dead is not None
    assert dead.id == bad.id
    assert dead.headers["esb-error-reason"] == "decode-error"
    assert "crm.orders: process message: body is not valid JSON" in dead.headers["esb-error"]
    assert status(project, "o-5") is None


def test_hub_stops_with_instances_waiting_and_resumes_them(project: Project) -> None:
    """The hub stops cleanly while an instance awaits its reply; a new hub on the same database takes the
    reply and completes it."""
    first = Hub(project)
    first.start(wait=20)
    try:
        send(project, "crm.orders", {"id": "o-4"}, "order.submitted")
        assert take(project, "oss.activate") is not None
        assert wait_for(lambda: waiting_on_await(project, "o-4"))
        assert first.processes is not None
        threads = list(first.processes.threads)
    finally:
        first.stop(timeout=5)
    assert len(threads) == 4  # two runners, a reader for crm.orders and one for oss.results
    assert not [t.name for t in threads if t.is_alive()]
    assert status(project, "o-4") == ("running", "inProgress")
    second = Hub(project)
    second.start(wait=20)
    try:
        send(project, "oss.results", {"orderId": "o-4", "result": "COMPLETED"})
        assert wait_for(lambda: status(project, "o-4") == ("completed", "completed"))
    finally:
        second.stop(timeout=5)


def steps_of(project: Project, order_id: str) -> list[str]:
    """The step paths the instance of ``order_id`` ran, in order."""
    t, s = process_instances.c, process_steps.c
    engine = sa.create_engine(project.settings.journal.url)
    try:
        with engine.connect() as conn:
            ids = [r.id for r in conn.execute(sa.select(t.id, t.data)) if r.data.get("id") == order_id]
            rows = conn.execute(sa.select(s.path).where(s.instance_id.in_(ids)).order_by(s.id)).all()
    finally:
        engine.dispose()
    return [r.path for r in rows]


def test_a_reload_starts_new_instances_on_the_new_version_and_keeps_the_old_ones(
    project: Project, hub: Hub
) -> None:
    """After a reload with version 2 on disk, a waiting version-1 instance completes on its own steps and a
    new trigger runs version 2's; a process file with findings is refused and the service runs on."""
    send(project, "crm.orders", {"id": "o-6"}, "order.submitted")
    assert take(project, "oss.activate") is not None
    assert wait_for(lambda: waiting_on_await(project, "o-6"))
    processes = project.root / "processes"
    (processes / "activation").mkdir()
    (processes / "activation.yaml").rename(processes / "activation" / "v1.yaml")
    version2 = PROCESS.replace("version: 1", "version: 2").replace(
        "  - name: reserve\n    call: {endpoint: rim.reserve, into: reservation}\n", ""
    )
    assert "reserve" not in version2
    (processes / "activation.yaml").write_text(version2)
    assert hub.reload() == []
    assert hub.last_reload["processes"] == "restarted"
    send(project, "oss.results", {"orderId": "o-6", "result": "COMPLETED"})
    assert wait_for(lambda: status(project, "o-6") == ("completed", "completed"))
    assert "reserve" in steps_of(project, "o-6")
    send(project, "crm.orders", {"id": "o-7"}, "order.submitted")
    assert take(project, "oss.activate") is not None
    assert wait_for(lambda: waiting_on_await(project, "o-7"))
    send(project, "oss.results", {"orderId": "o-7", "result": "COMPLETED"})
    assert wait_for(lambda: status(project, "o-7") == ("completed", "completed"))
    assert "reserve" not in steps_of(project, "o-7")
    running = hub.processes
    (processes / "activation.yaml").write_text(version2.replace("set_state: completed", "set_state: 7"))
    findings = hub.reload()
    assert findings
    assert any("activation.yaml" in f for f in findings)
    assert hub.processes is running
    send(project, "crm.orders", {"id": "o-8"}, "order.submitted")
    assert take(project, "oss.activate") is not None


def test_a_project_without_processes_starts_no_process_service(tmp_path: Path) -> None:
    """With no processes/*.yaml the hub runs its routes only (no process threads, no readers)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "systems.yaml").write_text("systems: {}\n")
    settings = {"data_dir": str(tmp_path / "var"), "monitoring": {"enabled": False}}
    (tmp_path / "config" / "settings.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "routes.yaml").write_text("routes: []\n")
    hub = Hub(Project.load(tmp_path, environ={}))
    hub.start(wait=5)
    try:
        assert hub.processes is None
    finally:
        hub.stop(timeout=5)


def _journal_trace(project: Project, key: str) -> list[Any]:
    """The journal's trace of ``key``."""
    with Journal(project.settings.journal.url) as journal:
        return journal.trace(key)


def _trace_json(output: str) -> list[dict[str, Any]]:
    """The steps of ``esb trace --json``."""
    import orjson

    document = orjson.loads(output)
    steps: list[dict[str, Any]] = document["steps"]
    return steps
