"""OpenTelemetry tracing: off by default (no spans, no headers, no SDK import); on, one trace follows a
message through queue routes and into a process's steps, with a span per route run, step and delivery."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from opentelemetry.sdk.trace import ReadableSpan

from adapters.queue import QueueAdapter, QueueEndpoint
from esb import telemetry
from esb.config.settings import Settings, TelemetrySettings
from esb.exceptions import MappingError, RemoteError
from esb.journal import Journal
from esb.message import Message
from esb.process.engine import ProcessStore, Runner
from esb.process.engine.tables import process_instances
from esb.project import Project
from esb.runtime.worker import RouteWorker
from esb.telemetry.otel import OTelTracer
from esb.telemetry.testing import RecordedSpans, recorded_spans
from esb.testing import BROKER
from simulators.batch_files import charge_lines, header_line, trailer_line
from tests.unit.batch_helpers import drain, drop, local_source
from tests.unit.routes_fixture import FakeTransforms, make_project
from tests.unit.test_process_engine import ACTIVATE, RESERVE, FakeResources, instance, process

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"
CHARGE_FILE = "CHG_571_20240531_001.dat"
TRACEPARENT = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"


def queue_project(tmp_path: Path) -> Project:
    """Two routes over the embedded queue: crm.in -> (transform) -> hub.mid -> billing.out."""
    systems = {
        name: {"name": name, "endpoints": {endpoint: {"adapter": "queue", "queue": f"{name}.{endpoint}"}}}
        for name, endpoint in (("crm", "in"), ("hub", "mid"), ("billing", "out"))
    }
    routes = [
        {"id": "first", "from": "crm.in", "steps": [{"transform": "t/up"}], "to": "hub.mid"},
        {"id": "second", "from": "hub.mid", "to": "billing.out"},
    ]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}))
    (tmp_path / "config" / "settings.yaml").write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "var"), "runtime": {"poll_timeout": 0.02}})
    )
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump({"routes": routes}, sort_keys=False))
    project = Project.load(tmp_path, environ={})
    project.__dict__["transforms"] = FakeTransforms({"t/up": lambda b: {"v": b.decode().upper()}})
    return project


def publish(project: Project, endpoint: str, message: Message) -> None:
    """Put ``message`` on ``endpoint``'s queue as a peer would (its headers on the wire)."""
    config = project.endpoint(endpoint)
    assert isinstance(config, QueueEndpoint)
    with QueueAdapter().sink(config, project.context(endpoint)) as sink:
        sink.write(message)


def take(project: Project, endpoint: str, timeout: float = 10.0) -> Message:
    """Read and ack one message from ``endpoint``'s queue (AssertionError when none comes)."""
    config = project.endpoint(endpoint)
    assert isinstance(config, QueueEndpoint)
    with QueueAdapter().source(config, project.context(endpoint)) as source:
        delivery = source.read(timeout)
        assert delivery is not None, f"nothing arrived on {endpoint}"
        delivery.ack()
        return delivery.message


@pytest.fixture
def run_routes(tmp_path: Path) -> Iterator[Project]:
    """The two-route project with a worker per route running (journal in its data folder)."""
    project = queue_project(tmp_path)
    journal = Journal(project.settings.resolve_paths(tmp_path).journal.url)
    journal.connect()
    # workers build their steps when made: the test installs its tracer before asking for this fixture
    workers = [RouteWorker(project, route, journal) for route in project.routes]
    for worker in workers:
        worker.start()
    yield project
    for worker in workers:
        worker.stop()
    for worker in workers:
        worker.join(5)
    journal.close()


@pytest.fixture
def spans() -> Iterator[RecordedSpans]:
    """Tracing on, recorded in memory, for the test."""
    with recorded_spans() as recorded:
        yield recorded


def parent(span: ReadableSpan) -> int | None:
    """The span id of ``span``'s parent, None for a root span."""
    return None if span.parent is None else span.parent.span_id


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """The attributes of ``span``."""
    return dict(span.attributes or {})


def wait_for(spans: RecordedSpans, name: str, timeout: float = 5.0) -> None:
    """Wait until a span called ``name`` has ended (a route span ends just after its ack)."""
    deadline = time.monotonic() + timeout
    while not spans.named(name) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_telemetry_is_off_by_default() -> None:
    """Default settings leave tracing off and the installed tracer is the no-op one."""
    assert Settings().telemetry.enabled is False
    assert telemetry.tracer() is telemetry.NOOP
    assert Settings().masked()["telemetry"]["headers"] == {}


def test_export_headers_are_masked_in_logged_settings() -> None:
    """A collector's API key given in telemetry.headers never appears in the settings the hub logs."""
    settings = Settings.model_validate({"telemetry": {"headers": {"api-key": "s3cret"}}})
    assert settings.masked()["telemetry"]["headers"] == {"api-key": "***"}


def test_commands_that_run_no_route_never_import_opentelemetry() -> None:
    """Importing the engine, the adapters' sinks and the CLI leaves the OpenTelemetry packages unloaded."""
    code = (
        "import sys, esb.cli, esb.runtime.hub, adapters.queue.sink, adapters.soap.sink, adapters.rest.client;"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_off_adds_no_header_and_makes_no_span(run_routes: Project) -> None:
    """Tracing off: a message crosses two queue routes without a traceparent being added to it."""
    publish(run_routes, "crm.in", Message(body=b"hello", id="m1"))
    out = take(run_routes, "billing.out")
    assert out.id == "m1"
    assert "traceparent" not in out.headers
    assert telemetry.NOOP.step("r", "transform", len) is len  # steps are not even wrapped


def test_queue_routes_keep_the_upstream_trace(spans: RecordedSpans, run_routes: Project) -> None:
    """A traceparent on the inbound queue message is continued by both routes and reaches the last queue,
    with each route's span the child of the delivery span that published to it."""
    publish(run_routes, "crm.in", Message(body=b"hello", id="m1", headers={"traceparent": TRACEPARENT}))
    out = take(run_routes, "billing.out")
    wait_for(spans, "route second")
    first, second = spans.one("route first"), spans.one("route second")
    to_mid, to_out = spans.one("deliver hub.mid"), spans.one("deliver billing.out")
    step = spans.one("step transform")
    assert {format(s.context.trace_id, "032x") for s in spans.all()} == {UPSTREAM_TRACE}
    assert parent(first) == int(UPSTREAM_SPAN, 16)
    assert parent(step) == first.context.span_id
    assert parent(to_mid) == first.context.span_id
    assert parent(second) == to_mid.context.span_id
    assert out.headers["traceparent"].split("-")[1:3] == [UPSTREAM_TRACE, f"{to_out.context.span_id:016x}"]
    assert attrs(first)["esb.outcome"] == "delivered"
    assert attrs(first)["messaging.message.id"] == "m1"
    assert attrs(step)["esb.step.kind"] == "transform"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("garbage", id="not-a-traceparent"),
        pytest.param(f"00-{'0' * 32}-{UPSTREAM_SPAN}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}", id="missing-flags"),
    ],
)
def test_a_bad_traceparent_starts_a_new_trace(spans: RecordedSpans, run_routes: Project, bad: str) -> None:
    """A malformed traceparent is ignored, not an error: the message is delivered in a new trace."""
    publish(run_routes, "crm.in", Message(body=b"hello", id="m1", headers={"traceparent": bad}))
    out = take(run_routes, "billing.out")
    wait_for(spans, "route second")
    first = spans.one("route first")
    assert first.parent is None
    assert first.context.trace_id != int(UPSTREAM_TRACE, 16)
    assert out.headers["traceparent"].split("-")[1] == f"{first.context.trace_id:032x}"


def test_a_failing_step_is_recorded_as_an_error(spans: RecordedSpans, tmp_path: Path) -> None:
    """A step that raises: its span's status is ERROR with the exception as an event, and the route's
    span says dead_lettered."""
    project = queue_project(tmp_path)

    def broken(body: Any) -> Any:
        raise MappingError("t/up", "v", "/v", "no such field")

    project.__dict__["transforms"] = FakeTransforms({"t/up": broken})
    journal = Journal(project.settings.resolve_paths(tmp_path).journal.url)
    journal.connect()
    worker = RouteWorker(project, project.routes[0], journal)
    publish(project, "crm.in", Message(body=b"x", id="m1"))
    worker.start()
    wait_for(spans, "route first")
    worker.stop()
    worker.join(5)
    journal.close()
    step, route = spans.one("step transform"), spans.one("route first")
    assert step.status.status_code.name == "ERROR"
    assert [e.name for e in step.events] == ["exception"]
    assert attrs(route)["esb.outcome"] == "dead_lettered"
    assert route.status.status_code.name == "ERROR"


def test_process_steps_are_children_of_the_span_that_started_the_instance(
    spans: RecordedSpans, tmp_path: Path
) -> None:
    """Each step of an instance is a span whose parent is the span its trigger was taken in."""
    with ProcessStore(f"sqlite:///{tmp_path / 'journal.db'}") as store:
        runner = Runner(store, FakeResources(), owner="r1", lease=60)
        definition = process([{"name": "start", "set_state": "inProgress"}, RESERVE, ACTIVATE])
        trigger = Message(body={"id": "o-1"}, id="trigger-o-1", headers={"traceparent": TRACEPARENT})
        with telemetry.tracer().route("process:crm.orders", trigger):
            instance_id = runner.start(definition, trigger)
        runner.run_due()
    taken = spans.one("route process:crm.orders")
    steps = [s for s in spans.all() if s.name.startswith("process p ")]
    assert [s.name for s in steps][:3] == ["process p set_state", "process p call", "process p send"]
    for step in steps:
        assert parent(step) == taken.context.span_id
        assert step.context.trace_id == int(UPSTREAM_TRACE, 16)
        assert attrs(step)["esb.process.instance"] == instance_id
    assert attrs(steps[1])["esb.process.step"] == "reserve"


def start_traced(url: str, headers: dict[str, str]) -> tuple[str, ReadableSpan]:
    """Start an instance of RESERVE, ACTIVATE inside its trigger's route span, with tracing on in a hub
    that then stops (its tracer and store gone); return the instance id and the trigger's span."""
    with recorded_spans() as first, ProcessStore(url) as store:
        trigger = Message(body={"id": "o-1"}, id="trigger-o-1", headers=headers)
        with telemetry.tracer().route("process:crm.orders", trigger):
            instance_id = Runner(store, FakeResources(), owner="hub-1").start(
                process([RESERVE, ACTIVATE]), trigger
            )
        return instance_id, first.one("route process:crm.orders")


def test_process_steps_continue_the_trace_after_a_restart(tmp_path: Path) -> None:
    """An instance started in one hub has its steps run by another tracer and store (a restart or a
    takeover) as children of the span its trigger was taken in: the context is stored with it."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    instance_id, taken = start_traced(url, {"traceparent": TRACEPARENT, "tracestate": "esb=1"})
    with recorded_spans() as spans, ProcessStore(url) as store:
        Runner(store, FakeResources(), owner="hub-2").run_due()
    steps = [s for s in spans.all() if s.name.startswith("process p ")]
    assert [s.name for s in steps] == ["process p call", "process p send"]
    for step in steps:
        assert step.context.trace_id == int(UPSTREAM_TRACE, 16)
        assert parent(step) == taken.context.span_id
        assert step.context.trace_state.get("esb") == "1"
        assert attrs(step)["esb.process.instance"] == instance_id


@pytest.mark.parametrize(
    "stored",
    [pytest.param(None, id="started-with-tracing-off"), pytest.param("00-not-a-trace-01", id="malformed")],
)
def test_a_step_without_a_valid_stored_context_starts_a_trace_of_its_own(
    tmp_path: Path, stored: str | None
) -> None:
    """An instance started with tracing off (or holding a malformed context) runs its steps as roots of
    new traces, and completes."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with ProcessStore(url) as store:
        runner = Runner(store, FakeResources(), owner="hub-1")
        instance_id = runner.start(process([RESERVE]), Message(body={"id": "o-1"}, id="trigger-o-1"))
        with store.begin("test") as conn:
            row = conn.execute(
                sa.select(process_instances).where(process_instances.c.id == instance_id)
            ).one()
            assert (row.traceparent, row.tracestate) == (None, None)
            conn.execute(process_instances.update().values(traceparent=stored))
        with recorded_spans() as spans:
            runner.run_due()
        status = instance(store, instance_id).status
    step = spans.one("process p call")
    assert step.parent is None
    assert step.context.trace_id != int(UPSTREAM_TRACE, 16)
    assert status == "completed"


def test_enabled_settings_build_a_sampling_tracer_and_shut_it_down() -> None:
    """telemetry.enabled installs the OpenTelemetry tracer (no exporter here) until shutdown."""
    active = telemetry.configure(TelemetrySettings(enabled=True, exporter="none", sample_ratio=0.0))
    try:
        assert isinstance(active, OTelTracer)
        assert telemetry.tracer() is active
        with active.route("r", Message(body=b"x")) as span:
            span.set("k", "v")
            carrier: dict[str, Any] = {}
            active.inject(carrier)
        assert int(carrier["traceparent"].split("-")[3], 16) & 1 == 0  # ratio 0: a new trace is not sampled
    finally:
        telemetry.shutdown()
    assert telemetry.tracer() is telemetry.NOOP


def charge_file_with_a_bad_record(inbox: Path) -> None:
    """Drop a Billing charge file of five records whose third cannot be parsed."""
    lines = [line for line, _ in charge_lines(5)]
    bad = lines[2][:76] + b"0000000X2345" + lines[2][88:]
    total = sum(fen for n, (_, fen) in enumerate(charge_lines(5)) if n != 2)
    body = b"\r\n".join([header_line(), lines[0], lines[1], bad, lines[3], lines[4], trailer_line(5, total)])
    drop(inbox, CHARGE_FILE, body + b"\r\n")


def test_a_batch_file_is_one_span_with_its_records_route_spans_as_children(
    spans: RecordedSpans, tmp_path: Path
) -> None:
    """A batch file's span lasts until the file is processed: each record's route span is its child, a
    rejected record is an event on it, and it ends with the file's figures."""
    with local_source(tmp_path) as source:
        charge_file_with_a_bad_record(source_inbox(tmp_path))
        source.poll_now()
        for delivery in drain(source, ack=False):
            with telemetry.tracer().route("charges", delivery.message):
                delivery.ack()
        drain(source)  # the file ends once every record was settled
    file_span = spans.one("batch file billing")
    records = spans.named("route charges")
    assert len(records) == 4
    assert {parent(r) for r in records} == {file_span.context.span_id}
    assert {r.context.trace_id for r in records} == {file_span.context.trace_id}
    assert [(e.name, dict(e.attributes or {}).get("esb.batch.record")) for e in file_span.events] == [
        ("record rejected", 3)
    ]
    assert attrs(file_span)["esb.outcome"] == "processed"
    assert (attrs(file_span)["esb.batch.delivered"], attrs(file_span)["esb.batch.rejected"]) == (4, 1)


def test_batch_records_carry_no_trace_header_when_tracing_is_off(tmp_path: Path) -> None:
    """Tracing off: a batch file's records get exactly the batch headers, nothing more."""
    with local_source(tmp_path) as source:
        charge_file_with_a_bad_record(source_inbox(tmp_path))
        source.poll_now()
        deliveries = drain(source)
    assert {tuple(sorted(d.message.headers)) for d in deliveries} == {
        ("batch-file", "batch-record", "batch-sha256")
    }


def source_inbox(tmp: Path) -> Path:
    """The inbox folder :func:`local_source` reads."""
    return tmp / "inbox"


def test_export_headers_come_from_the_environment_or_a_secret_file(tmp_path: Path) -> None:
    """telemetry.headers is read as JSON from ESB_TELEMETRY__HEADERS or the secret file telemetry__headers."""
    from esb.config.settings import load_settings

    environ = {"ESB_TELEMETRY__ENABLED": "true", "ESB_TELEMETRY__HEADERS": '{"api-key": "from-env"}'}
    from_env = load_settings(tmp_path, environ=environ).telemetry
    assert (from_env.enabled, from_env.headers) == (True, {"api-key": "from-env"})
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "telemetry__headers").write_text('{"api-key": "from-file"}')
    from_file = load_settings(tmp_path, environ={"ESB_SECRETS_DIR": str(secrets)}).telemetry
    assert from_file.headers == {"api-key": "from-file"}


def test_a_direct_channel_hands_the_trace_to_the_next_route(spans: RecordedSpans) -> None:
    """A message written to a direct channel inside a delivery span carries that span's traceparent;
    the original message is left as it was."""
    from adapters.direct.channels import channel
    from adapters.direct.config import DirectEndpoint
    from adapters.direct.sink import DirectSink

    sink = DirectSink(DirectEndpoint(channel="telemetry-test"))
    sink.connect()
    original = Message(body=b"x", id="m1")
    with telemetry.tracer().delivery("r", "hub.next", original):
        sink.write(original)
    handed = channel("telemetry-test").get_nowait()
    delivery = spans.one("deliver hub.next")
    assert handed.headers["traceparent"].split("-")[1:3] == [
        f"{delivery.context.trace_id:032x}",
        f"{delivery.context.span_id:016x}",
    ]
    assert "traceparent" not in original.headers


def test_a_direct_channel_hands_the_message_itself_when_tracing_is_off() -> None:
    """Tracing off, the direct channel gets the very message written (no copy, no header)."""
    from adapters.direct.channels import channel
    from adapters.direct.config import DirectEndpoint
    from adapters.direct.sink import DirectSink

    sink = DirectSink(DirectEndpoint(channel="telemetry-test-off"))
    sink.connect()
    original = Message(body=b"x", id="m1")
    sink.write(original)
    assert channel("telemetry-test-off").get_nowait() is original


def test_a_refused_delivery_is_one_error_and_the_dead_letter_write_its_own_span(
    spans: RecordedSpans, tmp_path: Path
) -> None:
    """A sink refusing the message: its delivery span is ERROR with one exception event, the write to the
    dead-letter endpoint is a span of its own, and the route's span ends dead_lettered."""
    project = make_project(
        tmp_path,
        [{"id": "r", "from": "a.in", "to": "b.out", "on_error": {"dead_letter": "dlq.r"}}],
        ["a.in", "b.out", "dlq.r"],
    )
    BROKER.fail_next("b.out", RemoteError("invalid account", code="E42", retryable=False))
    BROKER.feed("a.in", Message(body=b"x", id="m1"))
    journal = Journal(project.settings.journal.url)
    journal.connect()
    worker = RouteWorker(project, project.routes[0], journal)
    worker.start()
    wait_for(spans, "route r")
    worker.stop()
    worker.join(5)
    journal.close()
    refused, dead = spans.one("deliver b.out"), spans.one("deliver dlq.r")
    assert refused.status.status_code.name == "ERROR"
    assert [e.name for e in refused.events] == ["exception"]
    assert attrs(refused)["esb.outcome"] == "failed"
    assert attrs(dead)["esb.outcome"] == "delivered"
    assert parent(dead) == spans.one("route r").context.span_id
    assert attrs(spans.one("route r"))["esb.outcome"] == "dead_lettered"
