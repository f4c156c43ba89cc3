"""Expressions in routes: JMESPath over the message, compiled once at load.

A route's ``when``, ``filter``, ``split``, ``key`` and header expressions see the message as::

    {"body": ..., "headers": {...}, "type": ..., "source": ..., "schema": ...,
     "id": ..., "correlation_id": ...}

so ``body.channel == 'online'`` or ``headers.priority`` read naturally. The body is visible once it is
structured (after the first transform); raw bytes show as null. Expressions are compiled to closures
(:mod:`esb.jmescompile`) that give what ``jmespath.search`` gives.
"""

from __future__ import annotations

from typing import Any

import jmespath
import jmespath.exceptions
from jmespath import functions as jp_functions

from esb.exceptions import ConfigError, MappingError
from esb.jmescompile import Evaluator, compile_ast
from esb.message import Message

_extra_functions: list[type[jp_functions.Functions]] = []


def register_functions(functions_class: type[jp_functions.Functions]) -> None:
    """Make a ``jmespath.functions.Functions`` subclass's functions available to route expressions."""
    if functions_class not in _extra_functions:
        _extra_functions.append(functions_class)


def _options() -> jmespath.Options:
    if not _extra_functions:
        return jmespath.Options()
    combined = type("RouteFunctions", tuple(reversed(_extra_functions)), {})
    return jmespath.Options(custom_functions=combined())


def message_view(message: Message) -> dict[str, Any]:
    """Return the dict that route expressions are evaluated against."""
    body = message.body
    return {
        "body": None if isinstance(body, bytes | bytearray) else body,
        "headers": message.headers,
        "type": message.type,
        "source": message.source,
        "schema": message.schema,
        "id": message.id,
        "correlation_id": message.correlation_id,
        "attempt": message.attempt,
    }


class Expression:
    """One compiled JMESPath expression with the text it came from (for error messages)."""

    __slots__ = ("_evaluate", "text", "where")

    def __init__(self, text: str, where: str = "") -> None:
        self.text = text
        self.where = where
        try:
            parsed = jmespath.compile(text)
        except jmespath.exceptions.ParseError as exc:
            raise ConfigError(f"{where}: invalid JMESPath expression {text!r}: {exc}") from exc
        self._evaluate: Evaluator = compile_ast(parsed.parsed, _options())

    def search(self, data: Any) -> Any:
        """Evaluate against ``data``; a runtime failure is a MappingError naming the expression."""
        try:
            return self._evaluate(data)
        except jmespath.exceptions.JMESPathError as exc:
            raise MappingError(self.where or "expression", self.text, self.text, str(exc)) from exc

    def evaluate(self, message: Message) -> Any:
        """Evaluate against ``message`` (see :func:`message_view`)."""
        return self.search(message_view(message))

    def truthy(self, message: Message) -> bool:
        """Evaluate and apply JMESPath truthiness (empty list/dict/string, false and null are false)."""
        return is_truthy(self.evaluate(message))


def is_truthy(value: Any) -> bool:
    """JMESPath truthiness: empty list/dict/string, false and null are false; 0 is true."""
    if value is None or value is False:
        return False
    return not isinstance(value, str | list | dict) or bool(value)


def validate_expression(text: str) -> str | None:
    """Return None when ``text`` is valid JMESPath, else the parser's message (for ``esb lint``)."""
    try:
        parsed = jmespath.compile(text).parsed
    except jmespath.exceptions.ParseError as exc:
        return str(exc).replace("\n", " ")
    return _negated_chain(parsed)


def _negated_chain(node: Any) -> str | None:
    """Why ``!a.b`` is a mistake, if ``node`` holds one: ``!`` binds tighter than ``.``, so it negates ``a``
    and ``.b`` of a boolean is always null (the expression never holds)."""
    if not isinstance(node, dict):
        return None
    children = node.get("children") or []
    if node.get("type") in ("subexpression", "index_expression", "projection") and children:
        first = children[0]
        if isinstance(first, dict) and first.get("type") == "not_expression":
            return "'!' binds tighter than '.': '!a.b' negates a and is always null; write !(a.b)"
    for child in children:
        found = _negated_chain(child)
        if found:
            return found
    return None
