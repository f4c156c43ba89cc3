"""XPath over XML bodies: expressions compiled once; simple paths run through lxml's ElementPath.

``Id``, ``@Id``, ``A/B``, ``A/@B`` and the ``field:`` shorthand (element or attribute) compile to direct
``find``/``get`` calls, several times faster than an XPath evaluation; everything else is an
``etree.XPath`` compiled once. With ``tag_escape: siebel`` a ``{Repository Name}`` in an expression is
replaced by its escaped tag at compile time (``{Order Entry - Orders}`` -> ``Order_spcEntry_spc-_spcOrders``),
or by its stripped tag (``OrderEntry-Orders``) for ``style="stripped"``. In a mapping with ``siebel:``,
``{{name}}`` is a component declared in ``config/siebel.yaml`` (``{{io}}`` the integration object): it is
replaced by that component's tag in the integration object the dialect is compiled for.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import TYPE_CHECKING, Any

from lxml import etree

from esb.transforms.siebel import ESCAPED, siebel_tag

if TYPE_CHECKING:  # type aliases only: the mapping engine (rules, functions, code lists) is not needed
    from esb.transforms.rules import Getter, Loc

_NAME = r"[A-Za-z_\u0080-\uffff][\w.\-\u0080-\uffff]*"


@cache
def _simple() -> re.Pattern[str]:
    """``Id``, ``A/B``, ``@Id``, ``A/@B``: compiled on first use, not at import (its Unicode classes take
    ~7 ms to compile, which every cold command reading routes.yaml would pay for a check it never makes)."""
    return re.compile(rf"^(?P<path>{_NAME}(?:/{_NAME})*)?(?:(?:^|/)@(?P<attr>{_NAME}))?$")


_BRACED = re.compile(r"\{([^{}]+)\}")
_COMPONENT = re.compile(r"\{\{([^{}]*)\}\}")


def node_text(item: Any) -> str | None:
    """The text an XPath result item stands for (an element's text, all of it when it has children);
    None when blank."""
    if isinstance(item, str):
        return item or None
    if isinstance(item, etree._Element):
        text = item.text if len(item) == 0 else "".join(item.itertext())
        return text or None
    return str(item) or None


def _normalise(result: Any) -> Any:
    if isinstance(result, list):
        for item in result:
            text = node_text(item)
            if text is not None:
                return text
        return None
    if isinstance(result, bool):
        return result
    if isinstance(result, float):
        if math.isnan(result):
            return None
        return int(result) if result.is_integer() else result
    return result or None


def _element_or_attribute(tag: str) -> Getter:
    # ``next(iterchildren(tag))`` is ``find(tag)`` for a plain name (first child element with that tag, no
    # namespace) without ElementPath's path parsing: about twice as fast, and fields are the hot path.
    def get(node: Any) -> Any:
        value = node.get(tag)
        if value:
            return value
        el = next(node.iterchildren(tag), None)
        return node_text(el) if el is not None else None

    get.field_tag = tag  # type: ignore[attr-defined]  # esb.transforms.plansource writes it out
    return get


def children(node: Any) -> dict[str, Any] | None:
    """The first child element of ``node`` per tag: what ``next(node.iterchildren(tag))`` finds, for
    every tag in one pass (a block with many ``field:`` rules looks each up in it); None when ``node``
    is not an element (an XPath string or number: the getters themselves then say what is wrong)."""
    if not isinstance(node, etree._Element):
        return None
    found: dict[str, Any] = {}
    for child in node:
        tag = child.tag
        if tag.__class__ is str and tag not in found:  # comments and PIs have a function as tag
            found[tag] = child
    return found


def child_steps(path: str) -> Getter:
    """The getter of a ``foreach`` over a path of plain names (``ListOfX/X``): what ``node.findall(path)``
    returns (each step's children of that tag, in document order), without lxml's ElementPath, which
    tokenises and walks the path in Python on every call (its own selectors do ``iterchildren(tag)``)."""
    first, *rest = path.split("/")
    if not rest:
        return lambda node: list(node.iterchildren(first))
    if len(rest) == 1:
        second = rest[0]
        return lambda node: [kid for el in node.iterchildren(first) for kid in el.iterchildren(second)]

    def get(node: Any) -> list[Any]:
        found = list(node.iterchildren(first))
        for tag in rest:
            found = [kid for el in found for kid in el.iterchildren(tag)]
        return found

    return get


class XPathDialect:
    """Compiles XPath 1.0 expressions for the rule compiler."""

    def __init__(
        self,
        namespaces: dict[str, str] | None = None,
        tag_escape: str | None = None,
        *,
        style: str = ESCAPED,
        names: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.namespaces = namespaces or {}
        self.tag_escape = tag_escape
        self.style = style
        self.names = names  # ``{{name}}`` -> repository name, for a mapping with ``siebel:``
        self.owner = owner  # the logical object the names belong to, for messages

    def expand(self, expr: str) -> str:
        """Replace ``{{component}}`` and ``{Repository Name}`` by Siebel tags (``tag_escape: siebel``)."""
        if self.tag_escape != "siebel":
            return expr
        expr = _COMPONENT.sub(lambda m: siebel_tag(self._component(m.group(1).strip()), self.style), expr)
        return _BRACED.sub(lambda m: siebel_tag(m.group(1), self.style), expr)

    def _component(self, name: str) -> str:
        if self.names is None:
            raise ValueError(
                f"{{{{{name}}}}} names a component of a Siebel integration object: "
                "declare the mapping's object with siebel: (see config/siebel.yaml)"
            )
        if name not in self.names:
            known = ", ".join(f"{{{{{n}}}}}" for n in self.names)
            raise ValueError(
                f"unknown component {{{{{name}}}}}: {self.owner or 'the object'} declares {known}"
            )
        return self.names[name]

    def field(self, name: str) -> str:
        """``field: Order Number`` -> ``Order_spcNumber|@Order_spcNumber`` (attribute first if both)."""
        tag = siebel_tag(name, self.style) if self.tag_escape == "siebel" else name
        return f"{tag}|@{tag}"

    def xpath(self, expr: str) -> etree.XPath:
        """Compile ``expr``; ValueError for bad syntax."""
        try:
            return etree.XPath(self.expand(expr), namespaces=self.namespaces, smart_strings=False)
        except etree.XPathSyntaxError as exc:
            raise ValueError(str(exc)) from None

    def scalar(self, expr: str, *, all_values: bool = False) -> Getter:
        """Return a getter for one value (first non-empty match) or, with ``all_values``, every value."""
        expanded = self.expand(expr)
        fast = None if all_values else self._fast(expanded)
        if fast is not None:
            return fast
        xp = self.xpath(expr)
        if all_values:

            def get_all(node: Any) -> Any:
                result = xp(node)
                if isinstance(result, list):
                    values = [t for t in (node_text(i) for i in result) if t is not None]
                else:
                    values = [_normalise(result)]
                return values or None

            return get_all
        return lambda node: _normalise(xp(node))

    def _fast(self, expr: str) -> Getter | None:
        if "|" in expr:
            parts = [p.strip() for p in expr.split("|")]
            if (
                len(parts) == 2
                and parts[1] == f"@{parts[0]}"
                and re.fullmatch(_NAME, parts[0])
                and not self.namespaces
            ):
                return _element_or_attribute(parts[0])
            return None
        m = _simple().match(expr)
        if not m or self.namespaces or not expr:
            return None
        path, attr = m["path"], m["attr"]
        if path and "/" not in path and not attr:
            return lambda node: None if (el := next(node.iterchildren(path), None)) is None else node_text(el)
        if attr and path:
            return lambda node: (el.get(attr) or None) if (el := node.find(path)) is not None else None
        if attr:
            return lambda node: node.get(attr) or None
        return lambda node: node_text(el) if (el := node.find(path)) is not None else None

    def many(self, expr: str) -> Getter:
        """Return a getter for the element list of a ``foreach``."""
        expanded = self.expand(expr)
        m = _simple().match(expanded)
        if m and m["path"] and not m["attr"] and not self.namespaces:
            return child_steps(m["path"])
        xp = self.xpath(expr)

        def get(node: Any) -> list[Any]:
            result = xp(node)
            if not isinstance(result, list):
                raise ValueError(f"foreach needs a node-set, got {type(result).__name__}")
            return result

        return get

    def locate(self, node: Any, loc: Loc, expr: str) -> str:
        """Return the absolute path of ``node`` (``/SiebelMessage/.../Item[2]``) plus ``expr``."""
        try:
            base = node.getroottree().getpath(node)
        except (AttributeError, TypeError):
            base = "?"
        return f"{base}/{self.expand(expr)}"
