"""Acks of one AMQP channel settled together: one ``basic.ack`` with ``multiple`` for a run of them.

The route worker acks each delivery of a batch of up to 200 one after the other; one ``basic.ack`` frame
(and one ``sendall``) each was ~10-25 µs of the hub's CPU per message. :class:`PendingAcks` holds the acks
until its owner calls :meth:`PendingAcks.flush` (the source does at its next ``read`` and at ``close``)
and then sends one ``basic.ack(multiple=True)`` for the longest run of handed-out deliveries that are
all settled, oldest first; an ack beyond a delivery still unsettled (held by an aggregator) goes alone,
so ``multiple`` never covers a delivery the route has not settled. A requeue (``basic.reject``) goes at
once, after the acks before it.

Delivery tags grow by one per delivery on a channel and the source hands deliveries out in that order,
so "every tag up to N" is exactly the deliveries handed out up to N (prefetched ones have higher tags).
An ack held when the process dies is a delivery the broker hands out again: the journal knows it was
delivered and the idempotent receiver acks it without processing it again (at-least-once, as before).
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any


class PendingAcks:
    """The handed-out, unsettled delivery tags of one channel and the acks not sent yet."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self._open: deque[int] = deque()  # tags handed out and not yet sent as settled, oldest first
        self._acked: set[int] = set()  # tags acked by the route, ack not sent yet

    def handed_out(self, tag: int) -> None:
        """A delivery with ``tag`` went to the route."""
        self._open.append(tag)

    def ack(self, tag: int) -> None:
        """The route acked ``tag``: sent at the next :meth:`flush`."""
        self._acked.add(tag)

    def reject(self, tag: int) -> None:
        """The route gave ``tag`` back: the acks before it are sent, then the requeue, at once."""
        self.flush()
        self.channel.basic_reject(tag, requeue=True)
        self._forget(tag)

    @property
    def waiting(self) -> int:
        """How many acks are not sent yet."""
        return len(self._acked)

    def flush(self) -> None:
        """Send the acks held: one multiple ack for the settled run at the front, the rest one by one."""
        if not self._acked:
            return
        acked, opened = self._acked, self._open
        upto = None
        while opened and opened[0] in acked:
            upto = opened.popleft()
            acked.discard(upto)
        if upto is not None:
            self.channel.basic_ack(upto, multiple=True)
        for tag in sorted(acked):  # behind a delivery still held: alone, never covering it
            self.channel.basic_ack(tag, multiple=False)
            self._forget(tag)
        acked.clear()

    def _forget(self, tag: int) -> None:
        with contextlib.suppress(ValueError):  # already sent as settled
            self._open.remove(tag)
