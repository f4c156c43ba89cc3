"""The one place where kombu, py-amqp and sqlite3 exceptions become the hub's TransportError."""

from __future__ import annotations

import socket
import sqlite3
from types import TracebackType

import amqp.exceptions
import kombu.exceptions

from esb.exceptions import ConfigError, EsbError, TransportError, mask_url

#: Everything the broker libraries raise for a broken, refused or unreachable broker.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.KombuError,
    amqp.exceptions.AMQPError,
    amqp.exceptions.MessageNacked,
    sqlite3.Error,
    ConnectionError,
    socket.timeout,
    OSError,
)


class translate_errors:  # noqa: N801 - used as a function (``with translate_errors(url, action):``)
    """Turn a broker library's exception raised inside the block into TransportError (URL masked).

    ``action`` says what was being done (``connect``, ``publish``, ``ack``...). The hub's own errors
    pass through unchanged; a ValueError while connecting (a bad URL or transport option) is a
    ConfigError. A class rather than a ``@contextmanager`` generator: it wraps every read and ack, and
    costs a quarter as much.
    """

    __slots__ = ("action", "url")

    def __init__(self, url: str, action: str) -> None:
        self.url = url
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, EsbError):
            return  # the hub's own errors pass through unchanged
        if isinstance(exc, ValueError):
            if self.action != "connect":
                return
            raise ConfigError(f"broker {mask_url(self.url)}: {mask_url(str(exc))}") from exc
        if isinstance(exc, BROKER_ERRORS):
            detail = mask_url(str(exc)) or type(exc).__name__
            raise TransportError(
                f"queue {self.action} failed: {type(exc).__name__}: {detail}", endpoint=self.url
            ) from exc
