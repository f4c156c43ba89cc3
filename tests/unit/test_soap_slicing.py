"""The unwrapped request element cut from the request's bytes (adapters/soap/slicing.py): wherever it is
cut, it parses to what ``etree.tostring`` of the element gives (canonical XML), namespaces declared on
the envelope included; where it cannot be cut exactly, nothing is cut (the listener serialises)."""

from __future__ import annotations

import pytest
from lxml import etree

from adapters.soap.envelope import split
from adapters.soap.slicing import sliced_element
from esb.xmlsafe import parse_xml
from simulators.soap_scenarios import soap11
from tests.contract.harness_soap import envelope as contract_envelope
from tests.integration.soap_project import siebel_account

S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"
OP = "http://esb.telecom.example/crm/v1"
ACCOUNT = siebel_account("1-A")


def _env(body: str, *, env_attrs: str = "", header: str = "", ns: str = S11, decl: str = "") -> bytes:
    head = f"<e:Header>{header}</e:Header>" if header else ""
    return (
        f'{decl}<e:Envelope xmlns:e="{ns}"{env_attrs}>{head}<e:Body>{body}</e:Body></e:Envelope>'
    ).encode()


#: (id, request, whether the element can be cut exactly)
REQUESTS = [
    ("bench", _env(ACCOUNT), True),
    ("contract-harness", contract_envelope("m-1", "1-B"), True),
    ("simulator", soap11(ACCOUNT, "urn:uuid:6a1f"), True),
    ("soap12", _env(ACCOUNT, ns=S12), True),
    (
        "zeep-like: declaration, prefixes on the envelope",
        _env(
            "<ns0:SubmitBillingAccount><ns1:SiebelMessage MessageId='x'><a>1</a></ns1:SiebelMessage>"
            "</ns0:SubmitBillingAccount>",
            env_attrs=f' xmlns:ns0="{OP}" xmlns:ns1="urn:siebel"',
            decl="<?xml version='1.0' encoding='utf-8'?>\n",
        ),
        True,
    ),
    (
        "default namespace on the envelope",
        _env("<Op><Item a='1'>&amp;&lt;中文&#x4E2D;</Item></Op>", env_attrs=' xmlns="urn:d"'),
        True,
    ),
    (
        "default namespace undeclared",
        _env("<Op><Item xmlns=''>x</Item></Op>", env_attrs=' xmlns="urn:d"'),
        True,
    ),
    ("empty element", _env(f"<o:Op xmlns:o='{OP}'><o:Item/></o:Op>"), True),
    ("empty element, end tag", _env(f"<o:Op xmlns:o='{OP}'><o:Item a='&gt;'></o:Item></o:Op>"), True),
    (
        "whitespace and CRLF",
        _env(f"<o:Op xmlns:o='{OP}'>\r\n  <o:Item\r\n   a='1' >x</o:Item>\r\n</o:Op>\n"),
        True,
    ),
    ("header before the body", _env(ACCOUNT, header="<h:A xmlns:h='urn:h'><h:B/><h:C>1</h:C></h:A>"), True),
    ("a '>' in an attribute", _env(f"<o:Op xmlns:o='{OP}' x='a>b'><o:Item y='>'>1</o:Item></o:Op>"), True),
    ("comment", _env(f"<o:Op xmlns:o='{OP}'><!-- c --><o:Item>1</o:Item></o:Op>"), False),
    ("CDATA", _env(f"<o:Op xmlns:o='{OP}'><o:Item><![CDATA[<x>]]></o:Item></o:Op>"), False),
    ("processing instruction", _env(f"<o:Op xmlns:o='{OP}'><o:Item><?pi x?></o:Item></o:Op>"), False),
    ("text after the element", _env(f"<o:Op xmlns:o='{OP}'><o:Item>1</o:Item>tail</o:Op>"), False),
    (
        "a prefix declared again on the element",
        _env(f"<o:Op xmlns:o='{OP}'><o:Item xmlns:o='{OP}'>1</o:Item></o:Op>"),
        False,
    ),
    ("an end tag with a space", _env(f"<o:Op xmlns:o='{OP}'><o:Item>1</o:Item ></o:Op>"), False),
    (
        "another encoding",
        _env(
            f"<o:Op xmlns:o='{OP}'><o:Item>1</o:Item></o:Op>",
            decl="<?xml version='1.0' encoding='ISO-8859-1'?>",
        ),
        False,
    ),
    (
        "an element after the body",
        _env(ACCOUNT)[: -len("</e:Envelope>")] + b"<e:Trailer/></e:Envelope>",
        False,
    ),
    (
        "a namespace URI with an ampersand",
        _env(f"<o:Op xmlns:o='{OP}'><o:Item>1</o:Item></o:Op>", env_attrs=" xmlns:q='urn:a&amp;b'"),
        False,
    ),
]


def _canonical(data: bytes) -> bytes:
    return bytes(etree.tostring(etree.fromstring(data), method="c14n"))


@pytest.mark.parametrize(("text", "cuttable"), [pytest.param(r, c, id=i) for i, r, c in REQUESTS])
def test_the_cut_element_is_the_serialised_one(text: bytes, cuttable: bool) -> None:
    """The unwrapped element and the operation element, cut, parse as their tostring does; or are not cut."""
    root = parse_xml(text)
    _, _, payload = split(root)
    children = [c for c in payload if isinstance(c.tag, str)]
    for element in (children[0], payload):
        found = sliced_element(text, root, element)
        if element is children[0]:
            assert (found is not None) == cuttable
        if found is not None:
            assert found in text or b"xmlns" in found  # the caller's bytes, namespaces added
            assert _canonical(found) == _canonical(etree.tostring(element, encoding="UTF-8"))


def test_the_cut_keeps_the_callers_bytes() -> None:
    """What is cut is the request's own text: character references and attribute quotes as sent."""
    text = _env(f"<o:Op xmlns:o='{OP}'><o:Item a='1'>&#x4E2D;</o:Item></o:Op>")
    root = parse_xml(text)
    element = split(root)[2][0]
    assert sliced_element(text, root, element) == (
        f'<o:Item xmlns:o="{OP}" xmlns:e="{S11}" a=\'1\'>&#x4E2D;</o:Item>'.encode()
    )
