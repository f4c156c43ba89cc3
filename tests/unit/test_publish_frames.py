"""The batch publish's frames (adapters/queue/publish_frames.py) against py-amqp's own frame writer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import amqp
import pytest
from amqp.method_framing import frame_writer
from amqp.serialization import dumps
from amqp.spec import Basic
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.queue.publish_frames import KEY_CACHE_SIZE, PublishFrames

FRAME_MAX = 4096  # small, so that bodies of a few KB take several body frames


def amqp_frames(
    body: bytes, headers: dict[str, Any], *, content_type: str = "application/json", exchange: str = "",
    routing_key: str = "crm.orders", mandatory: bool = True, channel_id: int = 1, frame_max: int = FRAME_MAX,
) -> bytes:  # fmt: skip
    """What py-amqp writes for one publish (``basic_publish`` after kombu's ``prepare_message``)."""
    written: list[bytes] = []
    connection = SimpleNamespace(frame_max=frame_max, bytes_sent=0)
    write = frame_writer(connection, SimpleNamespace(write=lambda data: written.append(bytes(data))))
    message = amqp.Message(
        body,
        content_type=content_type,
        content_encoding="binary",
        application_headers=headers,
        delivery_mode=2,
    )
    write(1, channel_id, Basic.Publish, dumps("Bssbb", (0, exchange, routing_key, mandatory, False)), message)
    return b"".join(written)


def ours(
    body: bytes, headers: dict[str, Any], *, content_type: str = "application/json", **options: Any
) -> bytes:
    """What PublishFrames encodes for the same publish."""
    channel_id, frame_max = options.get("channel_id", 1), options.get("frame_max", FRAME_MAX)
    exchange, routing_key = options.get("exchange", ""), options.get("routing_key", "crm.orders")
    frames = PublishFrames(channel_id, frame_max, exchange, routing_key, options.get("mandatory", True))
    return frames.message(body, content_type, headers, 2)


ORDER_HEADERS = {
    "esb-content-type": "application/json",
    "esb-message-id": "0b9f7c1e-4a52-4c1b-9d0e-1f2a3b4c5d6e",
    "esb-correlation-id": "corr-1",
    "esb-created-at": "2026-12-07T20:00:00+00:00",
    "esb-attempt": 1,
}


@pytest.mark.parametrize(
    ("body", "headers", "options"),
    [
        pytest.param(b'{"order": 1}', ORDER_HEADERS, {}, id="order"),
        pytest.param(b"", ORDER_HEADERS, {}, id="empty-body"),
        pytest.param(bytes(range(256)) * 40, ORDER_HEADERS, {}, id="body-over-several-frames"),
        pytest.param(b"x" * (FRAME_MAX - 8), ORDER_HEADERS, {}, id="body-of-exactly-one-frame"),
        pytest.param("订单".encode(), {"城市": "深圳", "n": -5}, {"routing_key": "订单"}, id="chinese"),
        pytest.param(
            b"x",
            {"big": 2**40, "ok": True, "f": 1.5, "raw": b"\x00\x01", "t": {"a": 1}},
            {},
            id="values-for-py-amqp-encoder",
        ),
        pytest.param(b"x", {}, {"exchange": "esb.out", "mandatory": False, "channel_id": 7}, id="exchange"),
    ],
)
def test_frames_are_the_bytes_py_amqp_writes(
    body: bytes, headers: dict[str, Any], options: dict[str, Any]
) -> None:
    """One publish's method, header and body frames equal py-amqp's frame writer's, byte for byte."""
    assert ours(body, headers, **options) == amqp_frames(body, headers, **options)


header_values = st.one_of(
    st.text(max_size=40), st.integers(min_value=-(2**62), max_value=2**62), st.booleans(), st.none()
)


@settings(max_examples=200, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=64), st.integers(0, 400).map(lambda n: bytes(i % 251 for i in range(n)))
    ),
    headers=st.dictionaries(st.text(min_size=1, max_size=20), header_values, max_size=8),
    content_type=st.text(max_size=30),
)
def test_any_headers_and_body_encode_as_py_amqp_does(
    body: bytes, headers: dict[str, Any], content_type: str
) -> None:
    """For any body and header table of strings, integers, booleans and nulls, the bytes equal py-amqp's."""
    if len(content_type.encode("utf-8", "surrogatepass")) > 255:
        return
    small = {"frame_max": 40}  # bodies of several frames are common
    assert ours(body, headers, content_type=content_type, **small) == amqp_frames(
        body, headers, content_type=content_type, **small
    )


def test_header_names_cache_stays_bounded() -> None:
    """Header names are kept encoded up to KEY_CACHE_SIZE, then forgotten, and the bytes stay right."""
    frames = PublishFrames(1, FRAME_MAX, "", "q", True)
    for n in range(KEY_CACHE_SIZE + 10):
        headers = {f"h{n}": "v"}
        assert frames.message(b"b", "t", headers, 2) == amqp_frames(
            b"b", headers, content_type="t", routing_key="q"
        )
    assert len(frames._keys) <= KEY_CACHE_SIZE
