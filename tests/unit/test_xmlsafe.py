"""Hardened XML parsing: entities, DTDs, network and size are refused; GBK and UTF-8 are read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esb.exceptions import BodyTooLargeError, DecodeError, UnsafeXMLError
from esb.xmlsafe import _GBK_DECL, _may_declare_gbk, parse_xml

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


_DECL_PIECES = [
    b"<?xml", b" ", b"\n", b"version='1.0'", b' version="1.0"', b" encoding=", b"encoding=", b'"', b"'",
    b"gbk", b"GBK", b"gb2312", b"GB2312", b"Gbk", b"gb18030", b"UTF-8", b"?>", b">", b"<a>", b"</a>", b"x",
]  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_DECL_PIECES), max_size=12))
def test_gbk_precheck_says_no_only_where_the_declaration_regex_changes_nothing(pieces: list[bytes]) -> None:
    """The cheap check before the GBK declaration's regex answers False only for bodies the regex leaves
    as they are (the check is an exact shortcut, never a change of what is parsed)."""
    data = b"".join(pieces)
    if not _may_declare_gbk(data):
        assert _GBK_DECL.sub(rb"\1gb18030\3", data, count=1) == data


@pytest.mark.parametrize(
    "declaration",
    [
        b'<?xml version="1.0" encoding="GBK"?>',
        b"<?xml version='1.0' encoding='gb2312'?>",
        b'<?xml version="1.0" encoding="GB2312" standalone="yes"?>',
    ],
)
def test_gbk_precheck_lets_every_gbk_declaration_through(declaration: bytes) -> None:
    """Every declaration the regex rewrites passes the cheap check (the body is decoded as GB18030)."""
    assert _may_declare_gbk(declaration + b"<a/>")
    assert parse_xml(declaration + "<a>号</a>".encode("gb18030")).text == "号"
