"""The listener's request-head reader against cheroot's own: the same bytes, limits and counts."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from cheroot import makefile, server
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.rest.gateway import HeadReader, HeadReaderConnection, head_makefile

#: What a request head and body look like to the reader: CRLF lines, a long header, a body without one.
LINES = st.lists(
    st.one_of(
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\r\n"),
        st.sampled_from([b"\r\n", b"\n", b"Authorization: Basic " + b"x" * 300 + b"\r\n", b"{}"]),
    ),
    max_size=12,
)
#: readline() (cheroot's request line), readline(n) (its SizeCheckWrapper asks for 256), read(n).
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("readline"), st.sampled_from([None, -1, 0, 1, 5, 256])),
        st.tuples(st.just("read"), st.integers(min_value=0, max_value=64)),
    ),
    max_size=30,
)


def _replay(reader_class: Any, data: bytes, bufsize: int, ops: list[tuple[str, int | None]]) -> list[Any]:
    """Feed ``data`` through a socket pair to ``reader_class`` (buffer of ``bufsize``); return what each
    of ``ops`` read and the reader's ``bytes_read`` after it."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(data)
        theirs.shutdown(socket.SHUT_WR)
        reader = reader_class(ours, "rb", bufsize)
        seen: list[Any] = []
        for op, size in ops:
            got = reader.readline(size) if op == "readline" else reader.read(size)
            seen.append((op, size, got, reader.bytes_read, reader.has_data()))
        return seen


@settings(max_examples=300, deadline=None)
@given(lines=LINES, bufsize=st.sampled_from([8, 16, 64, 8192]), ops=OPS)
def test_head_reader_reads_what_cheroots_reader_reads(
    lines: list[bytes], bufsize: int, ops: list[tuple[str, int | None]]
) -> None:
    """Any sequence of readline/read calls returns cheroot's bytes and byte counts, across buffer fills."""
    data = b"".join(lines)
    assert _replay(HeadReader, data, bufsize, ops) == _replay(makefile.StreamReader, data, bufsize, ops)


def test_a_request_head_in_the_buffer_needs_one_socket_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once one socket read filled the buffer, the head's lines come from it, never through _pyio's loop."""
    reads: list[str] = []
    real_read, real_line = socket.SocketIO.readinto, makefile.io.IOBase.readline

    def counted_read(self: socket.SocketIO, b: Any) -> int | None:
        reads.append("socket")
        return real_read(self, b)

    def counted_line(self: Any, size: int | None = -1) -> bytes:
        reads.append("_pyio readline")
        return real_line(self, size)  # type: ignore[no-any-return]

    monkeypatch.setattr(socket.SocketIO, "readinto", counted_read)
    monkeypatch.setattr(makefile.io.IOBase, "readline", counted_line)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"POST /o HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        reader = HeadReader(ours, "rb")
        lines = [reader.readline(), reader.readline(256), reader.readline(256), reader.readline(256)]
        assert (lines, reader.read(2)) == (
            [b"POST /o HTTP/1.1\r\n", b"Host: x\r\n", b"Content-Length: 2\r\n", b"\r\n"],
            b"{}",
        )
    assert reads == ["socket"]


def test_plain_connections_read_through_the_head_reader_tls_ones_through_their_adapter() -> None:
    """The listener's connections use HeadReader for a plain socket and keep a TLS adapter's makefile."""

    class Srv:
        peercreds_enabled = peercreds_resolve_enabled = False

    def tls_makefile(sock: Any, mode: str = "r", bufsize: int = 8192) -> Any:
        return makefile.MakeFile(sock, mode, bufsize)

    ours, theirs = socket.socketpair()
    with ours, theirs:
        plain = HeadReaderConnection(Srv(), ours)
        tls = HeadReaderConnection(Srv(), ours, tls_makefile)
        assert type(plain.rfile) is HeadReader
        assert type(plain.wfile) is makefile.StreamWriter
        assert type(tls.rfile) is makefile.StreamReader
        assert isinstance(head_makefile(ours, "wb"), makefile.StreamWriter)
        assert issubclass(HeadReaderConnection, server.HTTPConnection)
