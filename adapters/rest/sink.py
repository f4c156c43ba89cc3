"""Writing to a REST endpoint: calling a peer's API, or changing the state of a resource the hub serves.

Client endpoint (``base_url``): ``write`` sends the message body to ``{base_url}/{resource}`` with the
endpoint's ``method``; ``request`` does the same and returns the peer's JSON answer as the reply
(enrich steps, request-reply routes).

Served endpoint (``listen``): a route that ``to:``s it (or a process's ``send`` step) carries a state
change of a resource the hub created, ``{"id": ..., "state": ...}`` (TMF attribute names, plus any other
top-level attributes to update). The resource store is updated and, when the state changed, a
``<Class>StateChangeEvent`` (``ProductOrderStateChangeEvent``, ``CancelProductOrderStateChangeEvent``)
is queued for every registered listener (posted by the listener's postman, ``notify.py``). An endpoint
serving several resources is told which by the change's ``@type``. An unknown resource or a state TMF
does not define for it is a MessageError: the message is dead-lettered.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.rest.client import RESTClient
from adapters.rest.config import RESTEndpoint
from adapters.rest.events import STATE_CHANGE, make_event
from adapters.rest.resources import class_name
from adapters.rest.store import ResourceStore, store_path
from esb.context import AdapterContext
from esb.exceptions import DecodeError, MessageError
from esb.message import Message

#: TMF622 ProductOrderStateType.
ORDER_STATES = frozenset({
    "acknowledged", "rejected", "pending", "held", "inProgress", "cancelled", "completed", "failed",
    "partial", "assessingCancellation", "pendingCancellation",
})  # fmt: skip
#: TMF622 TaskStateType of a CancelProductOrder (the API's spelling; the SID schema's is "accepted").
TASK_STATES = frozenset({"acknowledged", "rejected", "inProgress", "done", "terminatedWithError"})
#: The states each served resource may take.
STATES = {"productOrder": ORDER_STATES, "cancelProductOrder": TASK_STATES}
#: Attributes a state change may not set (the hub's own).
PROTECTED = frozenset({"href", "@type"})


def body_dict(message: Message) -> dict[str, Any]:
    """The message body as a JSON object; DecodeError when it is not one."""
    body = message.body
    if isinstance(body, bytes | str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"the state change is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise DecodeError("a state change is a JSON object with id and state")
    return body


class RESTSink:
    """Calls a peer's API (``base_url``) or updates the hub's own resources (``listen``)."""

    def __init__(self, endpoint: RESTEndpoint, context: AdapterContext) -> None:
        self.endpoint = endpoint
        self.context = context
        self.client: RESTClient | None = None
        self.store: ResourceStore | None = None

    def connect(self) -> None:
        """Build the HTTP session (client) or open the resource store (served endpoint)."""
        if self.endpoint.listen is not None:
            self.store = ResourceStore(store_path(self.context)).open()
        else:
            self.client = RESTClient(self.endpoint, self.context)
            self.client.connect()

    @property
    def url(self) -> str:
        """Where writes go (client)."""
        assert self.endpoint.base_url is not None
        return f"{self.endpoint.base_url.rstrip('/')}/{self.endpoint.resource}"

    def request(self, message: Message, timeout: float) -> Message:
        """Send ``message`` to the peer; the reply's body is its JSON answer (None when it sent none)."""
        if self.client is None:
            raise MessageError(f"{self.context.endpoint} is served by the hub: it answers no requests")
        _, data = self.client.call(self.endpoint.method, self.url, message.body_bytes(), timeout)
        try:
            body = orjson.loads(data) if data.strip() else None
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"the peer's answer is not JSON: {exc}") from None
        return message.derive(body, suffix="rest-reply", source=self.context.system)

    def write(self, message: Message) -> None:
        """Deliver ``message``: the peer answered 2xx, or the state change is stored and announced."""
        if self.client is not None:
            self.client.call(self.endpoint.method, self.url, message.body_bytes())
            return
        self.change_state(message)

    def change_state(self, message: Message) -> bool:
        """Apply a state change to a served resource; True when the state changed (an event is queued)."""
        assert self.store is not None, "connect() first"
        doc = body_dict(message)
        kind = self.kind_of(doc)
        ident, state = doc.get("id"), doc.get("state")
        if not isinstance(ident, str) or not ident:
            raise MessageError("a state change needs the resource's id")
        if state is not None and state not in STATES[kind]:
            raise MessageError(
                f"state {state!r} is not a TMF622 {class_name(kind)} state "
                f"({', '.join(sorted(STATES[kind]))})"
            )
        changes = {k: v for k, v in doc.items() if k not in PROTECTED and k != "id"}
        result = self.store.change(kind, ident, changes)
        if result is None:
            raise MessageError(f"no {kind} {ident!r} was created through {self.context.endpoint}")
        before, after = result
        if before.get("state") == after.get("state"):
            return False
        event = make_event(kind, STATE_CHANGE, after, message.correlation_id)
        self.store.enqueue(event, ident, message.correlation_id)
        return True

    def kind_of(self, doc: dict[str, Any]) -> str:
        """The served resource a state change is for: the endpoint's only one, else the one its
        ``@type`` names (MessageError when it names none of them)."""
        listen = self.endpoint.listen
        assert listen is not None
        kinds = list(dict.fromkeys(listen.resources))
        if len(kinds) == 1:
            return kinds[0]
        named = doc.get("@type")
        for kind in kinds:
            if class_name(kind) == named:
                return kind
        names = ", ".join(class_name(k) for k in kinds)
        raise MessageError(
            f"{self.context.endpoint} serves {names}: give the state change's @type as one of them, "
            f"not {named!r}"
        )

    def close(self) -> None:
        """Close the session or the store. Safe to call twice."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> RESTSink:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
