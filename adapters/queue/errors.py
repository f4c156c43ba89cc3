"""The one place where kombu, py-amqp and sqlite3 exceptions become the hub's TransportError."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def translate_errors(url: str, action: str) -> Iterator[None]:
    """Turn a broker library's exception raised inside the block into TransportError (URL masked).

    ``action`` says what was being done (``connect``, ``publish``, ``ack``...). The hub's own errors
    pass through unchanged; a ValueError while connecting (a bad URL or transport option) is a
    ConfigError.
    """
    try:
        yield
    except EsbError:
        raise
    except ValueError as exc:
        if action != "connect":
            raise
        raise ConfigError(f"broker {mask_url(url)}: {mask_url(str(exc))}") from exc
    except BROKER_ERRORS as exc:
        detail = mask_url(str(exc)) or type(exc).__name__
        raise TransportError(f"queue {action} failed: {type(exc).__name__}: {detail}", endpoint=url) from exc
