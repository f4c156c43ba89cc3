"""Real FTP and FTPS servers (pyftpdlib) on loopback ports, in threads, for the batch adapter's tests.

Both can drop a data connection mid-transfer: set ``server.cut.after`` to a byte count and every
transfer after that many bytes is cut (the server answers 426, as when a link drops), until it is set
back to None. The FTPS server has a certificate from a CA made for the session (``certs.ca``), and
``certs.other_ca`` is a CA that signed nothing the server holds.
"""

from __future__ import annotations

import errno
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail
from tests.integration.certs import make_ca, make_leaf

PASSWORD = "s3cret-for-tests"


@dataclass
class Cut:
    """When set, data connections are dropped after ``after`` bytes; ``hits`` counts the drops."""

    after: int | None = None
    hits: int = 0


@dataclass
class Certs:
    """PEM files made for the session: a CA, the server's certificate and key, and an unrelated CA."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path


@dataclass
class FTPServer:
    """Where the server listens and what it serves."""

    port: int
    root: Path
    user: str
    password_file: Path
    cut: Cut = field(default_factory=Cut)
    certs: Certs | None = None


class _Cutting:
    """A data-channel mixin that drops the connection once ``cut.after`` bytes went through."""

    cut: Cut
    _cut_bytes = 0

    def use_sendfile(self) -> bool:
        """Never sendfile: the bytes must go through ``send`` to be counted."""
        return False

    def _over(self, count: int) -> bool:
        self._cut_bytes += count
        return self.cut.after is not None and self._cut_bytes > self.cut.after

    def send(self, data: bytes) -> int:
        """Send, then drop the connection once over the limit (426 to the client)."""
        sent: int = super().send(data)  # type: ignore[misc]
        if self._over(sent) and not self._closed:  # type: ignore[attr-defined]
            self.cut.hits += 1
            self.handle_close()  # type: ignore[attr-defined]
        return sent

    def recv(self, buffer_size: int) -> bytes:
        """Receive; once over the limit, fail the upload as a reset connection would (426)."""
        chunk: bytes = super().recv(buffer_size)  # type: ignore[misc]
        if self._over(len(chunk)):
            from pyftpdlib.exceptions import _FileReadWriteError

            self.cut.hits += 1
            raise _FileReadWriteError(errno.ECONNRESET, "connection dropped (test)")
        return chunk


def _import_pyftpdlib() -> Any:
    try:
        with warnings.catch_warnings():  # pyftpdlib imports asyncore (deprecated in 3.11): not our code
            warnings.simplefilter("ignore", DeprecationWarning)
            import pyftpdlib.handlers as handlers
            from pyftpdlib.authorizers import DummyAuthorizer  # noqa: F401
            from pyftpdlib.servers import ThreadedFTPServer  # noqa: F401
    except ImportError:
        skip_or_fail("pyftpdlib is not installed")
    return handlers


def _serve(base: Path, tls: Certs | None) -> Iterator[FTPServer]:
    handlers = _import_pyftpdlib()
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.servers import ThreadedFTPServer

    root = base / "files"
    root.mkdir()
    secret = base / "ftp_password"
    secret.write_text(PASSWORD + "\n")
    authorizer = DummyAuthorizer()
    authorizer.add_user("esb", PASSWORD, str(root), perm="elradfmwMT")
    cut = Cut()
    attrs: dict[str, Any] = {"authorizer": authorizer, "passive_ports": None}
    if tls is None:
        control, data = handlers.FTPHandler, handlers.DTPHandler
    else:
        if not hasattr(handlers, "TLS_FTPHandler"):
            skip_or_fail("pyOpenSSL is not installed (pyftpdlib's FTPS needs it)")
        control, data = handlers.TLS_FTPHandler, handlers.TLS_DTPHandler
        attrs.update(
            certfile=str(tls.cert), keyfile=str(tls.key), tls_control_required=True, tls_data_required=True
        )
    attrs["dtp_handler"] = type("CuttingDTP", (_Cutting, data), {"cut": cut})
    handler = type("Handler", (control,), attrs)
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        yield FTPServer(port, root, "esb", secret, cut, tls)
    finally:
        server.close_all()


@pytest.fixture(scope="session")
def ftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    """Plain FTP on 127.0.0.1 for the session (user 'esb', password from a secret file)."""
    yield from _serve(tmp_path_factory.mktemp("ftpd"), None)


@pytest.fixture(scope="session")
def ftpsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    """FTPS (explicit TLS on control and data) on 127.0.0.1, certificate from a session CA."""
    base = tmp_path_factory.mktemp("ftpsd")
    yield from _serve(base, make_certs(base / "pki"))


# -- certificates (cryptography) ------------------------------------------------------------------------
def make_certs(folder: Path) -> Certs:
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, and an unrelated CA."""
    from cryptography.hazmat.primitives import serialization

    folder.mkdir(parents=True)
    ca_key, ca_cert = make_ca("esb test CA")
    _, other_cert = make_ca("some other CA")
    key, cert = make_leaf(ca_key, "esb test CA", server=True)
    paths = Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "other_ca.pem")
    pem = serialization.Encoding.PEM
    paths.ca.write_bytes(ca_cert.public_bytes(pem))
    paths.other_ca.write_bytes(other_cert.public_bytes(pem))
    paths.cert.write_bytes(cert.public_bytes(pem))
    paths.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths
