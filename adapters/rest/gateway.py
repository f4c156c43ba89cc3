"""cheroot tuned for the listener: one send per answer, and a keep-alive connection's next request taken
by the worker that answered the last one when it comes at once.

**One send.** cheroot writes a response's head and its first body chunk with a ``send`` each (its
socket writer flushes on every write). Each ``send`` releases the GIL, and in a listener whose server
threads contend for it each release costs a wait to take it back (measured: docs/rest.md, *Speed*).
:class:`OneSendGateway` collects what cheroot writes for the head and the first chunk and sends them
together; later chunks (none for the listener's answers, which are one ``bytes``) go out as cheroot
sends them. It also gives the ``Date`` header cheroot would add, formatted once a second instead of
once a response.

**Linger.** After an answer cheroot hands a keep-alive connection back to its selector thread, which
wakes when the next request arrives and queues the connection for a worker, which wakes in turn: two
thread switches and GIL hand-overs per request. :class:`ListenerServer`'s worker first waits up to
:data:`LINGER_MS` for the next request on the connection itself, and only while no connection waits
for a worker (a client that connects meanwhile while every worker lingers waits at most that long); a
request that comes in that time is queued straight back (the same worker takes it), else the
connection goes to the selector as before.

**Buffered lines.** cheroot reads each request's line and headers through ``_pyio``'s pure-Python
``readline`` (a ``peek``, a ``read`` and a ``bytearray`` per line, under the GIL). :class:`HeadReader`,
a subclass of cheroot's own socket reader, answers ``readline`` and ``read`` from its buffer with one
``bytes.find`` and one slice when what is asked for is there (after one fill of an empty buffer), and
falls back to cheroot's reader otherwise: the same bytes, the same limits, the same ``bytes_read``.
"""

from __future__ import annotations

import email.utils
import io
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from cheroot import makefile, server, wsgi

#: How long a worker waits on a keep-alive connection for its next request before the selector does.
LINGER_MS = 1


class _Collected:
    """Stands in for the connection's socket writer while the head and first chunk are written."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        """Keep ``data`` for the one send."""
        self.parts.append(bytes(data))
        return len(data)


_date: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The ``Date`` header's value now (RFC 9110's IMF-fixdate), formatted at most once a second."""
    global _date
    now = int(time.time())
    second, value = _date
    if second != now:
        value = email.utils.formatdate(now, usegmt=True).encode("ascii")
        _date = (now, value)
    return value


class OneSendGateway(wsgi.Gateway_10):
    """A WSGI 1.0 gateway whose response head and first body chunk leave in one socket write."""

    def start_response(self, status: Any, headers: Any, exc_info: Any = None) -> Any:
        """cheroot's start_response, with the cached ``Date`` header when the app gave none."""
        write = super().start_response(status, headers, exc_info)
        if not any(key.lower() == b"date" for key, _ in self.req.outheaders):
            self.req.outheaders.append((b"Date", http_date()))
        return write

    def write(self, chunk: bytes) -> None:
        """Write ``chunk``; the first one goes out with the response's head in one send."""
        req = self.req
        if req.sent_headers:
            super().write(chunk)
            return
        conn = req.conn
        socket_writer, collected = conn.wfile, _Collected()
        conn.wfile = collected
        try:
            super().write(chunk)
        finally:
            conn.wfile = socket_writer
        socket_writer.write(b"".join(collected.parts))


class HeadReader(makefile.StreamReader):
    """cheroot's socket reader whose ``readline`` and ``read`` take what is buffered without ``_pyio``'s
    per-line Python loop."""

    # ``_pyio.BufferedReader``'s state, which cheroot's reader is (its stub says ``io.BufferedReader``)
    _read_buf: bytes
    _read_pos: int
    _read_lock: threading.Lock
    _peek_unlocked: Callable[[int], bytes]

    def _buffered_line(self, size: int) -> bytes | None:
        """The next line (at most ``size`` bytes when ``size`` >= 0) if the buffer holds it, else None."""
        buf, pos = self._read_buf, self._read_pos
        limit = len(buf) if size < 0 else min(len(buf), pos + size)
        end = buf.find(b"\n", pos, limit)
        if end >= 0:
            limit = end + 1
        elif size < 0 or limit - pos < size:
            return None
        self._read_pos = limit
        return buf[pos:limit]

    def readline(self, size: int | None = -1) -> bytes:
        """One line (through ``\\n``, or ``size`` bytes), as ``io.BufferedReader.readline`` reads it."""
        size = -1 if size is None else size.__index__()
        with self._read_lock:
            line = self._buffered_line(size)
            if line is None and self._read_pos >= len(self._read_buf) and size != 0:
                self._peek_unlocked(1)  # an empty buffer: one read from the socket fills it
                line = self._buffered_line(size)
        if line is None:
            return super().readline(size)  # a line across reads: cheroot's way (counts itself)
        self.bytes_read += len(line)
        return line

    def read(self, size: int | None = None) -> bytes:
        """``size`` bytes (fewer at the end of the stream), taken from the buffer when it holds them."""
        if size is not None and size >= 0:
            with self._read_lock:
                pos = self._read_pos
                end = pos + size
                if end <= len(self._read_buf):
                    self._read_pos = end
                    self.bytes_read += size
                    return self._read_buf[pos:end]
        data: bytes = super().read(size)  # type: ignore[no-untyped-call]  # (cheroot's stub)
        return data


def head_makefile(sock: Any, mode: str = "r", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> Any:
    """cheroot's ``MakeFile`` with :class:`HeadReader` for reading."""
    return HeadReader(sock, mode, bufsize) if "r" in mode else makefile.StreamWriter(sock, mode, bufsize)


class HeadReaderConnection(server.HTTPConnection):
    """cheroot's connection reading plain sockets through :class:`HeadReader` (TLS keeps its adapter's)."""

    def __init__(self, srv: Any, sock: Any, makefile_: Any = makefile.MakeFile) -> None:
        super().__init__(srv, sock, head_makefile if makefile_ is makefile.MakeFile else makefile_)


class ListenerServer(wsgi.Server):
    """cheroot's WSGI server answering with :class:`OneSendGateway`, lingering on keep-alive connections,
    reading request heads through :class:`HeadReader`."""

    ConnectionClass = HeadReaderConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gateway = OneSendGateway

    def put_conn(self, conn: Any) -> None:
        """Queue the connection again at once if its next request comes within :data:`LINGER_MS` while
        no other connection waits for a worker; else hand it to the selector (cheroot's way)."""
        if self.ready and self.requests.qsize == 0 and _readable(conn.socket, LINGER_MS) and self.ready:
            self.process_conn(conn)  # (ready again: the server may have stopped while this worker waited)
            return
        super().put_conn(conn)


def _readable(sock: Any, wait_ms: int) -> bool:
    """True when ``sock`` has bytes (or its end) to read within ``wait_ms``."""
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return any(events & select.POLLIN for _, events in poller.poll(wait_ms))
    except (OSError, ValueError):
        return False
