"""One served WSDL at one URL path: authenticate, parse safely, dispatch, validate, hand over, answer.

Order of the checks, cheapest first: the client's lockout (``audit.py``), HTTP basic credentials
(before the body is read), the declared Content-Length, a capped read of the body, hardened parsing (no
DTD, no entities, no network), the SOAP envelope, WS-Security credentials, mandatory header blocks
(mustUnderstand), the operation, its SOAPAction (``checks.py``), the caller's right to it, the schema.
Then the request goes to the route as a Delivery and the server thread waits for the route's answer.
Every refusal of the caller's doing is logged and counted (``audit.py``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from prometheus_client import CollectorRegistry

from adapters.http.audit import Audit, reason_of
from adapters.http.credentials import basic_user, check_basic
from adapters.http.exchange import Exchange, Inbox
from adapters.http.inline import Arrivals, settle_inline
from adapters.http.options import ThrottleOptions
from adapters.soap.checks import check_action, check_must_understand, requested_action
from adapters.soap.config import ListenOptions, SOAPEndpoint
from adapters.soap.envelope import (
    SOAPFault,
    addressing_message_id,
    fault_bytes,
    reply_bytes,
    split,
    version_from_content_type,
)
from adapters.soap.nonces import MemoryNonceStore, NonceStore
from adapters.soap.publish import Publisher
from adapters.soap.schema import RequestValidator
from adapters.soap.security import WSSERefused, verify_wsse
from adapters.soap.wsdl import Contract, OperationInfo
from esb.exceptions import BodyTooLargeError, DecodeError, UnsafeXMLError
from esb.message import Message, new_id
from esb.telemetry import wsgi_trace_headers
from esb.typing import InlineRoute
from esb.xmlsafe import parse_xml

#: (HTTP status, SOAP version, body, extra HTTP headers)
Answer = tuple[int, str, bytes, list[tuple[str, str]]]


@dataclass
class Binding:
    """An operation served for one endpoint: its options, users and the inbox its route reads."""

    endpoint_name: str
    endpoint: SOAPEndpoint
    info: OperationInfo
    users: dict[str, str]
    inbox: Inbox
    nonces: Callable[[], NonceStore] = MemoryNonceStore
    """Makes the store of used WS-Security nonces (the engine's one-time key ledger in the hub)."""
    metrics: Any = None
    """The registry the listener's counters go to (the engine's shared one; a private one if None)."""
    inline: InlineRoute | None = None
    """The route the server threads run themselves (``listen.inline``); None: hand requests over."""

    @property
    def options(self) -> ListenOptions:
        """The endpoint's listen options."""
        assert self.endpoint.listen is not None
        return self.endpoint.listen

    def adopt_inline(self, route: InlineRoute) -> None:
        """Run ``route`` on the server threads from now on (the one already run stays if it is the same
        route of the same project: the route's other workers offer it too); a replaced one is closed."""
        current = self.inline
        if current is not None and current.same(route):
            return
        self.inline = route
        if current is not None:
            current.close()

    def stop_inline(self) -> None:
        """Hand requests over again (the route's last reader left): close the route run inline, if any."""
        current, self.inline = self.inline, None
        if current is not None:
            current.close()


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """Read the request body, never more than ``limit`` + 1 bytes (the declared length is checked first)."""
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise SOAPFault("BadRequest", "invalid Content-Length") from None
    if declared > limit:
        raise SOAPFault("TooLarge", f"request of {declared} bytes is over the limit of {limit}", status=413)
    stream = environ["wsgi.input"]
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise SOAPFault("TooLarge", f"request is over the limit of {limit} bytes", status=413)
    return b"".join(chunks)


class SOAPService:
    """The operations of one contract served at one path of a listener."""

    def __init__(self, path: str, contract: Contract, nonces: NonceStore, metrics: Any = None) -> None:
        self.path = path
        self.contract = contract
        self.bindings: dict[str, Binding] = {}
        self.by_element: dict[str, OperationInfo] = {}
        for info in contract.operations:
            if info.input_element:
                self.by_element.setdefault(info.input_element, info)
        self.publisher = Publisher(contract.path, contract.files)
        self.nonces = nonces
        self.audit = Audit(path, metrics if metrics is not None else CollectorRegistry())
        self._derived: dict[Any, Any] = {}
        self._validator: RequestValidator | None = None
        self._validator_lock = threading.Lock()
        self.arrivals = Arrivals()

    @property
    def validator(self) -> RequestValidator:
        """The contract's request validator, compiled once (the listener asks for it when a binding that
        validates attaches, so that the compile happens at connect and not in a server thread), and
        checked to declare every operation's request element."""
        with self._validator_lock:
            if self._validator is None:
                elements = {element: info.name for element, info in self.by_element.items()}
                self._validator = RequestValidator(self.contract.files, self.contract.root, elements)
            return self._validator

    def bind(self, binding: Binding) -> None:
        """Serve ``binding``'s operation at this path (replacing the binding that served it)."""
        self.bindings[binding.info.name] = binding
        self._derived.clear()

    def unbind(self, operation: str) -> None:
        """Stop serving ``operation`` at this path."""
        self.bindings.pop(operation, None)
        self._derived.clear()

    def _cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """A value derived from the bindings (or the contract), computed once until the bindings change:
        the checks of every request read them."""
        found = self._derived.get(key)
        if found is None:
            found = self._derived[key] = compute()
        return found

    def users(self) -> dict[str, str]:
        """Every account allowed on some operation of this path."""
        return self._cached("users", self._users)  # type: ignore[no-any-return]

    def _users(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for binding in self.bindings.values():
            out.update(binding.users)
        return out

    def modes(self) -> set[str]:
        """Every credential kind accepted on some operation of this path."""
        return self._cached(  # type: ignore[no-any-return]
            "modes", lambda: {m for b in self.bindings.values() for m in b.options.auth.modes}
        )

    def max_bytes(self) -> int:
        """The request size limit of this path (the largest of its operations')."""
        return self._cached(  # type: ignore[no-any-return]
            "max_bytes",
            lambda: max((b.options.max_request_bytes for b in self.bindings.values()), default=1024 * 1024),
        )

    def throttle_options(self) -> ThrottleOptions:
        """The throttle of this path: the strictest of its endpoints' (fewest failures, longest lockout)."""
        return self._cached("throttle", self._throttle_options)  # type: ignore[no-any-return]

    def _throttle_options(self) -> ThrottleOptions:
        found = [b.options.throttle for b in self.bindings.values() if b.options.throttle.max_failures]
        if not found:
            return ThrottleOptions(max_failures=0)
        return ThrottleOptions(
            max_failures=min(t.max_failures for t in found),
            window=max(t.window for t in found),
            lockout=max(t.lockout for t in found),
        )

    def public_url(self) -> str | None:
        """The configured public URL of this path (the first endpoint's that sets one), or None."""
        return next((b.options.public_url for b in self.bindings.values() if b.options.public_url), None)

    def declared_actions(self, info: OperationInfo, version: str) -> set[str]:
        """The soapActions the WSDL declares for ``info``'s request element in ``version`` (empty: any)."""
        return self._cached(  # type: ignore[no-any-return]
            ("actions", info.input_element, version), lambda: self._declared_actions(info, version)
        )

    def _declared_actions(self, info: OperationInfo, version: str) -> set[str]:
        same = [o for o in self.contract.operations if o.input_element == info.input_element]
        of_version = [o for o in same if o.soap_version == version] or same
        if any(not o.soap_action for o in of_version):
            return set()
        return {str(o.soap_action) for o in of_version}

    # -- requests -----------------------------------------------------------------------------------
    def handle(self, environ: dict[str, Any]) -> Answer:
        """Answer one POSTed SOAP request: (HTTP status, SOAP version, body, extra headers)."""
        state: dict[str, Any] = {"version": version_from_content_type(environ.get("CONTENT_TYPE"))}
        self.arrivals.enter()  # a leader of an inline route lets it join before running its batch
        state["arriving"] = True
        try:
            return self._handle(environ, state)
        except SOAPFault as fault:
            if fault.sender:
                self.refused(
                    environ,
                    fault.reason or reason_of(fault.code),
                    fault.user or state.get("user"),
                    fault.text,
                )
            headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
            return fault.status, state["version"], fault_bytes(state["version"], fault), headers
        finally:
            if state["arriving"]:
                self.arrivals.leave()

    def refused(self, environ: dict[str, Any], reason: str, user: str | None, detail: str) -> None:
        """Log and count a refused request (and its failed login towards the client's lockout)."""
        client = str(environ.get("REMOTE_ADDR") or "unknown")
        self.audit.refused(reason, client, user, detail, self.throttle_options())

    def check_lockout(self, environ: dict[str, Any]) -> None:
        """Raise a LockedOut fault (HTTP 429, Retry-After) while the client's address is locked out."""
        remaining = self.audit.throttle.locked(str(environ.get("REMOTE_ADDR") or "unknown"))
        if remaining is not None:
            raise SOAPFault(
                "LockedOut",
                "too many failed authentications from this address: try again later",
                status=429,
                retry_after=max(1, math.ceil(remaining)),
            )

    def authenticate_basic(self, environ: dict[str, Any]) -> str | None:
        """Return the user HTTP basic credentials prove; None without any; a 401 fault if they fail."""
        header = environ.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        user = check_basic(header, self.users()) if "basic" in self.modes() else None
        if user is None:
            raise SOAPFault(
                "Unauthenticated",
                "authentication failed",
                status=401,
                reason="bad_credentials",
                user=basic_user(header),
            )
        return user

    def _authenticate_wsse(self, header: etree._Element | None) -> str | None:
        if "wsse" not in self.modes():
            return None
        try:
            return verify_wsse(header, self.users(), self.nonces)
        except WSSERefused as refused:
            text = (
                "authentication failed: the hub cannot check the token's nonce now, send again later"
                if refused.reason == "nonce_store_unavailable"
                else "authentication failed"
            )
            raise SOAPFault(
                "Unauthenticated", text, status=401, reason=refused.reason, user=refused.user
            ) from None

    def _parse(self, environ: dict[str, Any], limit: int) -> etree._Element:
        data = read_body(environ, limit)
        try:
            return parse_xml(data, max_bytes=limit)
        except UnsafeXMLError as exc:
            raise SOAPFault("UnsafeXML", f"refused: {exc}") from None
        except BodyTooLargeError as exc:
            raise SOAPFault("TooLarge", str(exc), status=413) from None
        except DecodeError as exc:
            raise SOAPFault("MalformedXML", str(exc)) from None

    def _handle(self, environ: dict[str, Any], state: dict[str, Any]) -> Answer:
        self.check_lockout(environ)
        user = self.authenticate_basic(environ)
        mode = "basic"
        root = self._parse(environ, self.max_bytes())
        state["version"], header, payload = split(root)
        if user is None:
            user, mode = self._authenticate_wsse(header), "wsse"
        if user is None:
            raise SOAPFault(
                "Unauthenticated",
                "authentication required: HTTP basic or a WS-Security UsernameToken",
                status=401,
                reason="missing_credentials",
            )
        state["user"] = user
        check_must_understand(header, state["version"])
        info = self.by_element.get(str(payload.tag))
        if info is None:
            raise SOAPFault("UnknownOperation", f"no operation of this service takes <{payload.tag}>")
        binding = self.bindings.get(info.name)
        if binding is None:
            raise SOAPFault("Unavailable", f"operation {info.name} is not served right now", sender=False)
        check_action(
            requested_action(environ, state["version"]),
            self.declared_actions(info, state["version"]),
            binding.options.soap_action,
            info.name,
        )
        if user not in binding.users or mode not in binding.options.auth.modes:
            raise SOAPFault(
                "Unauthenticated", f"not allowed to call {info.name}", status=401, reason="not_allowed"
            )
        if binding.options.validate_requests:
            errors = self.validator.errors(payload)
            if errors:
                raise SOAPFault(
                    "SchemaViolation", f"the request does not match the schema of {info.name}", errors=errors
                )
        message = self._message(binding, payload, header, user, state["version"])
        message.headers.update(wsgi_trace_headers(environ))
        return self._exchange(binding, message, state)

    def _message(
        self,
        binding: Binding,
        payload: etree._Element,
        header: etree._Element | None,
        user: str,
        version: str,
    ) -> Message:
        """The message for the route: the operation element (or its only child, ``unwrap``)."""
        element = payload
        if binding.options.unwrap:
            children = [c for c in payload if isinstance(c.tag, str)]
            if len(children) != 1:
                raise SOAPFault("BadPayload", f"{binding.info.name} expects exactly one element inside")
            element = children[0]
        headers = {"soap-operation": binding.info.name, "soap-user": user, "soap-version": version}
        return Message(
            body=etree.tostring(element, encoding="UTF-8"),
            id=addressing_message_id(header) or new_id(),
            source=binding.endpoint_name.split(".")[0],
            type=binding.endpoint.message_type,
            headers=headers,
        )

    def _exchange(self, binding: Binding, message: Message, state: dict[str, Any]) -> Answer:
        version = state["version"]
        exchange = Exchange(message, one_way=binding.info.one_way)
        timeout, inline = binding.options.reply_timeout, binding.inline
        if inline is not None:  # this thread, or the one leading now, runs the route
            state["arriving"] = False  # it leaves the arrivals once queued
            settled = settle_inline(binding.inbox, inline, exchange, timeout, self.arrivals)
        else:
            settled = exchange.wait(timeout) if binding.inbox.put(exchange, timeout=1.0) else None
        if settled is None:
            raise SOAPFault(
                "Busy", "the hub is too busy: send again later", sender=False, message_id=message.id
            )
        if not settled:
            raise SOAPFault(
                "Timeout",
                f"no answer within {binding.options.reply_timeout:g}s",
                sender=False,
                message_id=message.id,
            )
        if exchange.reply is not None:
            return 200, version, reply_bytes(version, self._reply_element(binding.info, exchange.reply)), []
        if exchange.error is not None:
            raise SOAPFault(
                "NotProcessed",
                "the hub could not take the request: send it again",
                sender=False,
                message_id=message.id,
            )
        if binding.info.one_way:
            return 202, version, b"", []
        raise SOAPFault(
            "NotAnswered",
            "the request was not answered (dead-lettered); the journal has it",
            sender=False,
            message_id=message.id,
        )

    def _reply_element(self, info: OperationInfo, reply: Message) -> etree._Element:
        code = reply.headers.get("soap-fault-code")
        if code:
            raise SOAPFault(
                str(code), str(reply.headers.get("soap-fault-string") or code), message_id=reply.id
            )
        body = reply.body
        assert info.output_element is not None
        if isinstance(body, bytes | str):
            element = parse_xml(body.encode("utf-8") if isinstance(body, str) else body)
            if element.tag != info.output_element:
                raise SOAPFault(
                    "BadReply",
                    f"the route answered <{element.tag}>, not <{info.output_element}>",
                    sender=False,
                )
            return element
        if not isinstance(body, dict):
            raise SOAPFault("NoReply", "the route produced no reply", sender=False, message_id=reply.id)
        try:
            zeep_element = self.contract.element(info.output_element)
            holder = etree.Element("reply")
            zeep_element.render(holder, zeep_element(**body))
        except Exception as exc:
            raise SOAPFault(
                "BadReply",
                f"the route's reply does not fit {info.name}'s output: {exc}",
                sender=False,
                message_id=reply.id,
            ) from None
        return holder[0]
