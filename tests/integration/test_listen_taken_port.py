"""A listener whose port is taken fails with an error naming the address and leaves nothing open: no
trigger pipe or socket for the garbage collector (a ``ResourceWarning`` in whatever runs then), no thread."""

from __future__ import annotations

import errno
import gc
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.soap.server import Listener
from esb.console.server import ConsoleServer
from esb.exceptions import ConfigError, TransportError
from esb.wsgi import ListenError, create_server
from simulators.billing import BillingSimulator
from tests.unit.routes_fixture import make_project


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another socket listens on."""
    with socket.create_server(("127.0.0.1", 0)) as holder:
        yield int(holder.getsockname()[1])


def _waitress(port: int, _tmp: Path) -> None:
    create_server(lambda environ, start_response: [], "127.0.0.1", port, threads=2)


def _soap_listener(port: int, _tmp: Path) -> None:
    Listener("127.0.0.1", port, threads=2, max_bytes=65536).start()


def _console(port: int, tmp: Path) -> None:
    project = make_project(
        tmp, [{"id": "orders", "from": "crm.orders", "to": "iom.orders"}], ["crm.orders", "iom.orders"]
    )
    project.settings.console.port = port
    ConsoleServer(lambda: project).start()


def _simulator(port: int, _tmp: Path) -> None:
    BillingSimulator().serve(port=port)


@pytest.mark.parametrize(
    ("start", "error"),
    [
        pytest.param(_waitress, ListenError, id="esb.wsgi"),
        pytest.param(_soap_listener, TransportError, id="soap-listener"),
        pytest.param(_console, ConfigError, id="console"),
        pytest.param(_simulator, ListenError, id="simulated-system"),
    ],
)
def test_a_taken_port_fails_clearly_and_leaves_nothing_open(
    start: Callable[[int, Path], None], error: type[Exception], taken: int, tmp_path: Path
) -> None:
    """Starting on a port another socket holds raises the start-up's error naming 127.0.0.1:PORT and
    "Address already in use"; then no ResourceWarning comes when the garbage collector runs, and no
    thread is left running."""
    threads = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            start(taken, tmp_path)
        except Exception as exc:  # checked below, once its frames (they hold the server) are gone
            failure: tuple[type[Exception], str] | None = (type(exc), str(exc))
        else:
            failure = None
        gc.collect()
    assert failure is not None, "started on a taken port"
    assert issubclass(failure[0], error), failure
    assert f"cannot listen on 127.0.0.1:{taken}: Address already in use" in failure[1]
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert [t.name for t in set(threading.enumerate()) - threads] == []


def test_listen_error_keeps_the_system_errno() -> None:
    """ListenError is an OSError with the bind's errno, so callers that test EADDRINUSE still can."""
    error = ListenError("::1", 9465, OSError(errno.EADDRINUSE, "Address already in use"))
    assert isinstance(error, OSError)
    assert error.errno == errno.EADDRINUSE
    assert str(error) == "cannot listen on [::1]:9465: Address already in use"
