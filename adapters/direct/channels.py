"""The process-wide table of direct channels and request handlers."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from esb.message import Message

Handler = Callable[[Message], Message]

_lock = threading.Lock()
_channels: dict[str, queue.Queue[Message]] = {}
_handlers: dict[str, Handler] = {}
_given_back: dict[tuple[str, str], int] = {}  # (channel, message id) -> delivery count of its next hand-out


def channel(name: str, capacity: int = 1000) -> queue.Queue[Message]:
    """Return the in-process queue called ``name``, creating it on first use."""
    with _lock:
        found = _channels.get(name)
        if found is None:
            found = _channels[name] = queue.Queue(maxsize=capacity)
        return found


def give_back(name: str, message: Message, delivery_count: int) -> None:
    """Put ``message`` back on channel ``name``; its next hand-out is its ``delivery_count + 1``th."""
    with _lock:
        _given_back[(name, message.id)] = delivery_count + 1
    channel(name).put(message)


def delivery_count(name: str, message: Message) -> int:
    """How many times ``message``, just taken from channel ``name``, has been handed out (1 the first)."""
    with _lock:
        return _given_back.pop((name, message.id), 1)


def register_handler(name: str, handler: Handler) -> None:
    """Answer requests sent to channel ``name`` with ``handler`` (used by enrich and by simulators)."""
    with _lock:
        _handlers[name] = handler


def handler(name: str) -> Handler | None:
    """Return the handler registered for ``name``, if any."""
    with _lock:
        return _handlers.get(name)


def reset() -> None:
    """Forget every channel and handler (tests)."""
    with _lock:
        _channels.clear()
        _handlers.clear()
        _given_back.clear()
