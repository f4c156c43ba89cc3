"""Calling a peripheral system's web service with zeep: a sink (``to:``) and a requester (``enrich``).

The message body is the operation's input: a dict of the input element's children (what a JSON
transform produces), or the input element itself as XML bytes. The reply's body is the output element as
a JSON-friendly dict (decimals as strings, times in ISO 8601), ready for a response transform.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.http.tls import check_tls
from adapters.soap.config import SOAPEndpoint
from adapters.soap.errors import SOAPRequestError, translate
from adapters.soap.security import client_session, wsse_token
from adapters.soap.wsdl import Contract, OperationInfo, load_contract, zeep_settings
from esb.context import AdapterContext
from esb.logging import quiet_libraries
from esb.message import Message
from esb.telemetry import TRACEPARENT, TRACESTATE, inject
from esb.xmlsafe import parse_xml


def to_jsonable(value: Any) -> Any:
    """Return zeep's ``value`` with only JSON types: objects become dicts, Decimal and times become text."""
    values = getattr(value, "__values__", None)  # a zeep CompoundValue: read its fields directly
    if isinstance(values, dict):
        return {str(k): to_jsonable(v) for k, v in values.items() if not str(k).startswith("_raw")}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items() if not str(k).startswith("_raw")}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def cache_dir(context: AdapterContext) -> Path:
    """Return where parsed WSDLs are cached across restarts (under the hub's data_dir)."""
    settings = context.settings.resolve_paths(context.project_dir)
    return settings.data_dir / "soap-cache"


def endpoint_contract(endpoint: SOAPEndpoint, context: AdapterContext) -> Contract:
    """Return the endpoint's loaded contract: its WSDL, read under its contract root, cached."""
    return load_contract(
        endpoint.wsdl_path(context.project_dir),
        root=endpoint.contract_root_path(context.project_dir),
        cache_dir=cache_dir(context),
        load_timeout=endpoint.load_timeout,
    )


def trace_context(session_headers: MutableMapping[str, Any]) -> None:
    """Put the current span's W3C trace headers on the zeep session (one per sink, so per thread), and
    take the previous call's off first: no stale ``traceparent`` goes out with a call made outside a span."""
    session_headers.pop(TRACEPARENT, None)
    session_headers.pop(TRACESTATE, None)
    inject(session_headers)


class SOAPSink:
    """Calls one operation; ``write`` for one-way delivery, ``request`` for request-reply (enrich)."""

    def __init__(self, endpoint: SOAPEndpoint, context: AdapterContext) -> None:
        self.endpoint = endpoint
        self.context = context
        self.contract: Contract | None = None
        self.info: OperationInfo | None = None
        self._client: Any = None
        self._call: Any = None
        self.address: str | None = None
        self._password: str | None = None

    def connect(self) -> None:
        """Load the WSDL (cached), check the TLS files, and build the zeep client once."""
        from zeep import Client

        quiet_libraries()  # zeep's DEBUG lines are whole envelopes, credentials included: never those
        ep = self.endpoint
        self.contract = endpoint_contract(ep, self.context)
        self.info = self.contract.operation(ep.service, ep.port, ep.operation)
        self.address = ep.address or self.info.address
        check_tls(ep.tls, self.address, self.context.project_dir, self.context.endpoint)
        self._password = ep.auth.password(self.context.project_dir) if ep.auth is not None else None
        transport = client_session(ep, self.context.project_dir, self._password)
        client = Client(self.contract.document, transport=transport, settings=zeep_settings())  # type: ignore[no-untyped-call]
        service_name, port = self.contract.port(ep.service, ep.port)
        if ep.address:
            proxy = client.create_service(port.binding.name, ep.address)  # type: ignore[no-untyped-call]
        else:
            proxy = client.bind(service_name, port.name)
        self._client = client
        self._call = getattr(proxy, ep.operation)

    def _arguments(self, message: Message) -> dict[str, Any]:
        body = message.body
        if isinstance(body, dict):
            return body
        if body is None:
            return {}
        if isinstance(body, bytes | str):
            from zeep.helpers import serialize_object

            assert self.contract is not None
            assert self.info is not None
            assert self.info.input_element
            root = parse_xml(body.encode("utf-8") if isinstance(body, str) else body)
            element = self.contract.element(self.info.input_element)
            if root.tag != self.info.input_element:
                raise SOAPRequestError(
                    f"the body is <{root.tag}>, the operation takes <{self.info.input_element}>"
                )
            parsed = serialize_object(element.parse(root, self.contract.document.types), dict)  # type: ignore[no-untyped-call]
            return dict(parsed) if isinstance(parsed, dict) else {}
        raise SOAPRequestError(f"a SOAP request body is a dict or XML bytes, not {type(body).__name__}")

    def request(self, message: Message, timeout: float) -> Message:
        """Call the operation with ``message``; return the reply (body: the output as a dict)."""
        assert self._call is not None, "connect() first"
        ep = self.endpoint
        arguments = self._arguments(message)
        transport = self._client.transport
        transport.operation_timeout = (ep.connect_timeout, timeout)
        if ep.auth is not None and ep.auth.mode != "basic" and self._password is not None:
            self._client.wsse = wsse_token(ep.auth, self._password)
        trace_context(transport.session.headers)
        try:
            result = self._call(**arguments)
        except Exception as exc:
            raise translate(exc, address=self.address, retryable_faults=ep.retryable_faults) from exc
        body = to_jsonable(result)
        reply = message.derive(body, suffix=f"soap-{ep.operation}", source=self.context.system)
        reply.headers["soap-operation"] = ep.operation
        return reply

    def write(self, message: Message) -> None:
        """Deliver ``message``: returns once the service answered (or raises RemoteError/TransportError)."""
        self.request(message, self.endpoint.timeout)

    def close(self) -> None:
        """Close the HTTP session. Safe to call twice."""
        if self._client is not None:
            session = getattr(self._client.transport, "session", None)
            if session is not None:
                session.close()
        self._client = None
        self._call = None

    def __enter__(self) -> SOAPSink:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
