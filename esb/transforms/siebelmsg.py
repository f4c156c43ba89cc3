"""Siebel EAI XML as the converters write it, and the mappings that read it (``siebel: OBJECT``).

Accepted forms (Oracle, "XML Reference: Siebel Enterprise Application Integration"):

* a ``SiebelMessage`` alone, or as the child of a ``PropertySet`` (the XML Converter's property-set form),
  with or without the ``<?Siebel-Property-Set EscapeNames="..."?>`` processing instruction;
* the integration object named by ``IntObjectName`` (``IntObjName`` as some of Oracle's examples spell it);
* names escaped (``Order_spcEntry_spc-_spcOrders``) or stripped (``OrderEntry-Orders``): the processing
  instruction's ``EscapeNames`` says which; without it, a document whose element or attribute names hold
  an escape sequence is escaped, any other is stripped.

The mapping's rules are compiled once per declared integration object and naming style; a message runs
through the compiled set of its own integration object and style. Anything else is refused with
UnknownMessageTypeError naming the accepted integration objects and what came.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import etree

from esb.config.yamlpos import Located
from esb.exceptions import ConfigError, UnknownMessageTypeError
from esb.transforms.base import Header, Transform
from esb.transforms.functions import FnContext
from esb.transforms.kinds import RuleTransform
from esb.transforms.rules import Compiler
from esb.transforms.siebel import ESCAPED, STRIPPED, STYLES, has_escapes
from esb.transforms.siebelobjects import DECLARATION_FILE, SiebelObject, load_object
from esb.transforms.xpathdialect import XPathDialect

MESSAGE = "SiebelMessage"
WRAPPER = "PropertySet"
PI_TARGET = "Siebel-Property-Set"
_ESCAPE_NAMES = re.compile(r"EscapeNames\s*=\s*[\"']?(\w+)", re.IGNORECASE)


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def find_message(root: Any) -> Any | None:
    """Return the SiebelMessage element of a parsed document (bare or inside a PropertySet), else None."""
    if not isinstance(root, etree._Element):
        return None
    if _local(root) == MESSAGE:
        return root
    if _local(root) == WRAPPER:
        return next((child for child in root if _local(child) == MESSAGE), None)
    return None


def integration_object(message: Any) -> str | None:
    """Return the integration-object name a SiebelMessage declares."""
    return message.get("IntObjectName") or message.get("IntObjName") or None


def naming_style(message: Any) -> str:
    """Return ``escaped`` or ``stripped``: how the names of ``message`` were written."""
    for node in (message, message.getparent()):
        if node is None:
            continue
        for sibling in node.itersiblings(preceding=True):
            if isinstance(sibling, etree._ProcessingInstruction) and sibling.target == PI_TARGET:
                m = _ESCAPE_NAMES.search(sibling.text or "")
                if m:
                    return STRIPPED if m.group(1).lower() == "false" else ESCAPED
    for el in message.iter():
        if isinstance(el.tag, str) and (has_escapes(el.tag) or any(has_escapes(k) for k in el.attrib)):
            return ESCAPED
    return STRIPPED


class SiebelTransform(Transform):
    """An ``xpath-to-json`` mapping with ``siebel: OBJECT``: one compiled rule set per integration object
    and naming style, chosen by the message."""

    def __init__(self, header: Header, obj: SiebelObject, variants: dict[tuple[str, str], RuleTransform]):
        super().__init__(header)
        self.object = obj
        self.variants = variants
        header.accepts_text = (
            f"a SiebelMessage (bare or inside a PropertySet) whose IntObjectName is "
            f"{obj.describe()} (declared for {obj.name} in {DECLARATION_FILE})"
        )

    def select(self, parsed: Any) -> tuple[Any, RuleTransform]:
        """Return the SiebelMessage and the compiled rules for it; UnknownMessageTypeError otherwise."""
        message = find_message(parsed)
        if message is None:
            what = self._describe(parsed)
            if isinstance(parsed, etree._Element) and _local(parsed) == WRAPPER:
                children = ", ".join(f"<{_local(c)}>" for c in parsed if isinstance(c.tag, str)) or "none"
                what = f"got a PropertySet without a SiebelMessage (children: {children})"
            raise UnknownMessageTypeError(f"{self.name} accepts only {self.header.accepts_text}; {what}")
        name = integration_object(message)
        variant = self.variants.get((name or "", naming_style(message)))
        if variant is None:
            raise UnknownMessageTypeError(
                f"{self.name} accepts only {self.header.accepts_text}; {self._describe(message)}"
            )
        return message, variant

    def check_accepts(self, parsed: Any) -> None:
        """Raise UnknownMessageTypeError unless ``parsed`` is a SiebelMessage of a declared object."""
        self.select(parsed)

    def transform_body(self, body: Any) -> Any:
        """Parse, choose the compiled rules once (the check and the run share the choice), map."""
        message, variant = self.select(self.parse(body))
        return self.serialise(variant.run(message))

    def run(self, body: Any) -> Any:
        """Map the SiebelMessage with the rules compiled for its integration object and naming style."""
        message, variant = self.select(body)
        return variant.run(message)


def load_siebel_mapping(
    header: Header, doc: Located, spec: dict[str, Any], ctx: FnContext, project_dir: Path
) -> SiebelTransform:
    """Compile an ``xpath-to-json`` mapping that declares ``siebel: OBJECT`` (see the module docstring)."""
    checker = Compiler(doc, XPathDialect(), ctx)
    if "accepts" in spec:
        raise checker.fail(
            ("accepts",),
            f"siebel: decides what the mapping accepts (the integration objects "
            f"declared in {DECLARATION_FILE}): remove accepts",
        )
    if spec.get("tag_escape", "siebel") != "siebel":
        raise checker.fail(
            ("tag_escape",), "a siebel: mapping uses Siebel names: tag_escape is siebel or absent"
        )
    name = spec["siebel"]
    if not isinstance(name, str):
        raise checker.fail(("siebel",), f"expected the name of a logical object of {DECLARATION_FILE}")
    try:
        obj = load_object(project_dir, name)
    except ConfigError as exc:
        if exc.findings:
            raise
        raise checker.fail(("siebel",), str(exc)) from None
    variants = {}
    for io_name in obj.integration_objects:
        for style in STYLES:
            dialect = XPathDialect(
                spec.get("namespaces"), "siebel", style=style, names=obj.names_for(io_name), owner=obj.name
            )
            block = Compiler(doc, dialect, ctx).block(spec.get("rules"), spec.get("let"), ("rules",), "")
            context = spec.get("context")
            if context is not None:
                try:
                    dialect.many(str(context))
                except ValueError as exc:
                    raise checker.fail(("context",), f"bad expression {context!r}: {exc}") from None
            variants[(io_name, style)] = RuleTransform(
                header, dialect, block, context=str(context) if context is not None else None
            )
    return SiebelTransform(header, obj, variants)
