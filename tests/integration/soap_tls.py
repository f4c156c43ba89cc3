"""TLS for the SOAP client's tests: a throw-away PKI made with ``cryptography``, and a WSGI app (the
Billing simulator) served over https on 127.0.0.1 by the standard library (wsgiref + ``ssl``).

The PKI: a server CA and the server's certificate for 127.0.0.1/localhost (SAN with the IP); an
unrelated CA and a server certificate from it (the "wrong CA" case); a client CA and the hub's client
certificate with its private key (mutual TLS).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from tests.integration.certs import make_ca, make_leaf, write_cert, write_key

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class PKI:
    """PEM files: CAs, the server's certificates (good and from another CA), the hub's client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path
    other_server_cert: Path
    other_server_key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path


def make_pki(folder: Path) -> PKI:
    """Write a fresh PKI under ``folder`` (EC P-256 keys: fast to make)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = make_ca("esb test server CA")
    other_key, other = make_ca("unrelated CA")
    client_ca_key, client_ca = make_ca("esb test client CA")
    pki = PKI(*(folder / n for n in (
        "ca.pem", "server.pem", "server.key", "other-ca.pem", "other-server.pem", "other-server.key",
        "client-ca.pem", "client.pem", "client.key",
    )))  # fmt: skip
    for path, cert in ((pki.ca, ca), (pki.other_ca, other), (pki.client_ca, client_ca)):
        write_cert(path, cert)
    for cert_path, key_path, issuer_key, issuer, server in (
        (pki.server_cert, pki.server_key, ca_key, "esb test server CA", True),
        (pki.other_server_cert, pki.other_server_key, other_key, "unrelated CA", True),
        (pki.client_cert, pki.client_key, client_ca_key, "esb test client CA", False),
    ):
        key, cert = make_leaf(issuer_key, issuer, server=server)
        write_cert(cert_path, cert)
        write_key(key_path, key)
    return pki


# -- the https server ---------------------------------------------------------------------------------
class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet (pytest treats stray output as noise)."""

    def get_environ(self) -> dict[str, Any]:
        environ = dict(super().get_environ())
        peer: Any = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        subject = {name: value for rdn in (peer or {}).get("subject", ()) for name, value in rdn}
        environ["wsgi.url_scheme"] = "https"
        environ["tls.client_cn"] = subject.get("commonName")
        return environ


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is the client's business: no traceback on stderr."""


@dataclass
class TLSServer:
    """A WSGI app over https on 127.0.0.1; ``requests`` records (method, path?query, client CN)."""

    url: str
    server: Any
    thread: threading.Thread
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_tls(
    app: WSGIApp,
    cert: Path,
    key: Path,
    *,
    client_ca: Path | None = None,
    tls12_only: bool = False,
    path: str = "/services/BillingAccount",
) -> TLSServer:
    """Serve ``app`` over https with ``cert``/``key``; with ``client_ca`` a client certificate is required.

    ``tls12_only``: a TLS 1.2 server refuses a missing or untrusted client certificate with an alert
    inside the handshake; a TLS 1.3 server often just closes the connection after it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls12_only:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    seen: list[tuple[str, str, str | None]] = []

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING") or ""
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        seen.append((environ["REQUEST_METHOD"], target, environ.get("tls.client_cn")))
        return app(environ, start_response)

    server = _ThreadingWSGIServer(("127.0.0.1", 0), _Handler)
    server.set_app(recording)
    # the handshake happens in accept(); a failed one is an OSError that socketserver skips
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="tls-billing", daemon=True)
    thread.start()
    return TLSServer(f"https://127.0.0.1:{server.server_port}{path}", server, thread, seen)
