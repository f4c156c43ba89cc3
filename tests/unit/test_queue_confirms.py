"""Publisher confirms for a batch (adapters/queue/confirms.py) against a fake confirm-mode channel."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from adapters.queue.confirms import ConfirmTracker
from esb.exceptions import TransportError
from esb.message import Message


class ConfirmingChannel:
    """A py-amqp channel in confirm mode, as seen by ConfirmTracker, over a broker that acks each publish.

    It is its own connection and transport: ``write`` takes the batch's frames (the publishes counted by
    their method frames, the bodies kept from their body frames); ``drain_events`` raises ``TimeoutError``
    (socket.timeout) when nothing comes, as py-amqp does. ``multiple`` says whether the broker's acks are
    multiple; ``slow`` makes the first ``slow`` reads after the batch time out before the acks arrive (a
    broker busy syncing to disk); with ``confirms`` false no ack ever comes.
    """

    def __init__(self, *, multiple: bool = False, slow: int = 0, confirms: bool = True) -> None:
        self.events: dict[str, set[Callable[..., None]]] = {"basic_ack": set(), "basic_nack": set()}
        self._confirm_selected = False
        self.connection = self.transport = self
        self.channel_id, self.frame_max, self.bytes_sent = 1, 131072, 0
        self.multiple = multiple
        self.slow = slow
        self.confirms = confirms
        self.writes: list[bytes] = []
        self.published: list[bytes] = []
        self.unconfirmed: list[int] = []

    def confirm_select(self) -> None:
        """Confirm mode (nothing to record)."""

    def write(self, data: bytes) -> None:
        """Take a write of frames: each method frame is a publish, each body frame its body."""
        self.writes.append(data)
        offset = 0
        while offset < len(data):
            kind, _channel, size = struct.unpack_from(">BHI", data, offset)
            if kind == 1:
                self.published.append(b"")
                self.unconfirmed.append(len(self.published))
            elif kind == 3:
                self.published[-1] += data[offset + 7 : offset + 7 + size]
            offset += 8 + size

    def drain_events(self, timeout: float) -> None:
        """Hand the broker's waiting acks to the channel's callbacks, or time out."""
        if timeout and self.slow:
            self.slow -= 1
            raise TimeoutError("timed out")
        if not self.unconfirmed or not self.confirms:
            raise TimeoutError("timed out")
        tags = [self.unconfirmed[-1]] if self.multiple else list(self.unconfirmed)
        self.unconfirmed.clear()
        for tag in tags:
            for callback in list(self.events["basic_ack"]):
                callback(tag, self.multiple)


def publish(channel: ConfirmingChannel, count: int, timeout: float = 5.0) -> None:
    """Publish ``count`` messages as one batch through a tracker on ``channel``."""
    tracker = ConfirmTracker(channel)
    messages = [Message(body=f"m{n}".encode()) for n in range(count)]
    tracker.publish_many(
        messages, exchange="", routing_key="q", mandatory=True, timeout=timeout, url="amqp://x"
    )


@pytest.mark.parametrize(
    "multiple", [pytest.param(False, id="single-acks"), pytest.param(True, id="multiple-acks")]
)
def test_a_batch_leaves_in_one_write_and_its_confirms_settle_it(multiple: bool) -> None:
    """A batch's publishes leave in one socket write, in order, and the broker's acks (one per message
    or multiple) settle them: publish_many returns with no timeout and no second publish."""
    channel = ConfirmingChannel(multiple=multiple)
    publish(channel, 12)
    assert channel.published == [f"m{n}".encode() for n in range(12)]
    assert len(channel.writes) == 1
    assert channel.bytes_sent == 12


def test_a_confirm_slower_than_one_read_is_waited_for_until_the_timeout() -> None:
    """Reads that time out (nothing from the broker for a second) do not end the wait before the timeout."""
    channel = ConfirmingChannel(slow=3)
    publish(channel, 4)
    assert len(channel.published) == 4


def test_a_batch_never_confirmed_raises_at_the_timeout() -> None:
    """With confirms that never come, publish_many raises TransportError naming the unconfirmed count."""
    channel = ConfirmingChannel(confirms=False)
    with pytest.raises(TransportError, match=r"3 publish\(es\) not confirmed"):
        publish(channel, 3, timeout=0.05)
