"""The simple steps: transform, validate, filter, set_header, log."""

from __future__ import annotations

from typing import Any

from esb.codec import json_body
from esb.expressions import Expression
from esb.logging import get_logger
from esb.message import Message


class TransformStep:
    """Apply one compiled mapping from transforms/."""

    def __init__(self, transform: Any) -> None:
        self.transform = transform

    def __call__(self, message: Message) -> list[Message]:
        """Return the mapped message."""
        return [self.transform.apply(message)]


class SchemaValidator:
    """Validate the body against a canonical schema; a violation raises SchemaValidationError (permanent)."""

    def __init__(self, schema_name: str, validator: Any) -> None:
        self.schema_name = schema_name
        self.validator = validator

    def __call__(self, message: Message) -> list[Message]:
        """Return the message (its body parsed if it came as JSON bytes), marked with its schema, if valid."""
        body = json_body(message.body, f"validate {self.schema_name}")
        self.validator.validate(body)
        if body is message.body and message.schema == self.schema_name:
            return [message]  # already parsed and marked (after a transform to this schema): no copy
        return [message.replace(body=body, schema=self.schema_name)]


class MessageFilter:
    """Keep the message when the expression is truthy; drop it (``filtered``) otherwise."""

    def __init__(self, expression: Expression) -> None:
        self.expression = expression

    def __call__(self, message: Message) -> list[Message]:
        """Return the message or nothing."""
        return [message] if self.expression.truthy(message) else []


class HeaderSetter:
    """Set headers from literals or JMESPath expressions."""

    def __init__(self, literals: dict[str, Any], expressions: dict[str, Expression]) -> None:
        self.literals = literals
        self.expressions = expressions

    def __call__(self, message: Message) -> list[Message]:
        """Return the message with the headers set."""
        headers = dict(message.headers)
        headers.update(self.literals)
        for name, expression in self.expressions.items():
            headers[name] = expression.evaluate(message)
        return [message.replace(headers=headers)]


class LogWriter:
    """Write a log line about the message (never its body)."""

    def __init__(self, route_id: str, text: str, level: str, fields: dict[str, Expression]) -> None:
        self.text = text
        self.level = level
        self.fields = fields
        self.log = get_logger("route").bind(route=route_id)

    def __call__(self, message: Message) -> list[Message]:
        """Log, and pass the message on unchanged."""
        values = {name: expr.evaluate(message) for name, expr in self.fields.items()}
        getattr(self.log, self.level)(self.text, **message.log_context(), **values)
        return [message]
