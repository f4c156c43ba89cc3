"""The message envelope: wire round trip, derived ids, body bytes."""

from __future__ import annotations

from esb.message import Message


def test_wire_round_trip_keeps_envelope() -> None:
    """A message written with wire_headers and read with from_wire keeps id, correlation, type, attempt."""
    original = Message(
        body=b"x", type="order.submitted", source="crm", headers={"priority": "high"}, attempt=3
    )
    back = Message.from_wire(b"x", original.wire_headers())
    assert (back.id, back.correlation_id, back.type, back.source, back.attempt) == (
        original.id,
        original.correlation_id,
        "order.submitted",
        "crm",
        3,
    )
    assert back.headers == {"priority": "high"}
    assert back.created_at == original.created_at


def test_from_wire_without_envelope_makes_new_id_and_uses_source() -> None:
    """Bytes from a foreign system get a fresh id, correlation = id, and the endpoint as source."""
    message = Message.from_wire(b"x", {"JMSType": "order"}, source="crm.orders_out")
    assert message.correlation_id == message.id
    assert message.source == "crm.orders_out"
    assert message.headers == {"JMSType": "order"}


def test_derive_is_deterministic_and_keeps_correlation() -> None:
    """A derived message's id is parent:suffix, caused by the parent, same correlation."""
    parent = Message(body={}, id="p1", correlation_id="c1")
    child = parent.derive({"a": 1}, suffix="0")
    assert (child.id, child.causation_id, child.correlation_id) == ("p1:0", "p1", "c1")


def test_body_bytes_of_dict_is_json_utf8() -> None:
    """A dict body is serialised as UTF-8 JSON, Chinese kept as characters."""
    assert Message(body={"name": "张三"}).body_bytes() == '{"name":"张三"}'.encode()
