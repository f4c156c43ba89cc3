"""Across a hub restart an answer already on the reply queue beats its deadline that passed while the hub was
down (issue 16's e2e race, made deterministic): the hub's timers wait until its readers have read the queues
back, including a killed reader's delivery that stays leased until its lease expires; a running hub's
deadline fires on time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import esb
from esb.message import Message, utcnow
from esb.process.engine.tables import process_steps
from esb.project import Project
from esb.runtime.hub import Hub
from tests.integration.test_process_hub import (
    ENDPOINTS,
    send,
    status,
    take,
    wait_for,
    waiting_on_await,
)

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
  - name: activate
    send: {endpoint: oss.activate}
  - name: result
    await:
      from: oss.results
      reply_to: activate
      correlate: {key: order_id, match: body.orderId}
      deadline: 6s
      on_timeout: fail
      success: "body.result == 'COMPLETED'"
      into: activation
  - name: done
    set_state: completed
ignore:
  - from: oss.results
    when: "body.result == 'ACK'"
    reason: OSS acknowledges each request before its result
"""

#: OSS's acknowledgements queued ahead of the answer while the hub is down: the backlog read back first.
BACKLOG = 200

#: Seconds a delivery read and not acked stays leased to its (killed) consumer on the embedded broker.
VISIBILITY = 15

HOLDER = """
import sys, time
from pathlib import Path
from esb.project import Project
project = Project.load(Path(sys.argv[1]), environ={})
endpoint = "oss.results"
source = project.adapter_for(endpoint).source(project.endpoint(endpoint), project.context(endpoint))
source.connect()
delivery = source.read(60)
print("held" if delivery is not None else "none", flush=True)
time.sleep(120)
"""


def make_project(root: Path, grace: float = 90.0) -> Project:
    """A project whose process awaits OSS's result for 6 s, on the embedded broker with short leases."""
    systems: dict[str, Any] = {}
    for name, config in ENDPOINTS.items():
        system, endpoint = name.split(".", 1)
        systems.setdefault(system, {"name": system, "endpoints": {}})["endpoints"][endpoint] = config
    (root / "config").mkdir(parents=True)
    (root / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}))
    settings = {
        "data_dir": str(root / "var"),
        "broker": {"transport_options": {"visibility_timeout": VISIBILITY}},
        "monitoring": {"enabled": False},
        "runtime": {"poll_timeout": "0.1s", "watch_project": False},
        "processes": {
            "runners": 2,
            "poll": "0.1s",
            "dead_letter": "esb.process_dead",
            "backlog_grace": grace,
        },
    }
    (root / "config" / "settings.yaml").write_text(yaml.safe_dump(settings))
    (root / "routes.yaml").write_text("routes: []\n")
    (root / "processes").mkdir()
    (root / "processes" / "activation.yaml").write_text(PROCESS)
    return Project.load(root, environ={})


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The project, with the 90 s default grace."""
    return make_project(tmp_path)


@pytest.fixture
def holder(project: Project) -> Iterator[subprocess.Popen[str]]:
    """A process that reads the reply queue and holds the delivery it got without acking it."""
    root = str(Path(esb.__file__).resolve().parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project.root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    assert proc.stdout is not None
    proc.stdout.close()


def deadline_of(project: Project) -> datetime:
    """The deadline of the open ``result`` await."""
    s = process_steps.c
    engine = sa.create_engine(project.settings.journal.url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.select(s.deadline).where(s.path == "result", s.state == "waiting")
            ).scalar_one()
    finally:
        engine.dispose()
    return found if found.tzinfo is not None else found.replace(tzinfo=utcnow().tzinfo)


def waiting_then_stopped(project: Project, order_id: str) -> datetime:
    """Run a hub until the instance of ``order_id`` awaits OSS's result, stop it; return the deadline."""
    first = Hub(project)
    first.start(wait=20)
    try:
        send(project, "crm.orders", {"id": order_id}, "order.submitted")
        assert take(project, "oss.activate") is not None
        assert wait_for(lambda: waiting_on_await(project, order_id))
    finally:
        first.stop(timeout=5)
    return deadline_of(project)


def send_many(project: Project, endpoint: str, bodies: list[dict[str, Any]]) -> None:
    """Write JSON messages to ``endpoint`` through one sink of its adapter."""
    sink = project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint))
    with sink:
        for body in bodies:
            sink.write(Message(body=body))


def ended(project: Project, order_id: str) -> tuple[str, str] | None:
    """(status, state) once the instance ended, else None."""
    found = status(project, order_id)
    return found if found is not None and found[0] != "running" else None


def test_an_answer_queued_while_the_hub_was_down_beats_the_deadline_that_passed(project: Project) -> None:
    """The hub stops with an await open; its answer reaches the queue before the deadline, behind a backlog
    of other messages, the deadline passes, the hub starts: the answer is taken and the instance completes
    (the timer does not fire)."""
    deadline = waiting_then_stopped(project, "o-1")
    send_many(project, "oss.results", [{"orderId": f"o-{n}", "result": "ACK"} for n in range(BACKLOG)])
    send(project, "oss.results", {"orderId": "o-1", "result": "COMPLETED"})
    assert utcnow() < deadline, "the answer must reach the queue before the deadline"
    assert wait_for(lambda: utcnow() > deadline, timeout=10)
    second = Hub(project)
    second.start(wait=20)
    try:
        assert wait_for(lambda: ended(project, "o-1") is not None)
        assert status(project, "o-1") == ("completed", "completed")
    finally:
        second.stop(timeout=5)


def test_an_answer_a_killed_reader_held_beats_the_deadline_once_its_lease_expires(
    project: Project, holder: subprocess.Popen[str]
) -> None:
    """The answer was read by a reader that was SIGKILLed before acking it (leased, invisible until the
    lease expires): the restarted hub holds the overdue deadline until it has read the answer back."""
    deadline = waiting_then_stopped(project, "o-2")
    send(project, "oss.results", {"orderId": "o-2", "result": "COMPLETED"})
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert utcnow() < deadline, "the answer must reach the queue before the deadline"
    assert wait_for(lambda: utcnow() > deadline, timeout=10)
    second = Hub(project)
    second.start(wait=20)
    try:
        assert wait_for(lambda: ended(project, "o-2") is not None, timeout=VISIBILITY + 20)
        assert status(project, "o-2") == ("completed", "completed")
    finally:
        second.stop(timeout=5)


def test_a_running_hub_fires_a_deadline_without_the_grace(tmp_path: Path) -> None:
    """In a hub whose reply queue was read back, an unanswered deadline fires when due, not after the grace
    (an hour here)."""
    project = make_project(tmp_path, grace=3600.0)
    hub = Hub(project)
    hub.start(wait=20)
    try:
        send(project, "crm.orders", {"id": "o-3"}, "order.submitted")
        assert take(project, "oss.activate") is not None
        assert wait_for(lambda: ended(project, "o-3") is not None)
        assert status(project, "o-3") == ("failed", "failed")
    finally:
        hub.stop(timeout=5)
