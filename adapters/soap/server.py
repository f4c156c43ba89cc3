"""The HTTP side of the listener: one waitress server per (host, port), shared by the endpoints naming it.

waitress is a pure-Python, multi-threaded WSGI server (Pylons project, maintained since 2011): an
asyncore-style I/O loop buffers each request completely (slow clients never hold a worker thread) and
hands it to a fixed pool of threads; it enforces a request body limit of its own as a backstop.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from adapters.http.credentials import basic_user, check_basic
from adapters.soap.envelope import CONTENT_TYPES
from adapters.soap.service import Binding, SOAPService
from adapters.soap.wsdl import Contract
from esb.exceptions import TransportError
from esb.logging import get_logger
from esb.wsgi import create_server, stop_server

StartResponse = Callable[..., Any]
_STATUS = {
    200: "200 OK",
    202: "202 Accepted",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def make_server(
    app: Callable[..., Iterable[bytes]], host: str, port: int, threads: int, max_bytes: int
) -> Any:
    """A waitress server for ``app`` with the listener's settings (the bench's baseline uses it too);
    :class:`esb.wsgi.ListenError` when it cannot listen, with nothing left open."""
    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=max_bytes * 2 + 65536,
        ident="esb",
        clear_untrusted_proxy_headers=True,
        channel_timeout=60,
    )


class Listener:
    """One HTTP server and the services (paths) it serves."""

    def __init__(self, host: str, port: int, threads: int, max_bytes: int) -> None:
        self.host = host
        self.requested_port = port
        self.threads = threads
        self.max_bytes = max_bytes
        self.services: dict[str, SOAPService] = {}
        self.lock = threading.Lock()
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.log = get_logger("soap-listener")

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return int(self.server.effective_port) if self.server is not None else self.requested_port

    def start(self) -> None:
        """Bind and serve in a background thread."""
        try:
            self.server = make_server(self.app, self.host, self.requested_port, self.threads, self.max_bytes)
        except OSError as exc:
            raise TransportError(str(exc)) from exc
        self.thread = threading.Thread(
            target=self.server.run, name=f"soap-{self.host}:{self.port}", daemon=True
        )
        self.thread.start()
        self.log.info("SOAP listener started", host=self.host, port=self.port)

    def stop(self) -> None:
        """Stop serving (see :func:`stop_server`)."""
        server, self.server = self.server, None
        if server is None:
            return
        stop_server(server, self.thread)
        self.log.info("SOAP listener stopped", host=self.host, port=self.requested_port)

    # -- WSGI ---------------------------------------------------------------------------------------
    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application: SOAP POSTs and ``?wsdl`` GETs, by path."""
        service = self.services.get(environ.get("PATH_INFO") or "/")
        if service is None:
            return _plain(start_response, 404, b"no SOAP service at this path\n")
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            status, version, body, extra = service.handle(environ)
            headers = [("Content-Type", CONTENT_TYPES[version]), ("Content-Length", str(len(body))), *extra]
            if status == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="esb"'))
            start_response(_STATUS.get(status, f"{status} Error"), headers)
            return [body]
        if method == "GET":
            return self._get(service, environ, start_response)
        return _plain(start_response, 405, b"POST SOAP requests, or GET ?wsdl\n")

    def _get(
        self, service: SOAPService, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING") or "", keep_blank_values=True)
        public = all(b.options.wsdl_public for b in service.bindings.values())
        if not public:
            refused = self._refuse_get(service, environ, start_response)
            if refused is not None:
                return refused
        url = service.public_url() or self.own_url(service.path)
        if "wsdl" in {k.lower() for k in query}:
            data = service.publisher.document(None, url)
        elif "file" in query:
            data = service.publisher.document(query["file"][0], url)
        else:
            return _plain(start_response, 404, b"GET ?wsdl for the contract\n")
        if data is None:
            return _plain(start_response, 404, b"no such contract file\n")
        start_response(
            _STATUS[200], [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(data)))]
        )
        return [data]

    def _refuse_get(
        self, service: SOAPService, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """Refuse a GET from a locked-out client or without valid basic credentials (logged, counted)."""
        from adapters.soap.envelope import SOAPFault

        try:
            service.check_lockout(environ)
        except SOAPFault as fault:
            service.refused(environ, "locked_out", None, fault.text)
            text = b"too many failed authentications from this address: try again later\n"
            start_response(
                _STATUS[429],
                [
                    ("Content-Type", "text/plain"),
                    ("Content-Length", str(len(text))),
                    ("Retry-After", str(fault.retry_after)),
                ],
            )
            return [text]
        header = environ.get("HTTP_AUTHORIZATION")
        if check_basic(header, service.users()) is not None:
            return None
        reason = "bad_credentials" if header else "missing_credentials"
        service.refused(environ, reason, basic_user(header), "GET ?wsdl: authentication failed")
        start_response(
            _STATUS[401], [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Basic realm="esb"')]
        )
        return [b"authentication required\n"]

    def own_url(self, path: str) -> str:
        """The URL of ``path`` on this listener's bound address (the host name when bound to all)."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else socket.gethostname()  # noqa: S104 - compared, not bound
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}{path}"


def _plain(start_response: StartResponse, status: int, text: bytes) -> Iterable[bytes]:
    start_response(_STATUS[status], [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
    return [text]


class _Registry:
    """The process-wide listeners by (host, port) and their reference counts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.counts: dict[tuple[str, int], int] = {}

    def attach(self, binding: Binding, contract: Contract) -> tuple[Listener, Binding]:
        """Serve ``binding``; returns its listener and the binding in use (shared by a route's workers)."""
        options = binding.options
        key = (options.host, options.port)
        with self.lock:
            listener = self.listeners.get(key) if options.port != 0 else None
            service = listener.services.get(options.path) if listener is not None else None
            if service is None:
                service = _new_service(binding, contract)
            elif service.contract.path != contract.path:
                raise TransportError(
                    f"{options.host}:{options.port}{options.path} already serves "
                    f"{service.contract.path.name}, not {contract.path.name}"
                )
            elif options.validate_requests:
                _ = service.validator  # compiled now if the path's earlier bindings did not validate
            if listener is None:
                try:
                    listener = Listener(
                        options.host, options.port, options.threads, options.max_request_bytes
                    )
                    listener.start()
                except BaseException:
                    service.nonces.close()
                    raise
                key = (options.host, listener.port) if options.port == 0 else key
                self.listeners[key] = listener
            self.counts[key] = self.counts.get(key, 0) + 1
            listener.services.setdefault(options.path, service)
            existing = service.bindings.get(binding.info.name)
            if existing is not None and existing.endpoint_name == binding.endpoint_name:
                binding = existing
            service.bind(binding)
            binding.inbox.readers += 1
            return listener, binding

    def detach(self, listener: Listener, binding: Binding) -> tuple[list[Any], bool]:
        """Stop serving ``binding`` when its last reader leaves; return the requests it left unanswered
        and whether the listener is now unused (the caller answers those, then stops it)."""
        options = binding.options
        key = (options.host, listener.port) if options.port == 0 else (options.host, options.port)
        orphans: list[Any] = []
        with self.lock:
            binding.inbox.readers -= 1
            service = listener.services.get(options.path)
            if binding.inbox.readers <= 0 and service is not None:
                service.unbind(binding.info.name)
                binding.stop_inline()
                orphans = binding.inbox.drain()
                if not service.bindings:
                    listener.services.pop(options.path, None)
                    service.nonces.close()
            self.counts[key] = self.counts.get(key, 1) - 1
            unused = self.counts[key] <= 0
            if unused:
                self.counts.pop(key, None)
                self.listeners.pop(key, None)
        return orphans, unused


def _new_service(binding: Binding, contract: Contract) -> SOAPService:
    """A service for ``binding``'s path, its request schema compiled and checked (when the binding
    validates) before anything is served: at connect, never in a server thread (see ``schema.py``)."""
    options = binding.options
    service = SOAPService(options.path, contract, binding.nonces(), binding.metrics)
    if options.validate_requests:
        try:
            _ = service.validator
        except BaseException:
            service.nonces.close()
            raise
    return service


LISTENERS = _Registry()
