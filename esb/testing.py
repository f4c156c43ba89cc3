"""Helpers that tests and users both need: an in-memory adapter that records, a fake clock.

The ``memory`` adapter (``adapter: memory`` in systems.yaml) keeps each endpoint's messages in a list in
this process. Sinks record what they were given and can be told to fail; sources hand out what was
``feed()``-ed and record how each delivery was settled. Use it to test routes without a broker.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from esb.config.systems import EndpointConfig
from esb.message import Message
from esb.typing import Delivery


class MemoryEndpoint(EndpointConfig):
    """An in-memory endpoint for tests."""

    adapter: Literal["memory"] = "memory"


@dataclass
class _Box:
    pending: deque[tuple[Message, int]] = field(default_factory=deque)
    written: list[Message] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    nacked: list[str] = field(default_factory=list)
    failures: deque[BaseException] = field(default_factory=deque)
    replies: dict[str, Any] = field(default_factory=dict)


class MemoryBroker:
    """The process-wide state of the memory adapter, per endpoint name."""

    def __init__(self) -> None:
        self._boxes: dict[str, _Box] = {}
        self._lock = threading.Lock()

    def box(self, endpoint: str) -> _Box:
        """Return the state of ``endpoint``."""
        with self._lock:
            return self._boxes.setdefault(endpoint, _Box())

    def feed(self, endpoint: str, *messages: Message, delivery_count: int = 1) -> None:
        """Make ``messages`` readable from ``endpoint``."""
        box = self.box(endpoint)
        with self._lock:
            box.pending.extend((m, delivery_count) for m in messages)

    def written(self, endpoint: str) -> list[Message]:
        """Return what sinks wrote to ``endpoint``."""
        return list(self.box(endpoint).written)

    def fail_next(self, endpoint: str, *errors: BaseException) -> None:
        """Make the next writes to ``endpoint`` raise ``errors``, one each."""
        self.box(endpoint).failures.extend(errors)

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._boxes.clear()


BROKER = MemoryBroker()


class MemorySource:
    """Hands out fed messages; a nacked one is fed again with its delivery count raised."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.connected = False

    def connect(self) -> None:
        """Nothing to connect."""
        self.connected = True

    def read(self, timeout: float) -> Delivery | None:
        """Return the next fed message, or None (after waiting up to ``timeout``)."""
        box = BROKER.box(self.endpoint)
        try:
            message, count = box.pending.popleft()
        except IndexError:
            threading.Event().wait(min(timeout, 0.05))
            return None

        def settle(error: BaseException | None) -> None:
            if error is None:
                box.acked.append(message.id)
            else:
                box.nacked.append(message.id)
                box.pending.append((message, count + 1))

        return Delivery(message, settle, delivery_count=count)

    def close(self) -> None:
        """Nothing to close."""
        self.connected = False

    def __enter__(self) -> MemorySource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemorySink:
    """Records written messages; raises the failures queued with ``BROKER.fail_next``."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def connect(self) -> None:
        """Nothing to connect."""

    def write(self, message: Message) -> None:
        """Record ``message`` (or raise the next queued failure)."""
        box = BROKER.box(self.endpoint)
        if box.failures:
            raise box.failures.popleft()
        box.written.append(message)

    def request(self, message: Message, timeout: float) -> Message:
        """Answer with the reply set in ``BROKER.box(endpoint).replies['*']`` (or echo the body)."""
        box = BROKER.box(self.endpoint)
        if box.failures:
            raise box.failures.popleft()
        box.written.append(message)
        return message.derive(box.replies.get("*", message.body), suffix="reply")

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> MemorySink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryAdapter:
    """The ``memory`` adapter: in-process endpoints for tests."""

    name = "memory"

    def endpoint_model(self) -> type[MemoryEndpoint]:
        """Return the endpoint model."""
        return MemoryEndpoint

    def source(self, endpoint: MemoryEndpoint, context: Any) -> MemorySource:
        """Return a source for ``context.endpoint``."""
        return MemorySource(context.endpoint)

    def sink(self, endpoint: MemoryEndpoint, context: Any) -> MemorySink:
        """Return a sink for ``context.endpoint``."""
        return MemorySink(context.endpoint)

    def queue_stats(self, endpoint: MemoryEndpoint, context: Any) -> dict[str, int]:
        """How many fed messages wait to be read."""
        return {"ready": len(BROKER.box(context.endpoint).pending)}

    def queue_depth(self, endpoint: MemoryEndpoint, context: Any) -> int:
        """How many fed messages wait to be read."""
        return len(BROKER.box(context.endpoint).pending)

    def peek(self, endpoint: MemoryEndpoint, context: Any, limit: int = 10) -> list[Message]:
        """The first ``limit`` fed messages, left in place."""
        return [message for message, _ in list(BROKER.box(context.endpoint).pending)[:limit]]

    def publisher(self, endpoint: MemoryEndpoint, context: Any) -> MemorySink:
        """What a replay publishes to a memory source endpoint is recorded like a sink's writes."""
        return MemorySink(context.endpoint)


class FakeClock:
    """A clock for tests: ``clock()`` returns the current fake time; ``advance(s)`` moves it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@contextlib.contextmanager
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Capture what the hub logs (every level) as a list of event dicts, whatever structlog was configured
    with before (a run command may have set a filtering level or cached loggers); restored afterwards."""
    import structlog

    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
