"""Operators' tools: time windows, trace, stats, route control, reload decisions, metrics, HTTP auth, CLI."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from esb.cli.main import cli
from esb.exceptions import ConfigError, DecodeError
from esb.journal import Journal
from esb.message import Message
from esb.ops.common import parse_key, parse_when
from esb.ops.stats import compute, percentile
from esb.ops.trace import build_trace
from esb.project import Project
from esb.runtime.control import RouteControl
from esb.runtime.hub import Hub
from esb.runtime.metrics import MeteredJournal, Metrics
from esb.runtime.monitoring import MonitoringServer
from esb.runtime.reload import changed_routes, load_checked
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project
from tests.unit.test_worker import ENDPOINTS, route


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A fresh journal in a temp file."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


def test_parse_when_takes_durations_ago_and_iso_times() -> None:
    """'2h' is two hours before now; an ISO time without a zone is UTC; junk is a ConfigError."""
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_when("2h", now=now) == now - timedelta(hours=2)
    assert parse_when("2026-01-01T08:00:00", now=now) == datetime(2026, 1, 1, 8, tzinfo=UTC)
    with pytest.raises(ConfigError):
        parse_when("yesterday-ish", now=now)
    assert parse_key("msisdn=13307550001") == ("msisdn", "13307550001")
    with pytest.raises(ConfigError):
        parse_key("13307550001")


def test_trace_follows_a_business_key_in_time_order(journal: Journal) -> None:
    """A trace by MSISDN lists every event of the message in order, with the time it took to end."""
    message = Message(body=b"x", id="m1", business_keys={"msisdn": "13307550001"})
    journal.received("r", message)
    journal.event("r", message, "redelivered", error=DecodeError("bad"))
    journal.mark_delivered("r", message, "b.out", event=True, finish=message)
    trace = build_trace(journal, "13307550001")
    assert [s.state for s in trace.steps] == ["received", "redelivered", "delivered", "delivered"]
    assert trace.steps[1].error_reason == "decode-error"
    assert [(j.message_id, j.state) for j in trace.journeys] == [("m1", "delivered")]
    assert trace.journeys[0].took_ms is not None
    assert trace.journeys[0].took_ms >= 0
    assert build_trace(journal, "nobody").steps == []


def test_stats_count_outcomes_and_latency(journal: Journal) -> None:
    """Stats count route-level outcomes (not per-endpoint deliveries) and give latency percentiles."""
    for index in range(4):
        message = Message(body=b"x", id=f"m{index}")
        journal.received("r", message)
        if index == 3:
            journal.event("r", message, "dead_lettered", endpoint="dlq.r", error=DecodeError("bad"))
        else:
            journal.mark_delivered("r", message, "b.out", event=True, finish=message)
    now = datetime.now(UTC)
    [stats] = compute(journal.url, now - timedelta(minutes=5), now + timedelta(seconds=1))
    assert (stats.received, stats.delivered, stats.dead_lettered) == (4, 3, 1)
    assert stats.error_rate == 0.25
    assert stats.errors_by_reason == {"decode-error": 1}
    assert stats.latency_ms["count"] == 4
    assert stats.latency_ms["p50"] <= stats.latency_ms["max"]
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([], 99) == 0.0


def test_route_control_is_shared_through_the_database(tmp_path: Path) -> None:
    """One process suspends a route; another sees it; resume clears it."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with RouteControl(url) as writer, RouteControl(url) as reader:
        writer.set_state("r", "suspended", "billing batch")
        assert reader.suspended() == {"r"}
        assert reader.states()["r"].reason == "billing batch"
        writer.set_state("r", "running")
        assert reader.suspended() == set()


def test_suspended_route_leaves_messages_waiting_until_resumed(tmp_path: Path) -> None:
    """Hub workers follow the control table: nothing is read while suspended, all of it after resume."""
    BROKER.reset()
    project = make_project(tmp_path, [route()], ENDPOINTS)
    project.settings.monitoring.enabled = False
    with RouteControl(project.settings.journal.url) as control:
        control.set_state("r", "suspended")
        hub = Hub(project)
        hub.start()
        try:
            BROKER.feed("a.in", Message(body=b"1", id="m1"))
            hub.apply_control()
            threading_wait(0.3)
            assert BROKER.written("b.out") == []
            assert len(BROKER.box("a.in").pending) == 1
            control.set_state("r", "running")
            hub.apply_control()
            assert wait_for(lambda: len(BROKER.written("b.out")) == 1)
        finally:
            hub.stop()


def threading_wait(seconds: float) -> None:
    """Wait ``seconds`` (an Event nobody sets)."""
    threading.Event().wait(seconds)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        threading_wait(0.02)
    return False


def test_reload_restarts_only_changed_routes_and_refuses_findings(tmp_path: Path) -> None:
    """A changed route restarts, an unchanged one keeps running; a project with findings is refused."""
    project = make_project(tmp_path, [route(), route(id="s", to="c.out")], ENDPOINTS)
    changed = make_project(tmp_path, [route(), route(id="s", to="b.out")], ENDPOINTS)
    assert changed_routes(project.routes, changed.routes, everything=False) == ({"s"}, {"s"})
    assert changed_routes(project.routes, changed.routes, everything=True) == ({"r", "s"}, {"r", "s"})
    make_project(tmp_path, [route(to="nowhere.out")], ENDPOINTS)
    loaded, findings = load_checked(lambda: Project.load(tmp_path, environ={}, strict=False))
    assert loaded is None
    assert any("nowhere.out" in f for f in findings)


def test_metered_journal_counts_states_errors_and_latency(journal: Journal) -> None:
    """Every state written through the hub's journal is counted; a final one records its latency."""
    metrics = Metrics()
    metered = MeteredJournal(journal, metrics)
    message = Message(body=b"x", id="m1")
    metered.received("r", message)
    metered.event("r", message, "dead_lettered", endpoint="dlq.r", error=DecodeError("bad"))
    text = metrics.exposition().decode()
    assert 'esb_messages_total{route="r",state="dead_lettered"} 1.0' in text
    assert 'esb_errors_total{reason="decode-error",route="r"} 1.0' in text
    assert 'esb_message_duration_seconds_count{outcome="dead_lettered",route="r"} 1.0' in text
    assert journal.outcome("r", "m1") == "dead_lettered"


def test_monitoring_needs_the_bearer_token(tmp_path: Path) -> None:
    """Without the token every path answers 401; with it /metrics and /health answer."""
    project = make_project(tmp_path, [route()], ENDPOINTS)
    project.settings.monitoring.port = 0
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = MonitoringServer(project.settings, lambda: b"esb_up 1\n", lambda: (False, {"why": "test"}))
    server.start()
    try:
        def get(path: str, token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                with urllib.request.urlopen(urllib.request.Request(server.url + path, headers=headers)) as r:
                    return int(r.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert [get(p, None) for p in ("/health/live", "/health/ready", "/metrics")] == [401, 401, 401]
        assert get("/metrics", "wrong") == 401
        assert get("/metrics", server.token) == 200
        assert get("/health/live", server.token) == 200
        assert get("/health/ready", server.token) == 503
        assert get("/nope", server.token) == 404
        assert (project.settings.data_dir / "monitoring.json").stat().st_mode & 0o077 == 0
    finally:
        server.stop()
    assert not (project.settings.data_dir / "monitoring.json").exists()


def test_cli_exit_codes(tmp_path: Path) -> None:
    """trace of an unknown key exits 1; replay with nothing selected and unknown routes are errors."""
    make_project(tmp_path, [route()], ENDPOINTS)
    runner = CliRunner()
    base = ["--project", str(tmp_path)]
    assert runner.invoke(cli, [*base, "trace", "nothing-here"]).exit_code == 1
    result = runner.invoke(cli, [*base, "replay"])
    assert isinstance(result.exception, ConfigError)
    assert "say what to replay" in str(result.exception)
    result = runner.invoke(cli, [*base, "route", "suspend", "rr"])
    assert isinstance(result.exception, ConfigError)
    assert "did you mean 'r'" in str(result.exception)
    listed = runner.invoke(cli, [*base, "route", "list"])
    assert listed.exit_code == 0
    assert "running" in listed.output


def test_monitoring_bounds_idle_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle unauthenticated connections are closed after the idle timeout and never hold more than
    MAX_CONNECTIONS threads; a scrape works again once they are gone."""
    import socket

    from esb.runtime import monitoring

    monkeypatch.setattr(monitoring._Handler, "timeout", 0.5)
    project = make_project(tmp_path, [route()], ENDPOINTS)
    project.settings.monitoring.port = 0
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = MonitoringServer(project.settings, lambda: b"esb_up 1\n", lambda: (True, {}))
    server.start()
    before = threading.active_count()
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    idle = [socket.create_connection((host, int(port))) for _ in range(monitoring.MAX_CONNECTIONS + 20)]
    try:
        time.sleep(0.2)
        assert threading.active_count() - before <= monitoring.MAX_CONNECTIONS
        for sock in idle:  # every idle connection is closed by the server: refused at once, or timed out
            sock.settimeout(5)
            assert sock.recv(1) == b""
        auth = {"Authorization": f"Bearer {server.token}"}
        request = urllib.request.Request(server.url + "/metrics", headers=auth)
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
    finally:
        for sock in idle:
            sock.close()
        server.stop()
