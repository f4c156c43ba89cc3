"""Message.from_wire built slot by slot gives what the keyword construction gave, header by header."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esb.message import (
    WIRE_ATTEMPT,
    WIRE_CAUSATION_ID,
    WIRE_CORRELATION_ID,
    WIRE_CREATED_AT,
    WIRE_ID,
    WIRE_SCHEMA,
    WIRE_SOURCE,
    WIRE_TYPE,
    Message,
)

ENVELOPE = {
    WIRE_ID, WIRE_CORRELATION_ID, WIRE_CAUSATION_ID, WIRE_TYPE, WIRE_SOURCE, WIRE_SCHEMA, WIRE_CREATED_AT,
    WIRE_ATTEMPT,
}  # fmt: skip


def reference(body: bytes, headers: dict[str, Any] | None, *, source: str | None = None) -> Message:
    """Message.from_wire as it was written before (a dict of the envelope, then ``Message(**kwargs)``)."""
    headers = dict(headers or {})
    envelope = {k: headers.pop(k) for k in list(headers) if k in ENVELOPE}
    created = envelope.get(WIRE_CREATED_AT)
    kwargs: dict[str, Any] = {
        "body": body,
        "headers": headers,
        "source": envelope.get(WIRE_SOURCE) or source,
        "type": envelope.get(WIRE_TYPE),
        "schema": envelope.get(WIRE_SCHEMA),
        "causation_id": envelope.get(WIRE_CAUSATION_ID),
        "correlation_id": str(envelope.get(WIRE_CORRELATION_ID) or ""),
        "attempt": int(envelope.get(WIRE_ATTEMPT) or 1),
    }
    if envelope.get(WIRE_ID):
        kwargs["id"] = str(envelope[WIRE_ID])
    if created:
        with contextlib.suppress(ValueError):
            kwargs["created_at"] = datetime.fromisoformat(str(created))
    return Message(**kwargs)


def _outcome(build: Any, body: bytes, headers: dict[str, Any] | None, source: str | None) -> Any:
    """The message's fields (a generated id or the current time as their type only), or the error."""
    try:
        message = build(body, headers, source=source)
    except Exception as exc:
        return (type(exc), str(exc))
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(Message) if f.init}
    if not (headers or {}).get(WIRE_ID):
        assert isinstance(fields["id"], str)
        assert len(fields["id"]) == 32
        if fields["correlation_id"] == fields["id"]:
            fields["correlation_id"] = "<the id>"
        fields["id"] = "<generated>"
    stamp = (headers or {}).get(WIRE_CREATED_AT)
    if fields["created_at"] != _parsed(stamp):
        assert isinstance(fields["created_at"], datetime)
        fields["created_at"] = "<now>"
    return fields, list(fields["headers"])


def _parsed(stamp: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(stamp)) if stamp else None
    except ValueError:
        return None


values = st.one_of(
    st.none(), st.just(""), st.just(0), st.integers(-3, 5), st.text(max_size=8), st.binary(max_size=4),
    st.sampled_from(["2026-12-07T22:00:00.123456+00:00", "2026-12-07", "not a time", "3", "-1"]),
)  # fmt: skip
header_maps = st.dictionaries(
    st.one_of(
        st.sampled_from(sorted(ENVELOPE)),
        st.sampled_from(["content-type", "x-a", "priority"]),
        st.text(max_size=5),
    ),
    values,
    max_size=10,
)


@settings(max_examples=400, deadline=None)
@given(headers=st.one_of(st.none(), header_maps), source=st.one_of(st.none(), st.just("crm.orders_out")))
def test_from_wire_gives_what_the_keyword_construction_gave(
    headers: dict[str, Any] | None, source: str | None
) -> None:
    """Any wire headers (envelope fields missing, empty, of odd types, bad times) give the same message
    or the same error, and the caller's headers are left as they were."""
    before = dict(headers) if headers is not None else None
    assert _outcome(Message.from_wire, b"x", headers, source) == _outcome(reference, b"x", headers, source)
    assert headers == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-envelope"),
        pytest.param({WIRE_ID: "m-1", WIRE_CREATED_AT: "2026-12-07T22:00:00+00:00", "a": 1}, id="envelope"),
        pytest.param({WIRE_ID: "m-1", WIRE_CORRELATION_ID: "", WIRE_ATTEMPT: "3"}, id="empty-correlation"),
    ],
)
def test_from_wire_messages_serialise_and_copy_as_constructed_ones(headers: dict[str, Any]) -> None:
    """A message from the wire has an empty serialisation cache and copies like a constructed one."""
    message = Message.from_wire(b"body", headers)
    assert message._serialised is None
    assert message.body_bytes() == b"body"
    assert message.replace(attempt=2) == dataclasses.replace(message, attempt=2)
