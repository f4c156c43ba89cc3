"""SOAP 1.1 and 1.2 envelopes for the listener: taking requests apart, building replies and faults."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
ESB_FAULT_NS = "urn:esb:soap:fault"
WSA = "http://www.w3.org/2005/08/addressing"
VERSIONS = {SOAP11_ENV: "1.1", SOAP12_ENV: "1.2"}
NAMESPACES = {"1.1": SOAP11_ENV, "1.2": SOAP12_ENV}
CONTENT_TYPES = {"1.1": "text/xml; charset=utf-8", "1.2": "application/soap+xml; charset=utf-8"}


@dataclass
class SOAPFault(Exception):  # noqa: N818 - it is answered to the caller, not only raised
    """A fault the listener answers: ``sender`` faults are the caller's doing, the others the hub's.

    ``code`` is the hub's own code (``SchemaViolation``, ``Unauthenticated``...), put in the detail (and
    as a SOAP 1.2 Subcode); ``status`` is the HTTP status of the answer. ``reason`` is the audit reason
    (default: from the code) and ``user`` the user name the request gave; ``retry_after`` adds a
    ``Retry-After`` header; ``not_understood`` (a ``MustUnderstand`` fault) names the header blocks that
    the fault reports with the SOAP code MustUnderstand (and SOAP 1.2 NotUnderstood header blocks).
    """

    code: str
    text: str
    sender: bool = True
    status: int = 500
    errors: list[str] = field(default_factory=list)
    message_id: str | None = None
    reason: str | None = None
    user: str | None = None
    retry_after: int | None = None
    not_understood: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


def version_from_content_type(content_type: str | None) -> str:
    """Return the SOAP version a Content-Type announces (1.1 unless application/soap+xml)."""
    return "1.2" if content_type and "application/soap+xml" in content_type.lower() else "1.1"


#: The Envelope, Header and Body tags of each SOAP version.
_ENVELOPES = {f"{{{ns}}}Envelope": version for ns, version in VERSIONS.items()}
_PARTS = {version: (f"{{{ns}}}Header", f"{{{ns}}}Body") for version, ns in NAMESPACES.items()}


def split(root: etree._Element) -> tuple[str, etree._Element | None, etree._Element]:
    """Return ``(version, Header or None, the Body's first element)`` of a SOAP envelope.

    The envelope's children are scanned once by tag (the first Header, the first Body), which is what
    ``find`` for each would return at a fifth of its cost on every request.
    """
    version = _ENVELOPES.get(root.tag) if isinstance(root.tag, str) else None
    if version is None:
        raise SOAPFault("NotSOAP", f"not a SOAP 1.1 or 1.2 Envelope: <{root.tag}>")
    header_tag, body_tag = _PARTS[version]
    header = body = None
    for child in root:
        if child.tag == header_tag and header is None:
            header = child
        elif child.tag == body_tag and body is None:
            body = child
    if body is None:
        raise SOAPFault("NotSOAP", "the Envelope has no Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SOAPFault("NotSOAP", f"the Body must hold exactly one element, it holds {len(children)}")
    return version, header, children[0]


def _envelope(version: str) -> tuple[etree._Element, etree._Element]:
    ns = NAMESPACES[version]
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soapenv": ns})
    return env, etree.SubElement(env, f"{{{ns}}}Body")


def reply_bytes(version: str, payload: etree._Element | None) -> bytes:
    """Return a response envelope holding ``payload``."""
    env, body = _envelope(version)
    if payload is not None:
        body.append(payload)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _detail(parent: etree._Element, fault: SOAPFault) -> None:
    error = etree.SubElement(parent, f"{{{ESB_FAULT_NS}}}error", nsmap={"esb": ESB_FAULT_NS})
    etree.SubElement(error, f"{{{ESB_FAULT_NS}}}code").text = fault.code
    if fault.message_id:
        etree.SubElement(error, f"{{{ESB_FAULT_NS}}}messageId").text = fault.message_id
    for text in fault.errors[:20]:
        etree.SubElement(error, f"{{{ESB_FAULT_NS}}}problem").text = text


def _not_understood_headers(env: etree._Element, ns: str, names: list[str]) -> None:
    header = etree.Element(f"{{{ns}}}Header")
    env.insert(0, header)
    for index, name in enumerate(names):
        qname = etree.QName(name)
        prefix = f"nu{index}"
        block = etree.SubElement(header, f"{{{ns}}}NotUnderstood", nsmap={prefix: qname.namespace or ""})
        block.set("qname", f"{prefix}:{qname.localname}" if qname.namespace else qname.localname)


def fault_bytes(version: str, fault: SOAPFault) -> bytes:
    """Return a SOAP 1.1 or 1.2 Fault envelope for ``fault``.

    A fault with ``not_understood`` gets the SOAP code ``MustUnderstand`` (SOAP 1.1: no detail, which the
    spec reserves for body errors; SOAP 1.2: one ``NotUnderstood`` header block per block not understood).
    """
    ns = NAMESPACES[version]
    env, body = _envelope(version)
    node = etree.SubElement(body, f"{{{ns}}}Fault")
    must = bool(fault.not_understood)
    if version == "1.1":
        code_text = "MustUnderstand" if must else ("Client" if fault.sender else "Server")
        etree.SubElement(node, "faultcode").text = f"soapenv:{code_text}"
        etree.SubElement(node, "faultstring").text = fault.text
        if not must:
            _detail(etree.SubElement(node, "detail"), fault)
    else:
        if must:
            _not_understood_headers(env, ns, fault.not_understood)
        code = etree.SubElement(node, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = "soapenv:" + (
            "MustUnderstand" if must else ("Sender" if fault.sender else "Receiver")
        )
        sub = etree.SubElement(code, f"{{{ns}}}Subcode")
        value = etree.SubElement(sub, f"{{{ns}}}Value", nsmap={"esb": ESB_FAULT_NS})
        value.text = f"esb:{fault.code}"
        reason = etree.SubElement(node, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = fault.text
        _detail(etree.SubElement(node, f"{{{ns}}}Detail"), fault)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def addressing_message_id(header: etree._Element | None) -> str | None:
    """Return the WS-Addressing MessageID of the request, if it makes a usable message id."""
    if header is None:
        return None
    text = (header.findtext(f"{{{WSA}}}MessageID") or "").strip()
    if text.startswith("urn:uuid:"):
        text = text[9:]
    if 0 < len(text) <= 100 and all(c.isalnum() or c in "-_.:" for c in text):
        return text
    return None
