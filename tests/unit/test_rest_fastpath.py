"""The POST path's fast parts: pooled random ids, and the one-send gateway against cheroot's own."""

from __future__ import annotations

import email.utils
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from cheroot import makefile, wsgi

from adapters.rest.gateway import ListenerServer, OneSendGateway, http_date
from esb import randomids as ids


def test_new_ids_are_version_4_uuids() -> None:
    """Every id is a version-4, RFC 4122 UUID's 32 hex digits, like uuid.uuid4().hex."""
    for _ in range(ids.CHUNK // 16 * 2 + 3):  # across refills of the pool
        ident = ids.new_id()
        parsed = uuid.UUID(hex=ident)
        assert (parsed.hex, parsed.version, parsed.variant) == (ident, 4, uuid.RFC_4122)


def test_new_ids_do_not_repeat_across_threads() -> None:
    """Ids drawn from several threads at once are all distinct (the pool is shared under a lock)."""
    found: list[str] = []

    def draw() -> None:
        found.extend(ids.new_id() for _ in range(2000))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == len(found) == 8000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_never_repeats_the_parents_next_ids() -> None:
    """A child forked with unread random bytes in the pool draws fresh ones, not the parent's next ids."""
    ids.new_id()  # the pool now holds unread bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, "".join(ids.new_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1000).decode()
    os.close(read)
    parent = "".join(ids.new_id() for _ in range(3))
    assert len(child) == 96
    assert child != parent


def test_http_date_is_cheroots_date_of_this_second() -> None:
    """The cached Date value is what cheroot would have written (RFC 9110's format, GMT)."""
    before = email.utils.formatdate(usegmt=True).encode()
    value = http_date()
    after = email.utils.formatdate(usegmt=True).encode()
    assert value in (before, after)


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers like the listener: one body, its Content-Length, a 204 without a body."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if environ["PATH_INFO"] == "/empty":
        start_response("204 No Content", [])
        return [b""]
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(params=["cheroot", "one-send", "listener"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, list[int]]]:
    """A loopback cheroot server with cheroot's gateway or ours, or the listener's whole server (its
    gateway, head reader and linger); yields (name, port, writes per answer)."""
    kind = ListenerServer if request.param == "listener" else wsgi.Server
    server = kind(("127.0.0.1", 0), _app, numthreads=1, server_name="esb")
    if request.param == "one-send":
        server.gateway = OneSendGateway
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield request.param, int(server.bind_addr[1]), []
    server.stop()
    thread.join(5)


def _exchange(port: int, requests: list[bytes]) -> list[bytes]:
    """Send each request on one keep-alive connection; return each raw answer."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        buffer = b""
        for request in requests:
            sock.sendall(request)
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            head, _, rest = buffer.partition(b"\r\n\r\n")
            found = re.search(rb"(?i)content-length: (\d+)", head)
            length = int(found.group(1)) if found else 0
            while len(rest) < length:
                rest += sock.recv(65536)
            answers.append(head + b"\r\n\r\n" + rest[:length])
            buffer = rest[length:]
    return answers


HEAD = b"POST /order HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
REQUESTS = [
    HEAD + b'Content-Length: 10\r\n\r\n{"id":"1"}',
    b"POST /empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"POST /order HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
]


ANSWER = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
DATE = re.compile(rb"\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [\d:]{8} GMT")


def _without_date(answer: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"", answer)


def test_one_send_answers_what_cheroot_answers(
    server: tuple[str, int, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-send gateway's answers are cheroot's byte for byte (but the Date value), in one write each."""
    name, port, _ = server
    writes: list[bytes] = []
    real = makefile.StreamWriter.write

    def counted(self: Any, data: bytes) -> int:
        writes.append(bytes(data))
        return int(real(self, data))

    monkeypatch.setattr(makefile.StreamWriter, "write", counted)
    answers = _exchange(port, REQUESTS)
    assert [_without_date(a) for a in answers] == [
        ANSWER + b'Content-Length: 10\r\nServer: esb\r\n\r\n{"id":"1"}',
        b"HTTP/1.1 204 No Content\r\nServer: esb\r\n\r\n",
        ANSWER + b"Content-Length: 2\r\nServer: esb\r\n\r\n{}",
    ]
    assert all(DATE.search(answer) for answer in answers)
    # cheroot writes the head and the body apart; ours once per answer (the 204 has no body either way)
    assert len(writes) == (5 if name == "cheroot" else 3)


class _Conn:
    """What put_conn looks at: the connection's socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock


@pytest.fixture
def lingering(monkeypatch: pytest.MonkeyPatch) -> tuple[ListenerServer, list[str]]:
    """A ListenerServer (no socket, no threads) whose hand-overs are recorded instead of done."""
    server = ListenerServer(("127.0.0.1", 0), _app, numthreads=1)
    server.ready = True  # as serving
    done: list[str] = []
    monkeypatch.setattr(server, "process_conn", lambda conn: done.append("queued at once"))
    monkeypatch.setattr(wsgi.Server, "put_conn", lambda self, conn: done.append("to the selector"))
    return server, done


def test_a_request_already_there_is_queued_at_once(lingering: tuple[ListenerServer, list[str]]) -> None:
    """A keep-alive connection whose next request is waiting skips the selector thread."""
    server, done = lingering
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"POST /order HTTP/1.1\r\n")
        server.put_conn(_Conn(ours))
    assert done == ["queued at once"]


def test_a_quiet_connection_goes_to_the_selector(lingering: tuple[ListenerServer, list[str]]) -> None:
    """Without a next request within the linger the connection goes to cheroot's selector as before."""
    server, done = lingering
    ours, theirs = socket.socketpair()
    with ours, theirs:
        server.put_conn(_Conn(ours))
    assert done == ["to the selector"]


def test_no_linger_while_connections_wait_for_a_worker(
    lingering: tuple[ListenerServer, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While other connections wait for a worker, none lingers: the connection goes to the selector."""
    server, done = lingering
    monkeypatch.setattr(type(server.requests), "qsize", property(lambda pool: 1))  # one waits
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"POST /order HTTP/1.1\r\n")
        server.put_conn(_Conn(ours))
    assert done == ["to the selector"]
