"""Hardened XML parsing: no entity expansion, no DTDs, no network, a size limit.

Every XML body the hub reads goes through :func:`parse_xml`. A document that declares a DTD (the carrier
of entities, XXE and billion laughs) is refused with :class:`UnsafeXMLError`, never expanded. Legacy
"GBK" declarations are decoded as GB18030, which covers the characters GBK lacks.
"""

from __future__ import annotations

import re

from lxml import etree

from esb.exceptions import BodyTooLargeError, DecodeError, UnsafeXMLError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_GBK_DECL = re.compile(rb"^(\s*<\?xml[^>]*encoding=[\"'])(gbk|gb2312|GBK|GB2312)([\"'])")


def hardened_parser(*, huge_tree: bool = False) -> etree.XMLParser:
    """Return an lxml parser that never resolves entities, never loads a DTD and never uses the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=False,
        huge_tree=huge_tree,
    )


_PARSER = hardened_parser()


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse ``data`` into an element tree, refusing DTDs and entities; return the root element.

    Raises BodyTooLargeError over ``max_bytes``, UnsafeXMLError for a DTD or entity declaration, and
    DecodeError for anything that is not well-formed XML in its declared encoding.
    """
    if len(data) > max_bytes:
        raise BodyTooLargeError(f"XML body of {len(data)} bytes is over the limit of {max_bytes}")
    data = _GBK_DECL.sub(rb"\1gb18030\3", data, count=1)
    try:
        tree = etree.fromstring(data, parser=_PARSER).getroottree()
    except etree.XMLSyntaxError as exc:
        if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
            raise UnsafeXMLError(f"XML with a DTD or entity declarations is refused: {exc}") from exc
        raise DecodeError(f"malformed XML: {exc}") from exc
    except ValueError as exc:  # e.g. unicode strings with an encoding declaration
        raise DecodeError(f"malformed XML: {exc}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXMLError("XML with a DTD (DOCTYPE) is refused: entities and DTDs are not allowed")
    root = tree.getroot()
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise UnsafeXMLError(f"XML with an entity reference &{node.name}; is refused")
    return root
