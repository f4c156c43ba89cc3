"""The XML nodes an XPath source selects in a sample document, and the fields a sample holds (for lint).

Names are compared the way the dialect resolves them: ``{Order Entry - Orders}`` and ``field: Order Number``
are expanded with the Siebel escapes before evaluation, and ``field:`` finds a child element or an
attribute. A field is keyed by the local names from below the root (``ListOfX/X/Order_spcNumber``), an
attribute and a child element of the same name being the same field; it is shown with Siebel's names
unescaped when the mapping says ``tag_escape: siebel``.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from esb.transforms.siebel import siebel_unescape
from esb.transforms.xpathdialect import XPathDialect

Field = tuple[str, ...]

_STRINGS = re.compile(r"'[^']*'|\"[^\"]*\"")
_STEP = r"(?:@?[A-Za-z_\u0080-\uffff][\w.\-\u0080-\uffff]*(?::[A-Za-z_][\w.\-]*)?|\*|\.\.?)"
_PATHS = re.compile(rf"(?<![\w.\-$@/])(?:{_STEP})(?:/{_STEP})*(?![\w.\-:\u0080-\uffff]|\s*\()")
_KEYWORDS = {"and", "or", "div", "mod"}


def _local(node: Any) -> str:
    return str(etree.QName(node).localname)


def field_of(element: Any, attr: str | None = None) -> Field:
    """Return the field key of ``element`` (or of its attribute ``attr``): local names below the root."""
    names: list[str] = [] if attr is None else [str(etree.QName(attr).localname)]
    node = element
    while node is not None and node.getparent() is not None:
        names.append(_local(node))
        node = node.getparent()
    return tuple(reversed(names))


def _has_text(element: Any) -> bool:
    """A leaf element is a field when it holds text (an empty one carries nothing to lose)."""
    return bool((element.text or "").strip()) and not any(isinstance(k.tag, str) for k in element)


def _leaves(element: Any) -> set[Field]:
    """The fields at and under ``element`` (an element with children stands for all of them)."""
    kids = [k for k in element if isinstance(k.tag, str)]
    if not kids:
        return {field_of(element)}
    return {f for kid in kids for f in _leaves(kid)}


def sample_fields(root: Any) -> set[Field]:
    """Every field of a sample: every attribute (the root's too) and every element without children."""
    out: set[Field] = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        out.update(field_of(element, a) for a in element.attrib)
        if element is not root and _has_text(element):
            out.add(field_of(element))
    return out


def _nodes(result: Any) -> set[Field] | None:
    """The fields a node-set result covers; None when the result is not a node-set."""
    if not isinstance(result, list):
        return None
    out: set[Field] = set()
    for item in result:
        if isinstance(item, etree._Element) and isinstance(item.tag, str):
            out |= _leaves(item)
        elif getattr(item, "is_attribute", False) and item.getparent() is not None:
            out.add(field_of(item.getparent(), item.attrname))
        elif getattr(item, "getparent", None) is not None and item.getparent() is not None:
            out |= _leaves(item.getparent())  # a text() node
    return out


class XMLSelector:
    """Evaluates source expressions of one mapping against sample nodes, as node-sets."""

    def __init__(self, dialect: XPathDialect) -> None:
        self.dialect = dialect
        self._cache: dict[str, list[Any]] = {}

    def _compiled(self, expr: str) -> list[Any]:
        """The expression itself, then (for string/number results) each location path inside it."""
        if expr not in self._cache:
            expanded = self.dialect.expand(expr)
            parts = [p for p in _PATHS.findall(_STRINGS.sub("''", expanded)) if p not in _KEYWORDS]
            compiled = []
            for text in [expanded, *parts]:
                try:
                    compiled.append(etree.XPath(text, namespaces=self.dialect.namespaces, smart_strings=True))
                except etree.XPathError:
                    continue
            self._cache[expr] = compiled
        return self._cache[expr]

    def select(self, expr: str, node: Any) -> dict[str, set[Field]]:
        """Return, per part of ``expr`` (the whole of a node-set expression, else each location path in
        it), the fields it reads at ``node``; empty when nothing can be told."""
        compiled = self._compiled(expr)
        if not compiled:
            return {}
        try:
            whole = _nodes(compiled[0](node))
        except etree.XPathError:
            return {}
        if whole is not None:
            return {expr: whole}
        out: dict[str, set[Field]] = {}
        for part in compiled[1:]:
            try:
                out[part.path] = _nodes(part(node)) or set()
            except etree.XPathError:
                continue
        return out


def show(field: Field, siebel: bool) -> str:
    """Render a field key as ``ListOf Order Entry (Sales)/Order Entry - Orders/Order Number``."""
    return "/".join(siebel_unescape(n) for n in field) if siebel else "/".join(field)
