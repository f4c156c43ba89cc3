"""A small SOAP 1.1/1.2 service for the simulated systems: their own lxml code, not the hub's listener.

Each simulated system (Billing, RIM, OSS) subclasses :class:`SimulatedSOAPService`, names its types and
fault namespaces and maps request elements to handlers. Tests of the hub's SOAP client so meet an
independent implementation. A handler takes the request element's children as a dict (a leaf is its
text, an element with children a nested dict) and returns the response element's children in the order
the contract's sequence lists them. A :class:`ServiceFault` becomes a SOAP Fault whose detail carries
the system's error code (``<errorCode>``) and text, as the real systems' faults do.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from lxml import etree

from esb.exceptions import EsbError
from esb.xmlsafe import parse_xml

ENVELOPES = {
    "1.1": "http://schemas.xmlsoap.org/soap/envelope/",
    "1.2": "http://www.w3.org/2003/05/soap-envelope",
}

#: What a handler gets and gives: element local name -> text, nested dict, or list of either.
Fields = dict[str, Any]
Handler = Callable[[Fields], Mapping[str, Any]]


class ServiceFault(Exception):  # noqa: N818 - named as the contracts name their faults
    """A business fault of a simulated system (its code goes into the Fault's detail)."""

    def __init__(self, code: str, text: str, *, server: bool = False) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.server = server


class SimulatedSOAPService:
    """A simulated system's web service as a WSGI application; ``serve()`` runs it on loopback.

    Subclasses set ``TYPES`` (namespace of request and response elements), ``FAULTS`` and
    ``FAULT_ELEMENT`` (the fault detail), ``NAME`` (thread and server names), ``PATH`` (the service
    path in the URL ``serve`` returns), ``BAD_REQUEST`` and ``UNAUTHORISED`` (the codes of a malformed
    or unknown request and of refused credentials) and implement :meth:`operations`. Credentials are
    HTTP basic or a WS-Security UsernameToken.
    """

    TYPES: ClassVar[str] = ""
    FAULTS: ClassVar[str] = ""
    FAULT_ELEMENT: ClassVar[str] = "Fault"
    NAME: ClassVar[str] = "sim"
    PATH: ClassVar[str] = "/services"
    BAD_REQUEST: ClassVar[str] = "0400"
    UNAUTHORISED: ClassVar[str] = "0401"
    BUSY: ClassVar[str] = "0503"

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.calls: list[tuple[str, Fields]] = []
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.nonces: Any = None  # WS-Security nonces seen (made at the first digest token)
        self._lock = threading.RLock()
        self.latency = 0.0
        """Seconds every answer waits (an injected slowness)."""
        self._busy = 0

    def operations(self) -> dict[str, tuple[str, Handler]]:
        """Request element local name -> (response element local name, handler)."""
        raise NotImplementedError

    def busy_next(self, count: int = 1) -> None:
        """Answer the next ``count`` calls with the transient fault ``BUSY`` (system busy)."""
        with self._lock:
            self._busy += count

    def before_call(self, name: str, fields: Fields) -> None:
        """Run before every handler: wait ``latency`` seconds, then refuse with ``BUSY`` while calls are
        queued as busy. Subclasses add their own injected faults and call this first."""
        if self.latency > 0:
            time.sleep(self.latency)
        with self._lock:
            busy, self._busy = self._busy > 0, max(self._busy - 1, 0)
        if busy:
            raise ServiceFault(self.BUSY, "system busy, try again later", server=True)

    # -- HTTP ---------------------------------------------------------------------------------------
    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry point."""
        version = "1.2" if "soap+xml" in (environ.get("CONTENT_TYPE") or "") else "1.1"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            root = parse_xml(environ["wsgi.input"].read(length))
            version = "1.2" if root.tag.startswith(f"{{{ENVELOPES['1.2']}}}") else "1.1"
            ns = ENVELOPES[version]
            if not self._authorised(environ, root.find(f"{{{ns}}}Header")):
                raise ServiceFault(self.UNAUTHORISED, "authentication failed")
            request = next(c for c in root.find(f"{{{ns}}}Body") if isinstance(c.tag, str))
            name = etree.QName(request).localname
            fields = element_fields(request)
            self.calls.append((name, fields))
            self.before_call(name, fields)
            if name not in self.operations():
                raise ServiceFault(self.BAD_REQUEST, f"unknown operation {name}")
            out_name, handler = self.operations()[name]
            body, status = self._response(version, out_name, handler(fields)), "200 OK"
        except ServiceFault as fault:
            body, status = self._fault(version, fault), "500 Internal Server Error"
        except (EsbError, StopIteration, AttributeError, KeyError, ValueError, ArithmeticError) as exc:
            bad = ServiceFault(self.BAD_REQUEST, f"bad request: {type(exc).__name__}: {exc}")
            body, status = self._fault(version, bad), "500 Internal Server Error"
        ctype = "application/soap+xml; charset=utf-8" if version == "1.2" else "text/xml; charset=utf-8"
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def _authorised(self, environ: dict[str, Any], header: etree._Element | None) -> bool:
        basic = environ.get("HTTP_AUTHORIZATION", "")
        if basic.lower().startswith("basic "):
            given = base64.b64decode(basic[6:]).decode("utf-8", "replace")
            return hmac.compare_digest(given.encode(), f"{self.username}:{self.password}".encode())
        if header is not None:
            from adapters.soap.nonces import MemoryNonceStore
            from adapters.soap.security import check_wsse

            if self.nonces is None:
                self.nonces = MemoryNonceStore()
            return check_wsse(header, {self.username: self.password}, self.nonces) == self.username
        return False

    def _response(self, version: str, name: str, values: Mapping[str, Any]) -> bytes:
        env, body = _envelope(version)
        out = etree.SubElement(body, f"{{{self.TYPES}}}{name}", nsmap={"t": self.TYPES})
        _append(out, self.TYPES, values)
        return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))

    def _fault(self, version: str, fault: ServiceFault) -> bytes:
        ns = ENVELOPES[version]
        env, body = _envelope(version)
        node = etree.SubElement(body, f"{{{ns}}}Fault")
        if version == "1.1":
            etree.SubElement(node, "faultcode").text = "soap:" + ("Server" if fault.server else "Client")
            etree.SubElement(node, "faultstring").text = fault.text
            detail = etree.SubElement(node, "detail")
        else:
            code = etree.SubElement(etree.SubElement(node, f"{{{ns}}}Code"), f"{{{ns}}}Value")
            code.text = "soap:" + ("Receiver" if fault.server else "Sender")
            etree.SubElement(etree.SubElement(node, f"{{{ns}}}Reason"), f"{{{ns}}}Text").text = fault.text
            detail = etree.SubElement(node, f"{{{ns}}}Detail")
        error = etree.SubElement(detail, f"{{{self.FAULTS}}}{self.FAULT_ELEMENT}", nsmap={"f": self.FAULTS})
        etree.SubElement(error, f"{{{self.FAULTS}}}errorCode").text = fault.code
        etree.SubElement(error, f"{{{self.FAULTS}}}errorMessage").text = fault.text
        return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))

    # -- lifecycle ----------------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host``:``port`` in a background thread; return the service URL."""
        from esb.wsgi import create_server

        self.server = create_server(self.app, host, port, threads=4, ident=self.NAME)
        self.thread = threading.Thread(target=self.server.run, name=self.NAME, daemon=True)
        self.thread.start()
        return f"http://{host}:{self.server.effective_port}{self.PATH}"

    def stop(self) -> None:
        """Stop serving."""
        server, self.server = self.server, None
        if server is None:
            return
        from esb.wsgi import stop_server

        stop_server(server, self.thread)


def element_fields(element: etree._Element) -> Fields:
    """Return an element's children by local name: a leaf as its stripped text, a parent as a dict."""
    fields: Fields = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        has_children = any(isinstance(c.tag, str) for c in child)
        fields[etree.QName(child).localname] = (
            element_fields(child) if has_children else (child.text or "").strip()
        )
    return fields


def required(fields: Fields, name: str, code: str) -> str:
    """Return the text field ``name`` or raise a ServiceFault ``code`` saying it was expected."""
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise ServiceFault(code, f"bad request: {name} is required (got {value!r})")
    return value


def now_iso() -> str:
    """The current UTC time in ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _envelope(version: str) -> tuple[etree._Element, etree._Element]:
    ns = ENVELOPES[version]
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    return env, etree.SubElement(env, f"{{{ns}}}Body")


def _append(parent: etree._Element, ns: str, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            child = etree.SubElement(parent, f"{{{ns}}}{key}")
            if isinstance(item, Mapping):
                _append(child, ns, item)
            else:
                child.text = str(item)
