"""A process instance waiting on a timer when its hub process is killed: the hub process that resumes it
runs its next steps, and makes its calls, in the trace its trigger started (the context is stored with
the instance, on SQLite and PostgreSQL).

The worker is this file run as a script (``python test_process_trace_restart.py DB CALLS SPANS``): tracing
on, each ended span appended to SPANS as a JSON line (name, trace id, parent span id, the worker's pid);
each call appends ``endpoint traceparent`` to CALLS, the context a transport would put on the wire.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from esb import telemetry
from esb.message import Message
from esb.process.definition import Process
from esb.process.engine import ProcessStore, Runner
from esb.process.engine.tables import process_instances, process_steps
from esb.telemetry.otel import OTelTracer
from esb.telemetry.testing import recorded_spans
from tests.integration.pg_server import PostgresServer
from tests.integration.test_process_engine_restart import kill, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{UPSTREAM_TRACE}-00f067aa0ba902b7-01"
FLOW: dict[str, Any] = {
    "process": "p",
    "version": 1,
    "trigger": {"from": "hub.orders"},
    "business_keys": {"order_id": "data.id"},
    "steps": [
        {"name": "start", "set_state": "inProgress"},
        {"name": "reserve", "call": {"endpoint": "rim.reserve", "timeout": "1s"}},
        {"name": "pause", "wait": {"for": "2s"}},
        {"name": "activate", "call": {"endpoint": "oss.activate", "timeout": "1s"}},
        {"name": "done", "set_state": "completed"},
    ],
}


class FileExporter(SpanExporter):
    """Appends each ended span to a file as one JSON line (flushed: the worker is killed, not stopped)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the spans' names, trace ids and parents."""
        with self.path.open("a", encoding="utf-8") as out:
            for span in spans:
                line = {
                    "name": span.name,
                    "trace": f"{span.context.trace_id:032x}",
                    "parent": None if span.parent is None else f"{span.parent.span_id:016x}",
                    "pid": os.getpid(),
                }
                out.write(json.dumps(line) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


class TracedEndpoint:
    """Logs each call with the ``traceparent`` a transport would send, and answers at once."""

    def __init__(self, name: str, log: Path) -> None:
        self.name, self.log = name, log

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def request(self, message: Message, timeout: float) -> Message:
        """Log ``endpoint traceparent`` (as the wire would carry it), then answer."""
        headers: dict[str, str] = {}
        telemetry.inject(headers)
        with self.log.open("a", encoding="utf-8") as out:
            out.write(f"{self.name} {headers.get('traceparent', '-')}\n")
        return Message(body={})


class WorkerResources:
    """The worker's endpoints."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def sink(self, endpoint: str) -> TracedEndpoint:
        """A logging endpoint."""
        return TracedEndpoint(endpoint, self.log)

    def transform(self, name: str) -> Any:
        """No transforms in this flow."""
        raise KeyError(name)


def worker(url: str, calls: Path, spans: Path) -> None:
    """Run due instances with tracing on, each span exported to ``spans`` as it ends, until killed."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter(spans)))
    telemetry.install(OTelTracer(provider))
    with ProcessStore(url) as store:
        runner = Runner(store, WorkerResources(calls), owner=f"worker-{os.getpid()}", lease=2.0)
        while True:
            runner.run_due()
            time.sleep(0.05)


def spawn(url: str, calls: Path, spans: Path) -> subprocess.Popen[bytes]:
    """Start a worker process (a hub process that runs processes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, __file__, url, str(calls), str(spans)], env=env)


def ended(spans: Path, pid: int, name: str) -> bool:
    """Whether the worker ``pid`` has exported a span called ``name``."""
    found = (json.loads(line) for line in spans.read_text(encoding="utf-8").splitlines())
    return any(s["pid"] == pid and s["name"] == name for s in found)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or a fresh database on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    created = server.create_database("trace_restart")
    yield created
    server.drop_database(created)


def test_steps_after_a_restart_stay_in_the_trace_their_trigger_started(url: str, tmp_path: Path) -> None:
    """Killed while the instance waits on its timer, the next worker's step spans and calls continue the
    trigger's trace, as children of the span the trigger was taken in."""
    calls, spans = tmp_path / "calls.log", tmp_path / "spans.jsonl"
    calls.touch()
    spans.touch()
    with recorded_spans() as recorded, ProcessStore(url) as store:
        trigger = Message(body={"id": "o-1"}, id="t-1", headers={"traceparent": TRACEPARENT})
        with telemetry.tracer().route("process:hub.orders", trigger):
            iid = Runner(store, WorkerResources(calls)).start(Process.model_validate(FLOW), trigger)
        taken = f"{recorded.one('route process:hub.orders').context.span_id:016x}"

        def step_state(path: str) -> set[str]:
            s = process_steps.c
            with store.engine.connect() as conn:
                return {
                    r.state
                    for r in conn.execute(sa.select(s.state).where(s.instance_id == iid, s.path == path))
                }

        def status() -> str:
            query = sa.select(process_instances.c.status).where(process_instances.c.id == iid)
            with store.engine.connect() as conn:
                return str(conn.execute(query).scalar_one())

        first = spawn(url, calls, spans)
        try:
            wait_for(lambda: "waiting" in step_state("pause"), "the timer to be set")
        finally:
            kill(first)
        second = spawn(url, calls, spans)
        try:
            wait_for(lambda: status() == "completed", "the instance to complete")
            wait_for(lambda: ended(spans, second.pid, "process p set_state"), "its last span to be exported")
        finally:
            kill(second)
    found = [json.loads(line) for line in spans.read_text(encoding="utf-8").splitlines()]
    steps = [s for s in found if s["name"].startswith("process p ")]
    assert {s["pid"] for s in steps} == {first.pid, second.pid}
    assert [s["name"] for s in steps if s["pid"] == second.pid][-2:] == [
        "process p call",
        "process p set_state",
    ]
    for step in steps:
        assert (step["trace"], step["parent"]) == (UPSTREAM_TRACE, taken), step
    sent = [line.split() for line in calls.read_text(encoding="utf-8").splitlines()]
    assert [name for name, _ in sent] == ["rim.reserve", "oss.activate"]
    assert all(traceparent.split("-")[1] == UPSTREAM_TRACE for _, traceparent in sent), sent


if __name__ == "__main__":
    worker(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
