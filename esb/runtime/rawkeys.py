"""Business keys read from a message as it arrived, before any step (``raw_business_keys`` in routes.yaml).

They are evaluated when the worker takes a delivery, before the journal records its ingress, so a message
whose first mapping fails is indexed by its order number all the same (``esb trace SO2026...``). XML bodies
are parsed through :mod:`esb.xmlsafe` (no DTD, no entities), JSON bodies through :mod:`esb.codec`. A key
that cannot be read is logged as a warning and left out: it never fails the message, whose own steps
report what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from esb.codec import json_body
from esb.config.routes import RawKey, Route
from esb.exceptions import EsbError
from esb.expressions import Expression, message_view
from esb.logging import get_logger
from esb.message import Message
from esb.transforms.xpathdialect import XPathDialect
from esb.xmlsafe import DEFAULT_MAX_BYTES, parse_xml, share_parsed


def _xml_root(message: Message, max_bytes: int) -> Any:
    body = message.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes | bytearray):
        raise EsbError(f"an xpath key needs an XML body, got {type(body).__name__}")
    return parse_xml(bytes(body), max_bytes=max_bytes)


def _offer(message: Message, root: Any) -> None:
    """Hand the tree the keys were read from to the message's first mapping (esb.xmlsafe.take_parsed)."""
    if type(message.body) is bytes:  # the very object the mapping will parse
        share_parsed(message.body, root)


def _missing(getters: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """The ``getters`` whose key the message does not carry yet (``getters`` itself when it carries none
    of them, the common case: no dict built per message)."""
    if keys.keys().isdisjoint(getters):
        return getters
    return {name: getter for name, getter in getters.items() if name not in keys}


def _scalar(value: Any) -> str | None:
    """The key's text (stripped), or None for nothing, an empty value or a structure."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text or None


class RawKeys:
    """A route's raw business keys, compiled once; calling it adds the keys a message yields."""

    def __init__(self, route_id: str, keys: dict[str, RawKey], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.route_id = route_id
        self.max_bytes = max_bytes
        self.log = get_logger("rawkeys")  # per instance, like every logger here: it follows the configuration
        self.xpaths: dict[str, Callable[[Any], Any]] = {}
        self.jmespaths: dict[str, Expression] = {}
        for name, key in keys.items():
            where = f"route {route_id}: raw_business_keys.{name}"
            if key.xpath is not None:
                self.xpaths[name] = XPathDialect(key.namespaces, key.tag_escape).scalar(key.xpath)
            elif key.jmespath is not None:
                self.jmespaths[name] = Expression(key.jmespath, where)

    @classmethod
    def for_route(cls, route: Route, max_bytes: int = DEFAULT_MAX_BYTES) -> RawKeys:
        """Return the raw keys ``route`` declares."""
        return cls(route.id, dict(route.raw_business_keys), max_bytes)

    def __bool__(self) -> bool:
        return bool(self.xpaths or self.jmespaths)

    def __call__(self, message: Message) -> list[str]:
        """Add to ``message.business_keys`` every declared key it yields and does not carry yet.

        Returns the warnings (also logged): one per group of keys that could not be read, with why.
        """
        warnings: list[str] = []
        keys = message.business_keys
        if self.xpaths and (xpaths := _missing(self.xpaths, keys)):
            warnings += self._read(message, xpaths, lambda: _xml_root(message, self.max_bytes), _offer)
        if self.jmespaths and (jmespaths := _missing(self.jmespaths, keys)):
            warnings += self._read(message, jmespaths, lambda: self._json_view(message))
        for warning in warnings:
            self.log.warning(
                "raw business key not read", route=self.route_id, message_id=message.id,
                correlation_id=message.correlation_id, why=warning,
            )  # fmt: skip
        return warnings

    def _json_view(self, message: Message) -> dict[str, Any]:
        view = message_view(message)
        view["body"] = json_body(message.body, f"route {self.route_id}: raw_business_keys")
        return view

    def _read(
        self,
        message: Message,
        getters: dict[str, Any],
        document: Callable[[], Any],
        done: Callable[[Message, Any], None] | None = None,
    ) -> list[str]:
        try:
            data = document()
        except EsbError as exc:
            return [f"{', '.join(getters)}: {exc}"]
        try:
            return self._values(message, getters, data)
        finally:
            if done is not None:  # the document read: handed on (XML: to the first mapping)
                done(message, data)

    def _values(self, message: Message, getters: dict[str, Any], data: Any) -> list[str]:
        """Set the keys ``getters`` read from ``data``; return a warning for each that failed."""
        warnings = []
        for name, getter in getters.items():
            try:
                value = getter.search(data) if isinstance(getter, Expression) else getter(data)
            except Exception as exc:  # a key never fails the message: whatever went wrong is a warning
                warnings.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            text = _scalar(value)
            if text is not None:
                message.business_keys[name] = text
        return warnings
