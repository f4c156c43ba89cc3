"""A batch's ``basic.publish`` frames encoded here: py-amqp's bytes, with less Python per message.

py-amqp encodes each publish on its own: it builds an ``amqp.Message``, encodes the method's arguments
(the same for every message of a batch), walks the fourteen Basic properties to find the four set, packs
each frame with a format string made for it, takes the frame writer's lock and, because RabbitMQ offers
``connection.blocked``, reads the socket (``drain_events(timeout=0)``, a timeout exception when nothing
waits) before every publish. :class:`PublishFrames` encodes the method frame once per sink, and per
message only its content header (the four properties the sink sets: content type, content encoding,
headers, delivery mode) and body frames. The bytes are the ones py-amqp's ``frame_writer`` writes for the
same message (tests/unit/test_publish_frames.py compares them); header values other than strings and
32-bit integers are encoded by py-amqp's own table encoder.
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from amqp.serialization import dumps
from amqp.spec import Basic

FRAME_END = b"\xce"
#: Method, content header and body frames (AMQP 0-9-1 section 4.2.3).
METHOD_FRAME, HEADER_FRAME, BODY_FRAME = 1, 2, 3
#: A frame's type, channel and size; its end byte is one more.
FRAME_OVERHEAD = 8
#: The property flags of content type, content encoding, headers and delivery mode (in that order).
PROPERTY_FLAGS = (1 << 15) | (1 << 14) | (1 << 13) | (1 << 12)
#: Header names kept encoded (a route's header names repeat from message to message).
KEY_CACHE_SIZE = 256

_frame_head = Struct(">BHI")
_content_header = Struct(">HHQH")  # class, weight, body size, property flags
_long = Struct(">I")
_int_item = Struct(">ci")
_INT_MIN, _INT_MAX = -2147483647, 2147483647  # py-amqp's bounds for a table's 'I' values


def _shortstr(value: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    return bytes((len(data),)) + data


class PublishFrames:
    """Encodes persistent publishes to one exchange and routing key on one channel."""

    def __init__(
        self, channel_id: int, frame_max: int, exchange: str, routing_key: str, mandatory: bool
    ) -> None:
        args = dumps("Bssbb", (0, exchange, routing_key, mandatory, False))
        payload = _long.pack((Basic.Publish[0] << 16) | Basic.Publish[1]) + args
        self.channel_id = channel_id
        self.key = (channel_id, frame_max, exchange, routing_key, mandatory)
        self._method = _frame_head.pack(METHOD_FRAME, channel_id, len(payload)) + payload + FRAME_END
        self._chunk = frame_max - FRAME_OVERHEAD
        self._keys: dict[str, bytes] = {}

    def message(self, body: bytes, content_type: str, headers: dict[str, Any], delivery_mode: int) -> bytes:
        """The frames of one publish of ``body`` (content encoding ``binary``) with ``headers``."""
        properties = b"".join(
            (_shortstr(content_type), b"\x06binary", self._table(headers), bytes((delivery_mode,)))
        )
        size = len(body)
        header = _content_header.pack(Basic.CLASS_ID, 0, size, PROPERTY_FLAGS) + properties
        parts = [
            self._method,
            _frame_head.pack(HEADER_FRAME, self.channel_id, len(header)),
            header,
            FRAME_END,
        ]
        chunk = self._chunk
        for start in range(0, size, chunk):
            piece = body[start : start + chunk] if size > chunk else body
            parts += (_frame_head.pack(BODY_FRAME, self.channel_id, len(piece)), piece, FRAME_END)
        return b"".join(parts)

    def _table(self, headers: dict[str, Any]) -> bytes:
        """``headers`` as an AMQP field table (py-amqp's encoding)."""
        parts: list[bytes] = []
        keys = self._keys
        for name, value in headers.items():
            key = keys.get(name)
            if key is None:
                if len(keys) >= KEY_CACHE_SIZE:
                    keys.clear()
                key = keys[name] = _shortstr(name)
            kind = type(value)
            if kind is str:
                data = value.encode("utf-8", "surrogatepass")
                parts += (key, b"S", _long.pack(len(data)), data)
            elif kind is int and _INT_MIN <= value <= _INT_MAX:
                parts += (key, _int_item.pack(b"I", value))
            else:  # bytes, bool, floats, nested tables...: py-amqp's encoder, for the whole table
                table: bytes = dumps("F", [headers])
                return table
        data = b"".join(parts)
        return _long.pack(len(data)) + data
