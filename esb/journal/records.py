"""What the journal's queries return: frozen records, never ORM objects or rows."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message as it entered one route: its envelope, its latest state and its business keys.

    The body is not carried (it may be large and must never reach a log): ask ``Journal.body``.
    """

    id: str
    route: str
    correlation_id: str
    causation_id: str | None
    type: str | None
    source: str | None
    schema: str | None
    headers: dict[str, Any]
    created_at: datetime | None
    received_at: datetime
    attempt: int
    delivery_count: int
    state: str | None
    has_body: bool
    business_keys: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class EventRecord:
    """One change of state of one message on one route, with the error that caused it if any."""

    id: int
    message_id: str
    route: str
    state: str
    at: datetime
    endpoint: str | None = None
    error_class: str | None = None
    error_reason: str | None = None
    error_text: str | None = None
    detail: dict[str, Any] | None = None
    has_body: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class MessageRef:
    """Where one message row is, without the row: its ``seq``, message id, route and arrival (what
    replay's selection of dead letters reads from ``dead_letters`` alone, migration 0018)."""

    seq: int
    id: str
    route: str
    received_at: datetime
