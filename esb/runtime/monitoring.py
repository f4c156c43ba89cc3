"""The running hub's loopback HTTP listener: /health/live, /health/ready and Prometheus /metrics.

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
from collections.abc import Callable
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
