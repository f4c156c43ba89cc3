"""Checks of a SOAP request beyond its body: the SOAPAction it announces and its mandatory header blocks.

SOAPAction: SOAP 1.1 sends it as the ``SOAPAction`` HTTP header (usually quoted), SOAP 1.2 as the
``action`` parameter of the Content-Type. Per endpoint (``listen.soap_action``): ``strict`` (it must
equal the operation's declared soapAction), ``lenient`` (a missing or empty one passes, a different one
does not), ``ignore``. An operation whose WSDL declares no soapAction (or an empty one) accepts any.

mustUnderstand: a header block targeted at the listener (SOAP 1.1: no ``actor`` or the ``next`` actor;
SOAP 1.2: no ``role``, ``next`` or ``ultimateReceiver``) with ``mustUnderstand`` set is refused with a
``MustUnderstand`` fault unless it is one the listener processes: ``wsse:Security`` holding only a
UsernameToken and/or a wsu:Timestamp, and ``wsa:MessageID``.
"""

from __future__ import annotations

from email.message import Message as HeaderParser
from typing import Any

from lxml import etree

from adapters.soap.envelope import NAMESPACES, WSA, SOAPFault
from adapters.soap.security import WSSE, WSU

_US_11 = {None, "http://schemas.xmlsoap.org/soap/actor/next"}
_US_12 = {
    None,
    "http://www.w3.org/2003/05/soap-envelope/role/next",
    "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver",
}
_SECURITY_PARTS = {f"{{{WSSE}}}UsernameToken", f"{{{WSU}}}Timestamp"}


def requested_action(environ: dict[str, Any], version: str) -> str | None:
    """Return the action the request announces (unquoted), or None when it announces none."""
    if version == "1.1":
        raw = environ.get("HTTP_SOAPACTION")
        if raw is None:
            return None
        return str(raw).strip().strip('"').strip()
    parser = HeaderParser()
    parser["content-type"] = environ.get("CONTENT_TYPE") or ""
    found = parser.get_param("action", header="content-type")
    return str(found).strip() if isinstance(found, str) else None


def check_action(given: str | None, declared: set[str], mode: str, operation: str) -> None:
    """Raise a WrongSOAPAction fault when ``given`` does not match the operation's ``declared`` actions."""
    if mode == "ignore" or not declared:
        return
    if not given:
        if mode == "lenient":
            return
        raise SOAPFault("WrongSOAPAction", f"no SOAPAction given: {operation} expects {_shown(declared)}")
    if given not in declared:
        raise SOAPFault(
            "WrongSOAPAction", f"SOAPAction {given!r} is not {operation}'s: it expects {_shown(declared)}"
        )


def _shown(declared: set[str]) -> str:
    return " or ".join(repr(a) for a in sorted(declared))


def _understood(block: etree._Element) -> bool:
    if block.tag == f"{{{WSA}}}MessageID":
        return True
    if block.tag == f"{{{WSSE}}}Security":
        return all(part.tag in _SECURITY_PARTS for part in block if isinstance(part.tag, str))
    return False


def not_understood(header: etree._Element | None, version: str) -> list[str]:
    """Return the qualified names (``{ns}local``) of mandatory header blocks for us that we do not process."""
    if header is None:
        return []
    ns = NAMESPACES[version]
    out = []
    for block in header:
        if not isinstance(block.tag, str):
            continue
        flag = (block.get(f"{{{ns}}}mustUnderstand") or "").strip()
        if version == "1.1":
            mandatory, for_us = flag in ("1", "true"), block.get(f"{{{ns}}}actor") in _US_11
        else:
            mandatory, for_us = flag in ("1", "true"), block.get(f"{{{ns}}}role") in _US_12
        if mandatory and for_us and not _understood(block):
            out.append(str(block.tag))
    return out


def check_must_understand(header: etree._Element | None, version: str) -> None:
    """Raise a MustUnderstand fault naming the mandatory header blocks the listener does not process."""
    missing = not_understood(header, version)
    if missing:
        names = ", ".join(etree.QName(q).localname for q in missing)
        raise SOAPFault(
            "MustUnderstand",
            f"header block(s) marked mustUnderstand are not understood here: {names}",
            not_understood=missing,
        )
