"""A real FTP server (pyftpdlib) on a loopback port, in a thread, for the batch adapter's tests."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail


@dataclass
class FTPServer:
    """Where the server listens and what it serves."""

    port: int
    root: Path
    user: str
    password_file: Path


@pytest.fixture(scope="session")
def ftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    """Start pyftpdlib on 127.0.0.1 for the session (user 'esb', password from a secret file)."""
    try:
        with warnings.catch_warnings():  # pyftpdlib imports asyncore (deprecated in 3.11): not our code
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyftpdlib.authorizers import DummyAuthorizer
            from pyftpdlib.handlers import FTPHandler
            from pyftpdlib.servers import ThreadedFTPServer
    except ImportError:
        skip_or_fail("pyftpdlib is not installed")
    base = tmp_path_factory.mktemp("ftpd")
    root = base / "files"
    root.mkdir()
    secret = base / "ftp_password"
    secret.write_text("s3cret-for-tests\n")
    authorizer = DummyAuthorizer()
    authorizer.add_user("esb", "s3cret-for-tests", str(root), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "passive_ports": None})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        yield FTPServer(port, root, "esb", secret)
    finally:
        server.close_all()
