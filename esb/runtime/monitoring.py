"""The running hub's loopback HTTP listener: /health/live, /health/ready and Prometheus /metrics; and
:class:`HealthWatch`, the health checks run in the background, their last result kept for pages.

Every path needs ``Authorization: Bearer <token>`` (our rule: every listener authenticates; Prometheus
sends it with ``authorization: {credentials_file: ...}`` in its scrape config). The address and token are
written to ``{data_dir}/monitoring.json`` (mode 0600) so that ``esb health`` on the same machine can ask.
"""

from __future__ import annotations

import hmac
import http.server
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from esb.config.settings import Settings
from esb.exceptions import ConfigError
from esb.files import open_file
from esb.logging import get_logger
from esb.runtime.hubclient import INFO_FILE as INFO_FILE
from esb.runtime.hubclient import ask_running_hub as ask_running_hub
from esb.runtime.hubclient import info_path

#: Seconds a connection may stay silent (before and between requests) before it is closed.
IDLE_TIMEOUT = 5.0
#: Connections served at once; more are closed at once (scrapers and ``esb health`` need a few).
MAX_CONNECTIONS = 16


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = IDLE_TIMEOUT  # socket timeout: an idle or slow client does not keep its thread

    def do_GET(self) -> None:
        """Answer one request: 401 without the token, else the path's content."""
        given = self.headers.get("Authorization", "")
        expected = f"Bearer {self.server.token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self._send(401, b'{"error":"unauthorized"}', "application/json",
                       {"WWW-Authenticate": 'Bearer realm="esb"'})
            return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/health/live":
            self._send(200, b'{"status":"live"}', "application/json")
        elif path == "/health/ready":
            ready, detail = self.server.ready()
            body = orjson.dumps({"status": "ready" if ready else "not ready", **detail})
            self._send(200 if ready else 503, body, "application/json")
        else:
            self._send(404, b'{"error":"not found"}', "application/json")

    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: scrapes every 15 s would flood the log."""


class _Server(http.server.ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; the rest are closed unanswered."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # listen backlog: a burst of connections is accepted, then bounded below
    token: str
    metrics: Callable[[], bytes]
    ready: Callable[[], tuple[bool, dict[str, Any]]]

    def __init__(self, address: tuple[str, int], max_connections: int = MAX_CONNECTIONS) -> None:
        super().__init__(address, _Handler)
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve ``request`` in a thread if a slot is free, else close it."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then give its slot back."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class MonitoringServer:
    """Serves health and metrics on the loopback address of ``settings.monitoring``."""

    def __init__(self, settings: Settings, metrics: Callable[[], bytes],
                 ready: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        self.settings = settings
        self.token = settings.monitoring.token or secrets.token_urlsafe(32)
        self._metrics, self._ready = metrics, ready
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.log = get_logger("monitoring")

    @property
    def url(self) -> str:
        """The base URL it listens on."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        name = str(host)
        return f"http://{'[' + name + ']' if ':' in name else name}:{port}"

    def start(self) -> None:
        """Bind, serve in a thread, and write the info file (0600)."""
        cfg = self.settings.monitoring
        try:
            server = _Server((cfg.host, cfg.port))
        except OSError as exc:
            raise ConfigError(f"monitoring: cannot listen on {cfg.host}:{cfg.port}: {exc} "
                              "(set monitoring.port, 0 for any free port)") from exc
        server.token, server.metrics, server.ready = self.token, self._metrics, self._ready
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="monitoring", daemon=True)
        self._thread.start()
        path = info_path(self.settings)
        with open_file(path, "write") as out:
            out.write(orjson.dumps({"url": self.url, "token": self.token, "pid": os.getpid()}))
        self.log.info("monitoring listening", url=self.url, info_file=str(path),
                      paths=["/health/live", "/health/ready", "/metrics"])

    def stop(self) -> None:
        """Stop serving and remove the info file (if it is still ours)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        path = info_path(self.settings)
        try:
            if orjson.loads(path.read_bytes()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, orjson.JSONDecodeError):
            pass


#: Seconds between two runs of the health checks by a :class:`HealthWatch`.
HEALTH_EVERY = 30.0


@dataclass(frozen=True)
class HealthResult:
    """One run of the health checks: what ``run`` returned (or the error it raised), when, how long."""

    checks: list[Any]
    at: datetime
    took: float
    error: str | None = None


class HealthWatch:
    """Runs ``run`` (the health checks: ``esb.ops.health.run_checks``, which call the project's peers and
    take a second or more when one is down) every ``every`` seconds in a background thread, and keeps the
    last result: a page shows it at once instead of calling every peer per request (the console's health
    page, issue 18). ``start`` is idempotent; the first result comes after the first run."""

    def __init__(self, run: Callable[[], list[Any]], every: float = HEALTH_EVERY) -> None:
        self.run, self.every = run, every
        self._last: HealthResult | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.log = get_logger("monitoring")

    def start(self) -> None:
        """Start the background runs (the first one now), unless they are running."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="health-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background runs (a run in progress finishes in its thread)."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=1.0)

    @property
    def running(self) -> bool:
        """Whether the background runs are started."""
        return self._thread is not None

    def last(self) -> HealthResult | None:
        """The last result, None before the first run ended."""
        return self._last

    def refresh(self) -> HealthResult:
        """Run the checks now (in the caller's thread), keep and return the result; an error of ``run``
        is kept as the result's ``error``, never raised (a page must answer)."""
        at, started = datetime.now(UTC), time.perf_counter()
        try:
            result = HealthResult(self.run(), at, time.perf_counter() - started)
        except Exception as exc:
            self.log.error("health checks failed", error=str(exc))
            result = HealthResult([], at, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
        self._last = result
        return result

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.every)
