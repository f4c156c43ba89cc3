"""The journal's rows as the write path builds them: a message's row, an event's row, business keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.exceptions import error_reason
from esb.journal.statements import Statements
from esb.message import Message

#: Longest error text kept per event (a stack of SOAP faults can be long).
MAX_ERROR_TEXT = 8000
Keys = frozenset[tuple[str, str]]


def message_row(route: str, message: Message, now: datetime, body: bytes | None) -> dict[str, Any]:
    """Return the ``messages`` row of ``message`` entering ``route`` at ``now`` (``body`` as stored)."""
    return {
        "id": message.id,
        "route": route,
        "correlation_id": message.correlation_id or message.id,
        "causation_id": message.causation_id,
        "type": message.type,
        "source": message.source,
        "schema": message.schema,
        "headers": message.headers or None,
        "body": body,
        "created_at": message.created_at,
        "received_at": now,
        "attempt": message.attempt,
        "delivery_count": 1,
    }


def message_values(
    route: str, message: Message, now: datetime, body: bytes | None, delivery_count: int = 1
) -> list[Any]:
    """Return :func:`message_row`'s values in :data:`~esb.journal.bulk.MESSAGE_COLUMNS` order (the batched
    path's rows: no dict per message), ``delivery_count`` as given."""
    return [
        message.id,
        route,
        message.correlation_id or message.id,
        message.causation_id,
        message.type,
        message.source,
        message.schema,
        message.headers or None,
        body,
        message.created_at,
        now,
        message.attempt,
        delivery_count,
    ]


def event_row(
    route: str,
    message_seq: int,
    state: str,
    at: datetime,
    *,
    endpoint: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an ``events`` row (no error, no body: the caller adds them)."""
    return {
        "message_seq": message_seq,
        "route": route,
        "state": state,
        "endpoint": endpoint,
        "error_class": None,
        "error_reason": None,
        "error_text": None,
        "detail": detail,
        "body": None,
        "at": at,
    }


def error_columns(error: BaseException | str | None) -> dict[str, Any]:
    """Return the error columns of an event: class, reason and text of an exception, or a text alone."""
    if error is None:
        return {}
    if isinstance(error, BaseException):
        text = str(error) or type(error).__name__
        return {
            "error_class": type(error).__name__,
            "error_reason": error_reason(error),
            "error_text": text[:MAX_ERROR_TEXT],
        }
    return {"error_text": error[:MAX_ERROR_TEXT]}


def keys_of(message: Message) -> Keys:
    """Return the business keys of ``message`` that have a value, as ``(name, value)`` strings."""
    return frozenset(
        (str(name), str(value)) for name, value in message.business_keys.items() if value not in (None, "")
    )


def index_keys(conn: sa.Connection, sql: Statements, message_seq: int, keys: Keys) -> None:
    """Index ``keys`` on the message row ``message_seq`` (repeats ignored)."""
    if keys:
        rows = [{"message_seq": message_seq, "name": name, "value": value} for name, value in sorted(keys)]
        conn.execute(sql.add_keys, rows)
