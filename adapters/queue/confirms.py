"""Publisher confirms for many messages at once on AMQP: publish them all, then wait for the acks.

py-amqp's ``confirm_publish`` waits for one confirm after each publish: one network round trip per
message (DESIGN.md: confirms are where throughput is won). A batch's ``basic.publish`` frames (encoded
by :mod:`adapters.queue.publish_frames`) go out on a channel in confirm mode, and the broker's
``basic.ack`` / ``basic.nack`` frames are followed through the channel's event callbacks, by delivery
tag (``multiple`` acks cover every tag up to theirs). ``write_many`` returns only when every message of
the batch is confirmed. The batch's frames leave in one socket write, not one per message.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from adapters.queue.publish_frames import PublishFrames
from esb.exceptions import TransportError
from esb.message import WIRE_CONTENT_TYPE, Message

PERSISTENT = 2


class ConfirmTracker:
    """Follows one channel's delivery tags: which publishes the broker has confirmed or refused."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.last_tag = 0
        self.pending: set[int] = set()
        self.nacked: set[int] = set()
        self._frames: PublishFrames | None = None
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)

    def _settle(self, tag: int, multiple: bool) -> set[int]:
        done = {t for t in self.pending if t <= tag} if multiple else ({tag} & self.pending)
        self.pending -= done
        return done

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.nacked |= self._settle(delivery_tag, multiple)

    def published_one(self) -> None:
        """Count a publish confirmed elsewhere (py-amqp's own ``basic_publish_confirm``)."""
        self.last_tag += 1

    def publish_many(
        self,
        messages: list[Message],
        *,
        exchange: str,
        routing_key: str,
        mandatory: bool,
        timeout: float,
        url: str,
    ) -> None:
        """Publish ``messages`` persistently and wait until the broker confirmed each one."""
        channel = self.channel
        if not channel._confirm_selected:
            channel._confirm_selected = True
            channel.confirm_select()
        self.nacked.clear()
        connection = channel.connection
        if connection is None:
            raise TransportError("the publishing channel is closed", endpoint=url)
        frames = self._frames
        key = (channel.channel_id, connection.frame_max, exchange, routing_key, mandatory)
        if frames is None or frames.key != key:
            frames = self._frames = PublishFrames(*key)
        # built first: a batch that fails to build sends nothing and takes no tags
        data = b"".join(
            [
                frames.message(
                    message.body_bytes(),
                    str(message.headers.get(WIRE_CONTENT_TYPE) or "application/octet-stream"),
                    message.wire_headers(),
                    PERSISTENT,
                )
                for message in messages
            ]
        )
        first = self.last_tag + 1
        self.last_tag += len(messages)
        self.pending.update(range(first, self.last_tag + 1))  # pending before a confirm can come back
        connection.transport.write(data)  # the batch's frames in one write
        connection.bytes_sent += len(messages)  # as py-amqp counts its writes (its heartbeats read it)
        deadline = time.monotonic() + timeout
        while self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(
                    f"{len(self.pending)} publish(es) not confirmed within {timeout:.0f} s", endpoint=url
                )
            with contextlib.suppress(TimeoutError):  # socket.timeout: nothing came within this read
                channel.connection.drain_events(timeout=min(remaining, 1.0))
        if self.nacked:
            raise TransportError(
                f"the broker refused {len(self.nacked)} message(s) (basic.nack)", endpoint=url
            )
