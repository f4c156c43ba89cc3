"""cheroot's WSGI gateway, answering with one send: the status line, headers and body in one write.

cheroot writes a response's head and its first body chunk with a ``send`` each (its socket writer
flushes on every write). Each ``send`` releases the GIL, and in a listener whose server threads contend
for it each release costs a wait to take it back (measured: docs/rest.md, *Speed*). :class:`OneSendGateway`
collects what cheroot writes for the head and the first chunk and sends them together; later chunks
(none for the listener's answers, which are one ``bytes``) go out as cheroot sends them. It also gives
the ``Date`` header cheroot would add, formatted once a second instead of once a response.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from cheroot import wsgi


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
