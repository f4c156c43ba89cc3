"""``kind: tmf``: a body converted from or to its TM Forum Open API v4 form, with :mod:`esb.model.tmf`.

``direction: from`` reads a TMF document (``entity: ProductOrder``) into the canonical model. Sloppy input
that the reader can still read without doubt (a capitalised state, a missing ``@type``, money sent as a
binary float) is corrected, and what the canonical schema has no place for (an extra field, a value
outside its code list) is dropped, each with a line in the message header ``esb-warnings`` (appended
to any list already there), which the route worker journals; input it cannot read (an unknown state, a
relatedParty without ``@referredType``, another TMF class) is a :class:`TMFConversionError`, a
MessageError, so the message goes to the dead letter with the reason. Nothing is changed silently.

``direction: to`` writes the canonical document in its TMF form, as JSON bytes whose money values are
exact JSON numbers (``199.00``; a dict body could not carry them: JSON serialisers go through float).

The body is parsed with every non-integer number as a Decimal, so TMF money stays exact; numbers that are
not money come out as the float any JSON parser would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from esb.exceptions import BodyTooLargeError, DecodeError
from esb.message import Message
from esb.model.registry import ModelRegistry
from esb.model.tmf import TMFConversionError, dumps, entity_spec, from_tmf, loads, to_tmf
from esb.transforms.base import Header, Transform

#: The header listing what a transform accepted with a correction (journaled by the route worker).
WARNINGS_HEADER = "esb-warnings"
DIRECTIONS = ("from", "to")


def with_warnings(headers: Mapping[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Return a copy of ``headers`` with ``warnings`` appended to its ``esb-warnings`` list."""
    out = dict(headers)
    if not warnings:
        return out
    found = out.get(WARNINGS_HEADER)
    existing = list(found) if isinstance(found, list | tuple) else ([] if found is None else [found])
    out[WARNINGS_HEADER] = [*existing, *warnings]
    return out


def _plain(node: Any) -> Any:
    """Return ``node`` with every Decimal that is not money turned into the float a JSON parser gives."""
    if isinstance(node, Decimal):
        return float(node)
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


class TMFTransform(Transform):
    """``kind: tmf``: TMF v4 JSON to canonical (``direction: from``) or canonical to TMF (``to``)."""

    def __init__(
        self, header: Header, direction: str, entity: str, model: ModelRegistry | None = None
    ) -> None:
        super().__init__(header)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        self.direction = direction
        self.entity = entity
        self.spec = entity_spec(entity)  # TMFConversionError for an entity without a TMF mapping
        #: the canonical schemas that a TMF document read is fitted to (when they hold the entity)
        self.model = model if model and self.spec.canonical_schema in model.names() else None

    def parse(self, body: Any) -> Any:
        """Parse JSON bytes or text with exact Decimals; a dict or list is used as it is."""
        if isinstance(body, dict | list):
            return body
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise DecodeError(f"{self.name}: expected a JSON body, got {type(body).__name__}")
        if len(body) > self.header.max_bytes:
            raise BodyTooLargeError(
                f"JSON body of {len(body)} bytes is over the limit of {self.header.max_bytes}"
            )
        try:
            return loads(bytes(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"{self.name}: body is not valid JSON (or not UTF-8): {exc}") from exc

    def convert(self, parsed: Any) -> tuple[Any, list[str]]:
        """Return the converted body and the warnings about what was corrected on the way."""
        try:
            if self.direction == "from":
                doc, warnings = from_tmf(self.entity, parsed, self.model)
                return _plain(doc), [f"{self.name}: {w}" for w in warnings]
            return dumps(to_tmf(self.entity, self._canonical(parsed)), indent=None).encode("utf-8"), []
        except TMFConversionError as exc:
            raise TMFConversionError(f"{self.name}: {exc}") from exc

    def _canonical(self, doc: Any) -> dict[str, Any]:
        if not isinstance(doc, dict):
            kind = type(doc).__name__
            raise TMFConversionError(f"a canonical {self.spec.entity} is a JSON object, got {kind}")
        given = doc.get("@type")
        if given is not None and given not in self.spec.tmf_types:
            raise TMFConversionError(
                f"$.@type: {given!r} is not a canonical {self.spec.entity} "
                f"(expected {', '.join(self.spec.tmf_types)})"
            )
        return doc

    def run(self, body: Any) -> Any:
        """Convert the parsed body (the warnings reach the message only through :meth:`apply`)."""
        return self.convert(body)[0]

    def apply(self, message: Message) -> Message:
        """Return ``message`` converted, its warnings appended to the ``esb-warnings`` header."""
        parsed = self.parse(message.body)
        self.check_accepts(parsed)
        body, warnings = self.convert(parsed)
        schema = self.header.output_schema or (message.schema if self.direction == "from" else None)
        return message.replace(
            body=self.serialise(body),
            headers=with_warnings(message.headers, warnings),
            schema=schema,
            type=self.header.output_type or message.type,
        )
