"""The AMQP source's held acks (adapters/queue/acks.py)."""

from __future__ import annotations

from adapters.queue.acks import PendingAcks


class RecordingChannel:
    """Records the settling methods a channel is asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bool]] = []

    def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.sent.append(("ack", tag, multiple))

    def basic_reject(self, tag: int, requeue: bool) -> None:
        self.sent.append(("reject", tag, requeue))


def handed(count: int) -> tuple[PendingAcks, RecordingChannel]:
    """Held acks over a recording channel, with tags 1..count handed out."""
    channel = RecordingChannel()
    acks = PendingAcks(channel)
    for tag in range(1, count + 1):
        acks.handed_out(tag)
    return acks, channel


def test_a_batch_of_acks_is_one_multiple_ack_at_flush() -> None:
    """200 acks send nothing until flush, then one basic.ack(multiple) for the last tag."""
    acks, channel = handed(200)
    for tag in range(1, 201):
        acks.ack(tag)
    assert channel.sent == []
    assert acks.waiting == 200
    acks.flush()
    assert channel.sent == [("ack", 200, True)]
    assert acks.waiting == 0


def test_a_multiple_ack_never_covers_a_delivery_still_held() -> None:
    """With delivery 3 unsettled, 1-2 go as one multiple ack and 4-5 alone; 3 later covers itself only."""
    acks, channel = handed(5)
    for tag in (1, 2, 4, 5):
        acks.ack(tag)
    acks.flush()
    assert channel.sent == [("ack", 2, True), ("ack", 4, False), ("ack", 5, False)]
    channel.sent.clear()
    acks.ack(3)
    acks.flush()
    assert channel.sent == [("ack", 3, True)]


def test_a_requeue_goes_at_once_after_the_acks_before_it() -> None:
    """A reject sends the held acks first, then basic.reject with requeue; later acks run past it."""
    acks, channel = handed(4)
    acks.ack(1)
    acks.reject(2)
    assert channel.sent == [("ack", 1, True), ("reject", 2, True)]
    acks.ack(3)
    acks.ack(4)
    acks.flush()
    assert channel.sent[2:] == [("ack", 4, True)]


def test_flush_without_acks_sends_nothing() -> None:
    """Deliveries handed out but not settled: flush is a no-op."""
    acks, channel = handed(3)
    acks.flush()
    assert channel.sent == []
