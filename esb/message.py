"""The message envelope that every part of the hub passes around.

The body is raw ``bytes`` at the edges (what a source read, what a sink writes) and a canonical ``dict``
(or list) inside the route. Ids are strings so that they survive every protocol's headers unchanged.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson

from esb.randomids import new_id as new_id  # re-exported: the hub's one id generator
from esb.telemetry import inject

#: Header names the hub itself sets on the wire; everything else in ``headers`` is the route's business.
WIRE_ID = "esb-message-id"
WIRE_CORRELATION_ID = "esb-correlation-id"
WIRE_CAUSATION_ID = "esb-causation-id"
WIRE_TYPE = "esb-type"
WIRE_SOURCE = "esb-source"
WIRE_SCHEMA = "esb-schema"
WIRE_CREATED_AT = "esb-created-at"
WIRE_ATTEMPT = "esb-attempt"
WIRE_CONTENT_TYPE = "content-type"


_new = object.__new__


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def iso(when: datetime | None) -> str:
    """Return an ISO 8601 UTC time with milliseconds (``2026-12-06T08:00:00.000Z``), or '-'."""
    if when is None:
        return "-"
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass(slots=True)
class Message:
    """One message: an envelope around a body.

    ``id`` is stable across redeliveries (idempotent receivers key on it); ``correlation_id`` ties every
    message of one business conversation together; ``causation_id`` is the id of the message this one
    was derived from. ``business_keys`` (order id, MSISDN, account id...) are what the journal indexes.
    """

    body: Any
    id: str = dataclasses.field(default_factory=new_id)
    correlation_id: str = ""
    causation_id: str | None = None
    type: str | None = None
    source: str | None = None
    schema: str | None = None
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: datetime = dataclasses.field(default_factory=utcnow)
    attempt: int = 1
    business_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ``(body, its bytes)`` once :meth:`body_bytes` serialised a body that is not bytes or text: the
    #: journal and the sink ask for the same output's bytes, and get them from one serialisation. Not
    #: an init argument, not compared, not copied by :meth:`replace` or :func:`dataclasses.replace`.
    _serialised: tuple[Any, bytes] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.correlation_id:
            self.correlation_id = self.id

    def replace(self, **changes: Any) -> Message:
        """Return a copy with ``changes`` applied; the same message (same id) in a new state.

        What ``dataclasses.replace`` does (a new instance through ``__init__``, unknown names refused),
        written out: it runs several times per message on the hot path, at a third of the cost.
        """
        if changes and not _FIELD_NAMES.issuperset(changes):
            unknown = sorted(set(changes) - _FIELD_NAMES)[0]
            raise TypeError(f"Message has no field {unknown!r}")
        # the fields copied slot by slot, then the changes, then what __post_init__ does: calling
        # __init__ with eleven keywords costs about twice as much
        new = _new(type(self))
        new.body = self.body
        new.id = self.id
        new.correlation_id = self.correlation_id
        new.causation_id = self.causation_id
        new.type = self.type
        new.source = self.source
        new.schema = self.schema
        new.headers = self.headers
        new.created_at = self.created_at
        new.attempt = self.attempt
        new.business_keys = self.business_keys
        new._serialised = None
        for name, value in changes.items():
            setattr(new, name, value)
        if not new.correlation_id:
            new.correlation_id = new.id
        return new

    def derive(self, body: Any, *, suffix: str, **changes: Any) -> Message:
        """Return a child message (split part, aggregate, reply) caused by this one.

        The child's id is ``<parent id>:<suffix>``: deterministic, so that redelivering the parent makes
        the same child ids and idempotent receivers still recognise them.
        """
        fields: dict[str, Any] = {
            "id": f"{self.id}:{suffix}",
            "causation_id": self.id,
            "correlation_id": self.correlation_id,
            "headers": dict(self.headers),
            "business_keys": dict(self.business_keys),
            "created_at": utcnow(),
        }
        fields.update(changes)
        return dataclasses.replace(self, body=body, **fields)

    def body_bytes(self) -> bytes:
        """Return the body as bytes: bytes as they are, text as UTF-8, anything else as JSON.

        Keys that are not strings (``{1: "a"}``) are written as strings. orjson's option for them
        doubles the cost of every document, so it is used only for a body the plain call refuses
        (tests/unit/test_hot_path.py checks both give the same bytes and the same errors).

        A JSON body is serialised once: the bytes are kept with the body object they came from and given
        again while ``body`` is that object (a sink and the journal both ask for a delivered output's
        bytes). A body assigned anew is serialised anew; a body changed *in place* after this call must
        be assigned again (``message.body = body``) or copied (:meth:`replace`) to be serialised again.
        """
        body = self.body
        if isinstance(body, bytes):
            return body
        if isinstance(body, str):
            return body.encode("utf-8")
        kept = self._serialised
        if kept is not None and kept[0] is body:  # the body object holds the reference: its id is not reused
            return kept[1]
        data: bytes | None
        try:
            data = orjson.dumps(body)
        except orjson.JSONEncodeError:  # a non-string key, or a value JSON cannot hold: the full call says
            data = None
        if data is None:
            data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        self._serialised = (body, data)
        return data

    def wire_headers(self) -> dict[str, Any]:
        """Return the headers to put on the wire: the route's headers plus the envelope's fields."""
        out: dict[str, Any] = {k: v for k, v in self.headers.items() if v is not None}
        out[WIRE_ID] = self.id
        out[WIRE_CORRELATION_ID] = self.correlation_id
        if self.causation_id:
            out[WIRE_CAUSATION_ID] = self.causation_id
        if self.type:
            out[WIRE_TYPE] = self.type
        if self.source:
            out[WIRE_SOURCE] = self.source
        if self.schema:
            out[WIRE_SCHEMA] = self.schema
        out[WIRE_CREATED_AT] = self.created_at.isoformat()
        out[WIRE_ATTEMPT] = self.attempt
        inject(out)  # W3C traceparent of the span sending it, when tracing is on
        return out

    @classmethod
    def from_wire(cls, body: bytes, headers: dict[str, Any] | None, *, source: str | None = None) -> Message:
        """Build a message from bytes and wire headers, keeping the sender's envelope when present.

        ``headers`` is not changed: the message gets a copy without the envelope's headers. What
        ``Message(**fields)`` would make, built slot by slot (once per delivery, at a third of the cost;
        tests/unit/test_message_wire.py compares both).
        """
        headers = dict(headers) if headers else {}
        pop = headers.pop
        message_id = pop(WIRE_ID, None)
        correlation_id = pop(WIRE_CORRELATION_ID, None)
        causation_id = pop(WIRE_CAUSATION_ID, None)
        kind = pop(WIRE_TYPE, None)
        sender = pop(WIRE_SOURCE, None)
        schema = pop(WIRE_SCHEMA, None)
        created = pop(WIRE_CREATED_AT, None)
        attempt = pop(WIRE_ATTEMPT, None)
        new = _new(cls)
        new.body = body
        new.id = str(message_id) if message_id else new_id()
        new.correlation_id = (str(correlation_id) if correlation_id else "") or new.id
        new.causation_id = causation_id
        new.type = kind
        new.source = sender or source
        new.schema = schema
        new.headers = headers
        new.created_at = _created_at(created) if created else utcnow()
        new.attempt = int(attempt) if attempt else 1
        new.business_keys = {}
        new._serialised = None
        return new

    def log_context(self) -> dict[str, Any]:
        """Return the fields every log line about this message carries (never the body)."""
        return {"message_id": self.id, "correlation_id": self.correlation_id}


def _created_at(stamp: Any) -> datetime:
    """A wire header's creation time; now, for a foreign timestamp that cannot be read."""
    try:
        return datetime.fromisoformat(str(stamp))
    except ValueError:
        return utcnow()


#: Every field of a Message given to its constructor (Message.replace writes them out: a test checks it
#: misses none); ``_serialised`` is a cache, never copied.
_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Message) if f.init)
