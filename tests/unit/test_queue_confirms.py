"""Publisher confirms for a batch (adapters/queue/confirms.py) against a fake confirm-mode channel."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from adapters.queue.confirms import ConfirmTracker
from esb.exceptions import TransportError
from esb.message import Message


class ConfirmingChannel:
    """A py-amqp channel in confirm mode, as seen by ConfirmTracker, over a broker that acks each publish.

    Like py-amqp's ``_basic_publish``, every publish first reads the frames already waiting (the acks of
    the publishes before it); ``drain_events`` raises ``TimeoutError`` (socket.timeout) when nothing
    comes, as py-amqp does. ``multiple`` says whether the broker's acks are multiple; ``slow`` makes the
    first ``slow`` reads after the batch time out before the acks arrive (a broker busy syncing to disk);
    with ``confirms`` false no ack ever comes.
    """

    def __init__(self, *, multiple: bool = False, slow: int = 0, confirms: bool = True) -> None:
        self.events: dict[str, set[Callable[..., None]]] = {"basic_ack": set(), "basic_nack": set()}
        self._confirm_selected = False
        self.connection = self
        self.transport = object()  # not py-amqp's TCP transport: one write per publish
        self.multiple = multiple
        self.slow = slow
        self.confirms = confirms
        self.published: list[bytes] = []
        self.unconfirmed: list[int] = []

    def confirm_select(self) -> None:
        """Confirm mode (nothing to record)."""

    def prepare_message(self, body: bytes, **properties: Any) -> bytes:
        """The message as the channel would send it: its body is enough here."""
        return body

    def _basic_publish(self, body: bytes, **options: Any) -> None:
        with contextlib.suppress(TimeoutError):
            self.drain_events(timeout=0)
        self.published.append(body)
        self.unconfirmed.append(len(self.published))

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
def test_acks_read_while_the_batch_is_still_being_published_count(multiple: bool) -> None:
    """Acks of a batch's first publishes, read by py-amqp before it sends the next one, settle them:
    write_many returns after one publish of each message, with no timeout and no second publish."""
    channel = ConfirmingChannel(multiple=multiple)
    publish(channel, 12)
    assert channel.published == [f"m{n}".encode() for n in range(12)]


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
