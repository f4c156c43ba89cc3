"""The Transform: one compiled mapping, applied to a message's body.

Input bodies are bytes (parsed per the declared ``input``: hardened XML or JSON), an lxml element, or an
already-parsed dict/list. Output bodies are dicts/lists for ``output: json`` and bytes (in the declared
encoding) for ``output: xml``. Every failure is a MessageError: DecodeError for bodies that do not parse,
UnknownMessageTypeError for documents the mapping does not accept, MappingError for a failing rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from esb.codec import json_body
from esb.exceptions import BodyTooLargeError, DecodeError, MappingError, UnknownMessageTypeError
from esb.message import Message
from esb.xmlsafe import DEFAULT_MAX_BYTES, parse_xml, take_parsed

_DECL_ENCODING = re.compile(r"^(\s*<\?xml[^>]*encoding=[\"'])[^\"']*([\"'])")


@dataclass
class Header:
    """What every mapping file declares besides its rules."""

    name: str
    file: str
    kind: str
    input: str
    output: str
    output_schema: str | None = None
    output_type: str | None = None
    output_encoding: str = "UTF-8"
    max_bytes: int = DEFAULT_MAX_BYTES
    description: str = ""
    accepts_root: str | None = None
    accepts_test: Callable[[Any], Any] | None = None
    accepts_text: str = ""
    #: the canonical schema the input follows (JSON input; lint checks source paths against it)
    input_schema: str | None = None
    #: source fields the mapping leaves out on purpose, each with its reason ("" when none is given)
    ignore: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Transform:
    """A compiled mapping. Subclasses implement :meth:`run` (parsed input -> output body)."""

    def __init__(self, header: Header) -> None:
        self.header = header
        self.name = header.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.header.input} -> {self.header.output})>"

    def run(self, body: Any) -> Any:
        """Map the parsed input ``body`` to the output body (before serialisation)."""
        raise NotImplementedError

    def apply(self, message: Message) -> Message:
        """Return ``message`` with the mapped body, and the declared schema and type."""
        body = self.transform_body(message.body)
        return message.replace(
            body=body,
            schema=self.header.output_schema or message.schema,
            type=self.header.output_type or message.type,
        )

    def transform_body(self, body: Any) -> Any:
        """Parse, check, map and serialise one body."""
        parsed = self.parse(body)
        self.check_accepts(parsed)
        return self.serialise(self.run(parsed))

    def parse(self, body: Any) -> Any:
        """Return ``body`` parsed according to the declared input."""
        if self.header.input == "xml":
            return self._parse_xml(body)
        if isinstance(body, bytes | bytearray | memoryview) and len(body) > self.header.max_bytes:
            raise BodyTooLargeError(
                f"JSON body of {len(body)} bytes is over the limit of {self.header.max_bytes}"
            )
        return json_body(body, self.name)

    def _parse_xml(self, body: Any) -> Any:
        if isinstance(body, etree._Element):
            return body
        if isinstance(body, etree._ElementTree):
            return body.getroot()
        if isinstance(body, str):  # text already decoded: say so in the declaration
            body = _DECL_ENCODING.sub(r"\1UTF-8\2", body, count=1).encode("utf-8")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise DecodeError(f"{self.name}: expected an XML body, got {type(body).__name__}")
        if isinstance(body, bytes):  # parsed already for the raw business keys: that tree, once
            shared = take_parsed(body, max_bytes=self.header.max_bytes)
            if shared is not None:
                return shared
        return parse_xml(bytes(body), max_bytes=self.header.max_bytes)

    def check_accepts(self, parsed: Any) -> None:
        """Raise UnknownMessageTypeError when the document is not what this mapping accepts."""
        header = self.header
        if header.accepts_root is not None:
            is_xml = isinstance(parsed, etree._Element)
            tag = etree.QName(parsed).localname if is_xml else type(parsed).__name__
            if tag != header.accepts_root:
                raise UnknownMessageTypeError(
                    f"{self.name} accepts <{header.accepts_root}> documents, got <{tag}>"
                )
        if header.accepts_test is not None and not header.accepts_test(parsed):
            raise UnknownMessageTypeError(
                f"{self.name} accepts only {header.accepts_text}; {self._describe(parsed)}"
            )

    def _describe(self, parsed: Any) -> str:
        if isinstance(parsed, etree._Element):
            attrs = " ".join(f'{k}="{v}"' for k, v in list(parsed.attrib.items())[:4])
            return f"got <{etree.QName(parsed).localname} {attrs}>"
        if isinstance(parsed, dict):
            return f"got an object with keys {', '.join(list(parsed)[:8])}"
        return f"got a {type(parsed).__name__}"

    def serialise(self, result: Any) -> Any:
        """Return the output body: JSON stays a dict/list, XML becomes bytes in the declared encoding."""
        if self.header.output == "xml":
            if isinstance(result, bytes):
                return result
            if isinstance(result, etree._XSLTResultTree | etree._ElementTree):
                result = result.getroot()
            if not isinstance(result, etree._Element):
                raise MappingError(self.name, "(output)", "", "the mapping produced no XML document")
            return etree.tostring(result, xml_declaration=True, encoding=self.header.output_encoding)
        return result
