"""Steps that change the shape of the flow: choice, split, enrich."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from esb.exceptions import MappingError, RemoteError
from esb.expressions import Expression, message_view
from esb.message import Message

Processor = Callable[[Message], list[Message]]


class ContentRouter:
    """``choice``: the first branch whose expression is truthy runs its steps.

    With no match and no ``otherwise``, the message goes on unchanged (Camel's content-based router).
    """

    def __init__(self, branches: list[tuple[Expression | None, Processor]]) -> None:
        self.branches = branches

    def __call__(self, message: Message) -> list[Message]:
        """Run the matching branch."""
        for expression, steps in self.branches:
            if expression is None or expression.truthy(message):
                return steps(message)
        return [message]


class Splitter:
    """``split``: one message per element of the list the expression yields.

    Parts get deterministic ids (``<parent id>:<index>``) so a redelivered parent makes the same parts and
    idempotent receivers recognise them. A missing or empty list yields no parts (filtered).
    """

    def __init__(self, expression: Expression, keep: Expression | None) -> None:
        self.expression = expression
        self.keep = keep

    def __call__(self, message: Message) -> list[Message]:
        """Return the parts."""
        items = self.expression.evaluate(message)
        if items is None:
            return []
        if not isinstance(items, list):
            raise MappingError("split", self.expression.text, self.expression.text, "did not yield a list")
        total = len(items)
        parts = []
        for index, item in enumerate(items):
            body = item
            if self.keep is not None:
                body = self.keep.search({"item": item, "parent": message_view(message)})
            headers = {"split-index": index, "split-size": total}
            part = message.derive(body, suffix=str(index))
            part.headers.update(headers)
            parts.append(part)
        return parts


def set_path(body: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``body[a][b][c] = value`` for ``dotted`` = ``a.b.c``, creating dicts on the way."""
    node = body
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


class Enricher:
    """``enrich``: call an endpoint with a request built from the message; merge the reply into the body."""

    def __init__(
        self,
        requester_factory: Callable[[], Any],
        request: Any | None,
        response: Any | None,
        into: str,
        timeout: float,
        faults: frozenset[str] = frozenset(),
    ) -> None:
        self.requester_factory = requester_factory
        self.request = request
        self.response = response
        self.into = into
        self.timeout = timeout
        self.faults = faults
        self._requester: Any = None

    def __call__(self, message: Message) -> list[Message]:
        """Return the message with the reply merged in at ``into``."""
        if self._requester is None:
            requester = self.requester_factory()
            requester.connect()
            self._requester = requester
        if not isinstance(message.body, dict):
            raise MappingError("enrich", self.into, self.into, "the body must be a JSON object to enrich")
        outgoing = self.request.apply(message) if self.request is not None else message
        try:
            reply = self._requester.request(outgoing, self.timeout)
        except RemoteError as exc:
            if exc.code is None or exc.code not in self.faults:
                raise
            merged: Any = {"fault": {"code": exc.code, "message": str(exc)}}  # the route handles it
        else:
            merged = (self.response.apply(reply) if self.response is not None else reply).body
        body = dict(message.body)
        set_path(body, self.into, merged)
        return [message.replace(body=body)]

    def close(self) -> None:
        """Close the requester, if one was opened."""
        if self._requester is not None:
            self._requester.close()
            self._requester = None
