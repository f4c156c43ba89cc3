"""Frames read through one buffer (adapters/queue/frames.py) against py-amqp's own frame reader."""

from __future__ import annotations

import errno
import itertools
import socket
import struct

import pytest
from amqp.exceptions import UnexpectedFrame
from amqp.transport import TCPTransport
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.queue.frames import FrameReader, read_frames


class ChoppedSocket:
    """A socket whose ``recv`` hands out a byte stream in the given pieces (at most what is asked), then
    times out; the sizes asked are recorded."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = [p for p in pieces if p]
        self.asked: list[int] = []

    def recv(self, size: int) -> bytes:
        self.asked.append(size)
        if not self.pieces:
            raise TimeoutError("timed out")
        piece = self.pieces.pop(0)
        if len(piece) > size:
            piece, rest = piece[:size], piece[size:]
            self.pieces.insert(0, rest)
        return piece


def transport_on(sock: ChoppedSocket, leftover: bytes = b"") -> TCPTransport:
    """py-amqp's TCP transport over ``sock``, as after the handshake (``leftover`` in its buffer)."""
    transport = TCPTransport.__new__(TCPTransport)
    transport.sock = sock  # type: ignore[assignment]
    transport.connected = True
    transport.raise_on_initial_eintr = True
    transport._read_buffer = leftover
    transport._quick_recv = sock.recv
    return transport


def frame(kind: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    """One AMQP frame's bytes."""
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + bytes((end,))


def read_all(read: object, count: int) -> list[tuple[int, int, bytes]]:
    """Up to ``count`` frames from ``read`` (a read_frame), retrying after each timeout as py-amqp's
    caller does."""
    got = []
    for _ in range(10_000):  # a reader that never gets there fails instead of hanging
        if len(got) == count:
            break
        try:
            got.append(read())  # type: ignore[operator]
        except TimeoutError:
            continue
    return [(kind, channel, bytes(payload)) for kind, channel, payload in got]


FRAMES = [
    frame(1, 1, b"\x00<\x00<" + b"x" * 40),
    frame(2, 1, b"h" * 60),
    frame(3, 1, bytes(range(256)) * 30),
    frame(3, 2, b""),
    frame(8, 0, b""),
]


def pieces_of(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (positions, any order, repeats allowed)."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=150, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30), timeouts=st.booleans())
def test_frames_are_py_amqp_s_whatever_the_socket_hands_out(cuts: list[int], timeouts: bool) -> None:
    """The same frames as py-amqp's reader, in order, whatever pieces the stream comes in (with a
    timeout after every piece or not); a read that times out mid-frame loses nothing."""
    data = b"".join(FRAMES)
    pieces = pieces_of(data, cuts)
    if timeouts:  # an empty piece: the fake socket times out there
        pieces = [p for piece in pieces for p in (piece, b"")]

    def chopped() -> ChoppedSocket:
        sock = ChoppedSocket([])
        sock.pieces = list(pieces)  # empty pieces kept: each one a timeout
        sock.recv = _timing_out(sock)  # type: ignore[method-assign]
        return sock

    theirs = read_all(transport_on(chopped()).read_frame, len(FRAMES))
    ours = read_all(FrameReader(transport_on(chopped()), size=64).read_frame, len(FRAMES))
    assert ours == theirs


def _timing_out(sock: ChoppedSocket) -> object:
    """``recv`` over ``sock.pieces`` where an empty piece is a timeout."""

    def recv(size: int) -> bytes:
        sock.asked.append(size)
        while sock.pieces:
            piece = sock.pieces.pop(0)
            if not piece:
                raise TimeoutError("timed out")
            if len(piece) > size:
                sock.pieces.insert(0, piece[size:])
                piece = piece[:size]
            return piece
        raise TimeoutError("timed out")

    return recv


def test_the_handshake_s_leftover_bytes_are_read_first() -> None:
    """Bytes py-amqp's buffer held when the reader was installed are the start of the next frame."""
    data = b"".join(FRAMES)
    transport = transport_on(ChoppedSocket([data[10:]]), leftover=data[:10])
    read_frames(transport)
    assert read_all(transport.read_frame, len(FRAMES)) == read_all(
        transport_on(ChoppedSocket([data[10:]]), leftover=data[:10]).read_frame, len(FRAMES)
    )


def test_recv_asks_for_at_least_the_read_ahead() -> None:
    """Each recv asks for the read-ahead, or for the rest of a frame when that is larger."""
    big = frame(3, 1, b"b" * 5000)
    sock = ChoppedSocket([frame(1, 1, b"m"), big])
    reader = FrameReader(transport_on(sock), size=1024)
    reader.read_frame()
    reader.read_frame()
    assert sock.asked[0] == 1024
    assert max(sock.asked) >= 5000 - 1024


def test_read_frames_installs_once_and_only_on_tcp() -> None:
    """read_frames replaces a TCP transport's read_frame once; anything else is left alone."""
    transport = transport_on(ChoppedSocket(FRAMES))
    read_frames(transport)
    installed = transport.read_frame
    read_frames(transport)
    assert transport.read_frame is installed
    assert getattr(installed, "__self__", None).__class__ is FrameReader

    class Other:
        read_frame = None

    other = Other()
    read_frames(other)
    assert "read_frame" not in vars(other)


def test_a_bad_frame_end_raises_unexpected_frame() -> None:
    """A frame not ended by 0xce raises UnexpectedFrame, as py-amqp does."""
    reader = FrameReader(transport_on(ChoppedSocket([frame(1, 1, b"m", end=0x00)])))
    with pytest.raises(UnexpectedFrame):
        reader.read_frame()


def test_a_closed_socket_marks_the_transport_lost() -> None:
    """recv returning nothing (the broker closed) raises OSError and marks the transport not connected."""
    sock = ChoppedSocket([])
    sock.recv = lambda size: b""  # type: ignore[method-assign]
    transport = transport_on(sock)
    with pytest.raises(OSError, match="unexpectedly closed"):
        FrameReader(transport).read_frame()
    assert transport.connected is False


def test_eintr_before_a_frame_is_a_timeout() -> None:
    """An interrupted recv before a frame's first byte is a timeout (py-amqp's raise_on_initial_eintr)."""
    sock = ChoppedSocket([])

    def interrupted(size: int) -> bytes:
        raise InterruptedError(errno.EINTR, "interrupted")

    sock.recv = interrupted  # type: ignore[method-assign]
    transport = transport_on(sock)
    with pytest.raises(socket.timeout):
        FrameReader(transport).read_frame()
    assert transport.connected is True
