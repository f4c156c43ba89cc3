"""Fewer system calls per message on a py-amqp connection: read-ahead.

The bytes on the wire stay py-amqp's own; only how they cross the socket changes:

- :func:`read_ahead`: py-amqp's TCP transport asks the socket for exactly the bytes it needs next (a
  frame's 7-byte header, then its payload, then its end byte), so a delivery (method, header and body
  frames) costs about ten ``recv`` calls. With read-ahead each ``recv`` asks for at least
  :data:`READ_AHEAD` bytes; what comes beyond the frame stays in the transport's own read buffer, which
  its ``_read`` serves first (the buffer py-amqp already keeps for frames split across reads).
It touches private attributes of py-amqp's ``TCPTransport`` (``_quick_recv``, ``_write``; py-amqp
5.4); :func:`supported` says whether a connection has them (TLS transports do not: left as they are).
tests/integration/test_rabbitmq_wire.py proves the messages the broker hands out are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Bytes asked of the socket at least per ``recv``: a few deliveries of orders' size (~2.3 KB each).
#: Larger costs more than it saves: py-amqp slices its read buffer (a copy) at every frame.
READ_AHEAD = 16384


def supported(transport: Any) -> bool:
    """True when ``transport`` is py-amqp's plain TCP transport with the attributes used here."""
    return hasattr(transport, "_quick_recv") and hasattr(transport, "_write") and hasattr(transport, "sock")


def read_ahead(transport: Any, size: int = READ_AHEAD) -> None:
    """Make ``transport`` (py-amqp, connected) read at least ``size`` bytes per ``recv``; idempotent."""
    if not supported(transport) or getattr(transport, "_esb_read_ahead", False):
        return
    recv: Callable[[int], bytes] = transport.sock.recv

    def recv_ahead(wanted: int) -> bytes:
        return recv(wanted if wanted > size else size)

    transport._quick_recv = recv_ahead
    transport._esb_read_ahead = True
