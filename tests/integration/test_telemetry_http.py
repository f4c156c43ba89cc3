"""W3C trace context over real HTTP on loopback: a SOAP request and a REST order that carry a
``traceparent`` are continued by the hub's route, and the hub's SOAP and REST calls out carry the
``traceparent`` of the span that made them (spans recorded in memory)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.sdk.trace import ReadableSpan

from adapters.rest.client import RESTClient
from adapters.rest.config import RESTEndpoint
from esb import telemetry
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.journal import Journal
from esb.message import Message
from esb.project import Project
from esb.runtime.hub import Hub
from esb.runtime.worker import RouteWorker
from esb.telemetry.testing import RecordedSpans, recorded_spans
from simulators.billing import BillingSimulator
from simulators.channel import tmf_order, to_json
from tests.integration.soap_project import free_port, make_soap_project, siebel_account
from tests.integration.test_soap_flows import crm_post

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_TRACE = "0af7651916cd43dd8448eb211c80319c"
UPSTREAM_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"


class RecordingBilling(BillingSimulator):
    """The Billing simulator, keeping the ``traceparent`` HTTP header of every request it gets."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        self.traceparents: list[str | None] = []

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Record the header, then answer as the simulator does."""
        self.traceparents.append(environ.get("HTTP_TRACEPARENT"))
        return super().app(environ, start_response)


def ended(spans: RecordedSpans, name: str, timeout: float = 5.0) -> ReadableSpan:
    """The one span called ``name``, once it has ended."""
    deadline = time.monotonic() + timeout
    while not spans.named(name) and time.monotonic() < deadline:
        time.sleep(0.01)
    return spans.one(name)


@pytest.fixture
def spans() -> Iterator[RecordedSpans]:
    """Tracing on, recorded in memory (installed before the hub builds its routes)."""
    with recorded_spans() as recorded:
        yield recorded


@pytest.fixture
def soap_hub(
    spans: RecordedSpans, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A hub serving the CRM's SOAP operation, calling a recording Billing simulator."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "billing-secret")
    monkeypatch.setenv("TEST_CRM_PASSWORD", "crm-secret")
    monkeypatch.setenv("TEST_HOTLINE_PASSWORD", "hotline-secret")
    billing = RecordingBilling("esb", "billing-secret")
    url = billing.serve()
    port = free_port()
    running = Hub(Project.load(make_soap_project(tmp_path, url, port)))
    running.start(wait=20)
    try:
        yield {"billing": billing, "base": f"http://127.0.0.1:{port}/soap"}
    finally:
        running.stop(timeout=5)
        billing.stop()


def test_soap_request_with_traceparent_is_continued_and_billing_gets_ours(
    spans: RecordedSpans, soap_hub: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRM's traceparent is the parent of the route's span; the call to Billing carries the
    traceparent of the hub's delivery span, in the same trace."""
    real_post = requests.post

    def post_with_trace(*args: Any, **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {**kwargs.get("headers", {}), "traceparent": TRACEPARENT}
        return real_post(*args, **kwargs)

    monkeypatch.setattr(requests, "post", post_with_trace)
    response = crm_post(soap_hub["base"], siebel_account("1-9ACC7"))
    assert response.status_code == 202, response.text
    route = ended(spans, "route crm-billing-account-to-billing")
    delivery = spans.one("deliver billing.create_account")
    assert route.context.trace_id == int(UPSTREAM_TRACE, 16)
    assert route.parent is not None
    assert route.parent.span_id == int(UPSTREAM_SPAN, 16)
    sent = [t for t in soap_hub["billing"].traceparents if t]
    assert sent == [f"00-{UPSTREAM_TRACE}-{delivery.context.span_id:016x}-01"]
    kinds = [
        s.attributes["esb.step.kind"] for s in spans.all() if s.name.startswith("step ") and s.attributes
    ]
    assert kinds == ["transform", "validate", "transform"]


def test_soap_request_without_traceparent_starts_a_trace(
    spans: RecordedSpans, soap_hub: dict[str, Any]
) -> None:
    """A request with no trace context gets a new trace, and Billing still gets a traceparent of it."""
    response = crm_post(soap_hub["base"], siebel_account("1-9ACC8"))
    assert response.status_code == 202, response.text
    route = ended(spans, "route crm-billing-account-to-billing")
    assert route.parent is None
    [sent] = [t for t in soap_hub["billing"].traceparents if t]
    assert sent.split("-")[1] == f"{route.context.trace_id:032x}"


def rest_project(tmp: Path, port: int) -> Project:
    """A project whose one route reads the channel's TMF622 REST listener into a memory endpoint."""
    (tmp / "config").mkdir()
    for name in ("transforms", "canonical_model"):
        (tmp / name).symlink_to(REPO / name)
    (tmp / "config" / "contracts").symlink_to(REPO / "config" / "contracts")
    (tmp / "config" / "settings.yaml").write_text(
        f"data_dir: {tmp / 'var'}\nmonitoring: {{enabled: false}}\nruntime: {{poll_timeout: 0.02}}\n"
    )
    listen = {
        "host": "127.0.0.1", "port": port, "reply_timeout": "5s",
        "auth": {"users": [{"username": "channel", "password_env": "TEST_REST_PASSWORD"}]},
    }  # fmt: skip
    systems = {
        "systems": {
            "channel": {
                "name": "channel",
                "endpoints": {"rest_orders": {"adapter": "rest", "listen": listen}},
            },
            "hub": {"name": "hub", "endpoints": {"orders": {"adapter": "memory"}}},
        }
    }
    routes = {"routes": [{"id": "rest-orders-in", "from": "channel.rest_orders", "to": "hub.orders"}]}
    (tmp / "config" / "systems.yaml").write_text(json.dumps(systems))
    (tmp / "routes.yaml").write_text(json.dumps(routes))
    return Project.load(tmp)


def test_rest_order_with_traceparent_is_continued(
    spans: RecordedSpans, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TMF622 order POSTed with a traceparent: the route's span is its child, in the caller's trace."""
    monkeypatch.setenv("TEST_REST_PASSWORD", "channel-secret")
    port = free_port()
    project = rest_project(tmp_path, port)
    journal = Journal(project.settings.journal.url)
    journal.connect()
    worker = RouteWorker(project, project.routes[0], journal)
    worker.start()
    try:
        assert worker.ready.wait(10)
        answer = requests.post(
            f"http://127.0.0.1:{port}/tmf-api/productOrderingManagement/v4/productOrder",
            data=to_json(tmf_order(1, random.Random(1))),
            headers={"Content-Type": "application/json", "traceparent": TRACEPARENT},
            auth=("channel", "channel-secret"),
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        route = ended(spans, "route rest-orders-in")
    finally:
        worker.stop()
        worker.join(5)
        journal.close()
    assert route.context.trace_id == int(UPSTREAM_TRACE, 16)
    assert route.parent is not None
    assert route.parent.span_id == int(UPSTREAM_SPAN, 16)
    assert spans.one("deliver hub.orders").parent is not None


class HeaderPeer:
    """A loopback HTTP peer answering 200 ``{}`` and keeping each request's traceparent header."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"] or 0))
                outer.traceparents.append(self.headers.get("traceparent"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_rest_call_out_carries_the_current_span_and_nothing_outside_one(spans: RecordedSpans) -> None:
    """The REST client sends the traceparent of the span it is called in, and none outside a span."""
    peer = HeaderPeer()
    endpoint = RESTEndpoint.model_validate({"adapter": "rest", "base_url": peer.url})
    client = RESTClient(endpoint, AdapterContext(Settings(), REPO, "peer.api"))
    client.connect()
    try:
        with telemetry.tracer().delivery("r", "peer.api", Message(body=b"{}")):
            client.call("POST", peer.url, b"{}")
        client.call("POST", peer.url, b"{}")
    finally:
        client.close()
        peer.server.shutdown()
        peer.server.server_close()
    delivery = spans.one("deliver peer.api")
    sent, outside = peer.traceparents
    assert sent is not None
    assert sent.split("-")[1:3] == [f"{delivery.context.trace_id:032x}", f"{delivery.context.span_id:016x}"]
    assert outside is None


class Collector:
    """A loopback OTLP/HTTP traces receiver: keeps each export's span names and its headers."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.names: list[str] = []
        self.api_keys: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"] or 0))
                request = ExportTraceServiceRequest.FromString(data)
                outer.api_keys.append(self.headers.get("api-key"))
                outer.names.extend(
                    span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_spans_reach_an_otlp_collector_with_the_configured_headers() -> None:
    """telemetry: {enabled, exporter: otlp}: the spans are exported over OTLP/HTTP to the endpoint, with
    the configured headers, by the time the tracer is shut down (as the hub does when it stops)."""
    pytest.importorskip(
        "opentelemetry.exporter.otlp.proto.http", reason="the otel extra: pip install 'esb[otel]'"
    )
    collector = Collector()
    settings = Settings.model_validate(
        {"telemetry": {"enabled": True, "endpoint": collector.url, "headers": {"api-key": "k-1"}}}
    )
    try:
        active = telemetry.configure(settings.telemetry)
        with active.route("r", Message(body=b"x")), active.delivery("r", "e.x", Message(body=b"x")):
            pass
        telemetry.shutdown()
    finally:
        collector.server.shutdown()
        collector.server.server_close()
    assert sorted(collector.names) == ["deliver e.x", "route r"]
    assert set(collector.api_keys) == {"k-1"}
    assert telemetry.tracer() is telemetry.NOOP
