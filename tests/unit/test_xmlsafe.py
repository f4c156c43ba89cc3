"""Hardened XML parsing: entities, DTDs, network and size are refused; GBK and UTF-8 are read."""

from __future__ import annotations

import pytest

from esb.exceptions import BodyTooLargeError, DecodeError, UnsafeXMLError
from esb.xmlsafe import parse_xml

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd"><r/>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>"""


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(XXE, id="xxe-external-entity"),
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(EXTERNAL_DTD, id="external-dtd"),
        pytest.param(PARAMETER_ENTITY, id="parameter-entity"),
    ],
)
def test_dtds_and_entities_are_refused(document: bytes) -> None:
    """Any DTD or entity declaration is refused with UnsafeXMLError, never expanded."""
    with pytest.raises(UnsafeXMLError):
        parse_xml(document)


def test_undefined_entity_reference_is_a_decode_error() -> None:
    """A reference to an undeclared entity is malformed XML."""
    with pytest.raises(DecodeError):
        parse_xml(b"<r>&foo;</r>")


def test_malformed_xml_is_a_decode_error() -> None:
    """Mismatched tags raise DecodeError with the parser's message."""
    with pytest.raises(DecodeError, match="malformed XML"):
        parse_xml(b"<r><a></r>")


def test_invalid_utf8_is_a_decode_error() -> None:
    """Bytes that are not UTF-8 in a UTF-8 document raise DecodeError."""
    with pytest.raises(DecodeError):
        parse_xml(b"<r>\xff\xfe</r>")


def test_gbk_declared_document_is_decoded() -> None:
    """A GBK-declared document with Chinese text is read (as GB18030, a superset)."""
    root = parse_xml('<?xml version="1.0" encoding="GBK"?><r>张三 深圳市</r>'.encode("gbk"))
    assert root.text == "张三 深圳市"


def test_gb18030_only_character_in_gbk_document() -> None:
    """A character outside GBK but inside GB18030 still decodes when the document says GBK."""
    text = "𠀀"  # CJK Extension B: encodable in GB18030 only
    data = f'<?xml version="1.0" encoding="GBK"?><r>{text}</r>'.encode("gb18030")
    assert parse_xml(data).text == text


def test_body_over_limit_is_refused_before_parsing() -> None:
    """A body larger than max_bytes raises BodyTooLargeError."""
    with pytest.raises(BodyTooLargeError):
        parse_xml(b"<r>" + b"x" * 100 + b"</r>", max_bytes=50)
