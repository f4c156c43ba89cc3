"""The HTTP side of the listener: one cheroot server per served endpoint, shared by the route's workers.

cheroot (CherryPy's WSGI server) is a multi-threaded, pure-Python HTTP/1.1 server with TLS built in
(the standard ``ssl`` module): the reason it serves REST where waitress serves SOAP (waitress cannot
terminate TLS). Measured figures and the choice: docs/architecture.md. Every worker of a route reading
the endpoint shares one server and one inbox reader (:data:`SERVERS`, counted by endpoint name).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from adapters.rest.app import RESTApp, Served
from esb.exceptions import ConfigError, TransportError
from esb.logging import get_logger


class Server:
    """One cheroot server answering one endpoint's resources."""

    def __init__(self, served: Served, project_dir: Path) -> None:
        self.served = served
        self.project_dir = project_dir
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.notifier: Any = None
        """The event hub's postman (``notify.Notifier``), started by the first reader."""
        self.pruner: Any = None
        """The store's prune job (``retention.Pruner``), started with the postman."""
        self.log = get_logger("rest-listener")

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return int(self.server.bind_addr[1]) if self.server is not None else self.served.options.port

    def start(self) -> None:
        """Bind and serve in a background thread; the base URL of the served resources is known then."""
        from adapters.rest.gateway import ListenerServer  # cheroot, imported once a listener starts

        options = self.served.options
        server = ListenerServer(
            (options.host, options.port),
            RESTApp(self.served),
            numthreads=options.threads,
            server_name="esb",
            timeout=30,
        )
        server.max_request_body_size = options.max_request_bytes * 2 + 65536  # backstop of the app's limit
        scheme = "http"
        if options.tls is not None:
            server.ssl_adapter = self._tls(options.tls.cert_file, options.tls.key_file)
            scheme = "https"
        try:
            server.prepare()
        except OSError as exc:
            raise TransportError(f"cannot listen on {options.host}:{options.port}: {exc.strerror}") from exc
        self.server = server
        host = f"[{options.host}]" if ":" in options.host else options.host
        self.served.base_url = f"{scheme}://{host}:{self.port}{options.base_path}"
        self.thread = threading.Thread(
            target=server.serve, name=f"rest-{options.host}:{self.port}", daemon=True
        )
        self.thread.start()
        self.log.info("REST listener started", endpoint=self.served.endpoint, url=self.served.base_url)

    def _tls(self, cert: Path, key: Path) -> Any:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        cert = cert if cert.is_absolute() else self.project_dir / cert
        key = key if key.is_absolute() else self.project_dir / key
        for what, path in (("cert_file", cert), ("key_file", key)):
            if not path.is_file():
                raise ConfigError(f"{self.served.endpoint}: listen.tls.{what} {path} cannot be read")
        try:
            return BuiltinSSLAdapter(str(cert), str(key))
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigError(f"{self.served.endpoint}: listen.tls: not usable: {exc}") from None

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        if self.server is None:
            return
        self.server.stop()
        if self.thread is not None:
            self.thread.join(5.0)
        self.server = None
        self.log.info("REST listener stopped", endpoint=self.served.endpoint)


class _Registry:
    """The process-wide servers by endpoint name, with how many sources read each."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.servers: dict[str, tuple[Server, int]] = {}

    def attach(self, served: Served, project_dir: Path) -> Server:
        """Return the endpoint's running server, starting it for the first reader."""
        with self.lock:
            found = self.servers.get(served.endpoint)
            if found is None:
                server = Server(served, project_dir)
                server.start()
                found = (server, 0)
            self.servers[served.endpoint] = (found[0], found[1] + 1)
            return found[0]

    def detach(self, server: Server) -> bool:
        """One reader left; the last one stops the server (True then)."""
        name = server.served.endpoint
        with self.lock:
            current, readers = self.servers.get(name, (server, 1))
            if readers > 1:
                self.servers[name] = (current, readers - 1)
                return False
            self.servers.pop(name, None)
        server.stop()
        return True


SERVERS = _Registry()
