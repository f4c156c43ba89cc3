"""Fewer system calls and copies per delivery on a py-amqp connection: frames read from one buffer.

py-amqp's TCP transport asks the socket for exactly the bytes it needs next (a frame's 7-byte header,
then its payload, then its end byte), so a delivery (method, header and body frames) costs about ten
``recv`` calls; and every one of those reads slices its read buffer in two (a copy of all the bytes
after the frame) and adds the piece to a copy of the frame kept in case the read times out: with a
buffer of a few deliveries, ~100 KB copied per 2 KB delivery. :class:`FrameReader` replaces the
transport's ``read_frame``: each ``recv`` asks for at least :data:`READ_AHEAD` bytes, the frames are
parsed in place from one buffer and an offset, and only a frame's payload is copied out. A read that
times out mid-frame keeps what it received; the next read starts the frame again from its first byte.

It is installed on py-amqp's plain ``TCPTransport`` only (:func:`read_frames`; TLS transports are left
as they are), after the connection's handshake, taking over what the transport's own buffer holds.
tests/unit/test_queue_frames.py compares the frames with py-amqp's reader over the same bytes, cut at
random; tests/integration/test_rabbitmq_wire.py proves the broker's messages arrive the same.
"""

from __future__ import annotations

import errno
from struct import Struct
from typing import Any

from amqp.exceptions import UnexpectedFrame
from amqp.transport import TCPTransport

#: Bytes asked of the socket at least per ``recv``: a few deliveries of orders' size (~2.3 KB each).
READ_AHEAD = 16384
FRAME_END = 0xCE
#: Errors that leave the connection usable (py-amqp's own list): anything else marks it lost.
_UNAVAILABLE = frozenset({errno.EAGAIN, errno.EINTR, errno.ENOENT, errno.EWOULDBLOCK})
_RETRY = frozenset({errno.EAGAIN, errno.EINTR})
_head = Struct(">BHI")


class FrameReader:
    """Reads one py-amqp transport's frames: ``(type, channel, payload)`` as its ``read_frame`` does."""

    def __init__(self, transport: Any, size: int = READ_AHEAD) -> None:
        self.transport = transport
        self.size = size
        self._recv = transport.sock.recv
        self._buffer = bytes(transport._read_buffer)  # what the handshake's reads left
        self._pos = 0
        transport._read_buffer = b""

    def read_frame(self) -> tuple[int, int, bytes]:
        """The next frame; socket.timeout (nothing lost) when it did not come in the socket's timeout."""
        try:
            buffer, pos = self._buffer, self._pos
            if len(buffer) - pos < 7:
                buffer, pos = self._fill(7, initial=True)
            kind, channel, size = _head.unpack_from(buffer, pos)
            end = pos + 8 + size
            if len(buffer) < end:
                buffer, pos = self._fill(8 + size, initial=False)
                end = 8 + size
            payload, frame_end = buffer[pos + 7 : end - 1], buffer[end - 1]
            self._pos = end
        except TimeoutError:
            raise
        except OSError as exc:
            if exc.errno not in _UNAVAILABLE:
                self.transport.connected = False
            raise
        if frame_end != FRAME_END:
            raise UnexpectedFrame(f"Received frame_end {frame_end:#04x} while expecting 0xce")
        return kind, channel, payload

    def _fill(self, need: int, *, initial: bool) -> tuple[bytes, int]:
        """Receive until the buffer holds ``need`` bytes from the frame's start (moved to offset 0)."""
        buffer = self._buffer = self._buffer[self._pos :]
        self._pos = 0
        while len(buffer) < need:
            try:
                data = self._recv(max(need - len(buffer), self.size))
            except OSError as exc:
                if exc.errno in _RETRY:
                    if initial and self.transport.raise_on_initial_eintr:
                        raise TimeoutError() from exc
                    continue
                raise
            if not data:
                raise OSError("Server unexpectedly closed connection")
            buffer = self._buffer = buffer + data
        return buffer, 0


def read_frames(transport: Any, size: int = READ_AHEAD) -> None:
    """Make ``transport`` (py-amqp's plain TCP transport, connected) read its frames through a
    :class:`FrameReader`; idempotent; other transports are left as they are."""
    if not isinstance(transport, TCPTransport) or "read_frame" in vars(transport):
        return
    transport.read_frame = FrameReader(transport, size).read_frame
