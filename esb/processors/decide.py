"""``decide``: look the message up in a decision table and write the decision into its body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from esb.exceptions import DecisionError, MappingError
from esb.expressions import Expression, message_view
from esb.message import Message
from esb.processors.routing import set_path


class DecisionTable(Protocol):
    """What the step needs of a table (:class:`esb.decision.Table`; processors do not import config)."""

    name: str
    hit_policy: str

    def decide(self, data: Mapping[str, Any]) -> Any:
        """The decision for ``data``: an object with ``value`` (and ``rules``)."""


class Decider:
    """Read the table's inputs from the message, decide, and set ``into`` in the body to the decision.

    ``inputs`` is one expression giving the object of inputs, or one expression per input name. When
    no rule matches, a ``required`` decision is a DecisionError (the message is dead-lettered, the
    inputs named); otherwise ``into`` is set to null.
    """

    def __init__(
        self,
        table: DecisionTable,
        inputs: Expression | Mapping[str, Expression],
        into: str,
        *,
        required: bool = True,
    ) -> None:
        self.table = table
        self.inputs = inputs
        self.into = into
        self.required = required

    def read(self, message: Message) -> Any:
        """The table's inputs, read from ``message``."""
        view = message_view(message)
        if isinstance(self.inputs, Mapping):
            return {name: expr.search(view) for name, expr in self.inputs.items()}
        return self.inputs.search(view)

    def __call__(self, message: Message) -> list[Message]:
        """Return the message with the decision at ``into``."""
        if not isinstance(message.body, dict):
            raise MappingError("decide", self.into, self.into, "the body must be a JSON object to decide on")
        inputs = self.read(message)
        decision = self.table.decide(inputs)
        if decision.value is None and self.required:
            raise DecisionError(
                self.table.name,
                f"no rule matches {inputs!r} (hit policy {self.table.hit_policy}): add a rule, a catch-all "
                "rule of '-' cells, or set required: false",
            )
        body = dict(message.body)
        set_path(body, self.into, decision.value)
        return [message.replace(body=body)]
