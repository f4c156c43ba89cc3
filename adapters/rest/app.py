"""The listener's WSGI application: TMF resources and the event hub under one base path.

Order of the checks, cheapest first: the client's lockout, the credentials (before the body is read),
the path and method, the Content-Type, the declared Content-Length, a capped read, JSON, the schema.
Every refusal is TMF's error JSON; those of the caller's doing are logged and counted (``esb_rest_refused
{path, reason}``, the SOAP listener's audit with ``protocol="rest"``), never with a secret.

``POST {base}/productOrder`` (or ``cancelProductOrder``, each endpoint serving the resources it lists)
stores the resource with its ``ProductOrderCreateEvent`` or ``CancelProductOrderCreateEvent`` held for
the hub's listeners and its row in the durable inbox (one write) and answers 201: the route drains the
inbox (``inbox.py``), releasing the event when it accepts the order. The message's id is the resource's
id: unique on the endpoint (a second POST of it is a 409), and what ``esb trace`` and ``esb replay``
take.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.http.audit import Audit
from adapters.rest import resources
from adapters.rest.auth import authenticate, challenge
from adapters.rest.config import ListenOptions
from adapters.rest.errors import STATUS_TEXT, Refusal
from adapters.rest.events import CREATE, make_event
from adapters.rest.inbox import StoreInbox
from adapters.rest.schema import TMFValidator
from adapters.rest.store import InboxRow, ResourceStore
from esb.telemetry import wsgi_trace_headers

StartResponse = Callable[..., Any]
#: (status, body, extra headers)
Answer = tuple[int, bytes, list[tuple[str, str]]]


@dataclass
class Served:
    """What one served endpoint needs to answer: its options, accounts, store, inbox and audit."""

    endpoint: str
    options: ListenOptions
    users: dict[str, str]
    store: ResourceStore
    audit: Audit
    checkers: dict[str, TMFValidator | None]
    message_type: str | None = None
    base_url: str = ""
    """http(s)://host:port{base}, set once the server is bound (hrefs are made from it)."""
    inbox: StoreInbox = field(init=False)
    """The orders in the store no route accepted yet, drained by the route's readers."""

    def __post_init__(self) -> None:
        self.inbox = StoreInbox(self.store, self.endpoint.split(".", 1)[0], self.message_type)

    def href(self, kind: str, ident: str) -> str:
        """The resource's URL."""
        return f"{self.options.public_url or self.base_url}/{kind}/{ident}"


class RESTApp:
    """Answers the requests of one served endpoint."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.base = served.options.base_path

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI entry point."""
        try:
            status, body, headers = self.answer(environ)
        except Refusal as refusal:
            if refusal.audit is not None:
                self.refused(environ, refusal)
            status, body, headers = refusal.status, refusal.body(), refusal.headers
        start_response(
            f"{status} {STATUS_TEXT.get(status, 'Error')}",
            [
                ("Content-Type", "application/json;charset=utf-8"),
                ("Content-Length", str(len(body))),
                *headers,
            ],
        )
        return [body]

    def refused(self, environ: dict[str, Any], refusal: Refusal) -> None:
        """Log and count one refusal (a failed login counts towards the client's lockout)."""
        client = str(environ.get("REMOTE_ADDR") or "unknown")
        assert refusal.audit is not None
        detail = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}: {refusal.message}"[:300]
        self.served.audit.refused(refusal.audit, client, refusal.user, detail, self.served.options.throttle)

    def answer(self, environ: dict[str, Any]) -> Answer:
        """Check the caller, then dispatch by path and method."""
        options = self.served.options
        remaining = self.served.audit.throttle.locked(str(environ.get("REMOTE_ADDR") or "unknown"))
        if remaining is not None:
            raise Refusal(
                429, "429", "too many failed authentications from this address: try again later",
                audit="locked_out", headers=[("Retry-After", str(max(1, math.ceil(remaining))))],
            )  # fmt: skip
        try:
            user = authenticate(environ, self.served.users, list(options.auth.modes))
        except Refusal as refusal:
            refusal.headers.extend(challenge(list(options.auth.modes)))
            raise
        path = str(environ.get("PATH_INFO") or "/")
        if not path.startswith(self.base + "/"):
            raise Refusal(404, "404", f"no resource at {path[:200]}", audit="unknown_resource")
        parts = path[len(self.base) + 1 :].split("/")
        method = str(environ.get("REQUEST_METHOD") or "GET")
        if parts[0] == "hub":
            return self.hub(environ, method, parts[1:])
        if parts[0] not in options.resources:
            raise Refusal(404, "404", f"no resource {parts[0][:100]!r} here", audit="unknown_resource")
        if len(parts) == 1 and method == "POST":
            return self.create(environ, parts[0], user)
        if len(parts) == 1 and method == "GET":
            return self.search(environ, parts[0])
        if len(parts) == 2 and method == "GET":
            return self.get(parts[0], resources.check_id(parts[1]))
        if len(parts) <= 2:
            raise Refusal(405, "405", f"{method} is not served on {parts[0]}", audit="unknown_resource")
        raise Refusal(404, "404", f"no resource at {path[:200]}", audit="unknown_resource")

    # -- resources ----------------------------------------------------------------------------------
    def _body(self, environ: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        resources.check_content_type(environ.get("CONTENT_TYPE"))
        data = read_body(environ, self.served.options.max_request_bytes)
        return data, resources.parse_document(data)

    def create(self, environ: dict[str, Any], kind: str, user: str) -> Answer:
        """Store a new resource in the durable inbox (one write) and answer 201 with it; the route drains
        the inbox asynchronously."""
        data, doc = self._body(environ)
        resources.check_schema(kind, doc, self.served.checkers.get(kind))
        ident, body = resources.with_id(data, doc)
        resource = resources.created(kind, doc, ident, self.served.href(kind, ident))
        headers = {
            "tmf-resource": kind,
            "tmf-id": ident,
            "rest-user": user,
            "content-type": "application/json",
            **wsgi_trace_headers(environ),
        }
        correlation = ident  # a new message's correlation id is its own id
        event = make_event(kind, CREATE, resource, correlation)
        answer = orjson.dumps(resource)
        inbox = self.served.inbox
        claim, created, wire = inbox.claim_for_new(), time.time(), orjson.dumps(headers).decode()
        if (
            self.served.store.create(kind, ident, answer, event, correlation, body, wire, claim, created)
            is None
        ):
            raise Refusal(409, "409", f"{kind} {ident!r} exists already", audit="conflict")
        if claim is not None:
            inbox.offer(InboxRow(kind, ident, event["eventId"], body, wire, correlation, created, 1))
        return 201, answer, [("Location", resource["href"]), ("X-Message-Id", ident)]

    def get(self, kind: str, ident: str) -> Answer:
        """One resource, as the hub knows it."""
        found = self.served.store.get(kind, ident)
        if found is None:
            raise Refusal(404, "404", f"no {kind} {ident!r}")
        return 200, orjson.dumps(found), []

    def search(self, environ: dict[str, Any], kind: str) -> Answer:
        """Resources matching the attribute filters, projected to ``fields``, one page of them."""
        filters, fields, offset, limit = resources.list_query(str(environ.get("QUERY_STRING") or ""))
        total, page = self.served.store.query(kind, filters, offset, limit)
        body = orjson.dumps([resources.project(doc, fields) for doc in page])
        return 200, body, [("X-Total-Count", str(total)), ("X-Result-Count", str(len(page)))]

    # -- event hub ----------------------------------------------------------------------------------
    def hub(self, environ: dict[str, Any], method: str, rest: list[str]) -> Answer:
        """``POST {base}/hub`` registers a listener; ``DELETE {base}/hub/{id}`` removes it."""
        if not rest and method == "POST":
            callback, query = resources.hub_request(self._body(environ)[1])
            ident = uuid.uuid4().hex
            self.served.store.add_listener(ident, callback, query)
            doc = {"id": ident, "callback": callback, "query": query}
            return 201, orjson.dumps(doc), [("Location", f"{self.served.base_url}/hub/{ident}")]
        if len(rest) == 1 and method == "DELETE":
            if not self.served.store.remove_listener(resources.check_id(rest[0])):
                raise Refusal(404, "404", f"no listener {rest[0][:100]!r}")
            return 204, b"", []
        raise Refusal(405, "405", "POST {base}/hub registers a listener, DELETE {base}/hub/{id} removes it",
                      audit="unknown_resource")  # fmt: skip


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """Read the request body, never more than ``limit`` + 1 bytes (the declared length is checked first)."""
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refusal(400, "400", "invalid Content-Length", audit="malformed") from None
    if declared > limit:
        raise Refusal(413, "413", f"body of {declared} bytes is over the limit of {limit}", audit="oversize")
    data = environ["wsgi.input"].read(min(declared, limit + 1)) if declared else b""
    if len(data) > limit:
        raise Refusal(413, "413", f"body is over the limit of {limit} bytes", audit="oversize")
    return data
