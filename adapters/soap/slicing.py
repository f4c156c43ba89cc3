"""The bytes of the unwrapped request element, cut from the request as the caller sent them.

``etree.tostring`` of the element the route gets (the operation element's only child, ``unwrap``) costs
a serialisation of the whole element on every request. When the request is plain UTF-8 markup (no
comment, CDATA section, processing instruction or DTD: every ``<`` then opens a tag), the element's
bytes are a slice of the request: its start tag is the n-th start tag of the document (n: its place
among the elements in document order) and its end is where the operation element's end tag starts, the
whitespace before it apart. The namespaces it inherits (declared on the envelope, the Body, the
operation element) are declared on the slice's start tag, as ``tostring`` does, so the slice parses to
the same element. Anything else (another encoding, a byte order mark, text after the element, a
namespace declared again on the element itself, a start or end tag that is not where expected) gets
``None``: the caller serialises with ``tostring``, as before.
"""

from __future__ import annotations

import re

from lxml import etree

_DECLARATION_END = re.compile(rb"\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DEFAULT_NS = re.compile(rb"xmlns\s*=")
_WHITESPACE = b" \t\r\n"
_NAME_END = (b" ", b"\t", b"\r", b"\n", b">", b"/")
_UNSAFE_URI = frozenset('&"<\t\r\n')


def _markup_start(data: bytes) -> int:
    """Where the document's elements begin (after its XML declaration), or -1 when it is not plain UTF-8
    markup that can be sliced."""
    start = 0
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16
        return -1
    if data.startswith(b"<?xml"):
        found = _DECLARATION_END.search(data)
        if found is None:
            return -1
        encoding = _ENCODING.search(data, 0, found.start())
        if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
            return -1
        start = found.end()
    if b"<!" in data or data.find(b"<?", start) >= 0:  # comments, CDATA, DTD, PIs: '<' is not only tags
        return -1
    return start


def _nth_start_tag(data: bytes, position: int, index: int) -> int:
    """The position of the ``index``-th (0-based) start tag at or after ``position``, or -1."""
    while True:
        position = data.find(b"<", position)
        if position < 0:
            return -1
        if data[position + 1 : position + 2] != b"/":
            if index == 0:
                return position
            index -= 1
        position += 1


def _qname(element: etree._Element) -> bytes:
    local = str(element.tag).rpartition("}")[2]
    return (f"{element.prefix}:{local}" if element.prefix else local).encode("utf-8")


def _inherited(element: etree._Element, start_tag: bytes) -> bytes | None:
    """The declarations of the namespaces ``element`` inherits, to write on its start tag; None when
    the start tag may declare one of them itself (declaring it twice would not be XML)."""
    parent = element.getparent()
    own = element.nsmap
    outer = parent.nsmap if parent is not None else {}
    out = []
    for prefix, uri in own.items():
        if outer.get(prefix) != uri:
            continue  # declared on the element itself: already in its start tag
        if _UNSAFE_URI.intersection(uri):
            return None
        if prefix is None:
            if _DEFAULT_NS.search(start_tag):
                return None
            out.append(f' xmlns="{uri}"')
        else:
            if b"xmlns:" + prefix.encode("utf-8") in start_tag:
                return None
            out.append(f' xmlns:{prefix}="{uri}"')
    return "".join(out).encode("utf-8")


def sliced_element(data: bytes, root: etree._Element, element: etree._Element) -> bytes | None:
    """The bytes of ``element`` (the last element at each level of ``root``, like the operation element
    in the Body or its only child) cut from ``data``, the request ``root`` was parsed from; None when
    they cannot be cut exactly (see the module's docstring)."""
    if element.tail is not None and element.tail.strip(" \t\r\n"):
        return None
    ancestors, node = 0, element
    while node is not root:
        if node.getnext() is not None:
            return None
        node, ancestors = node.getparent(), ancestors + 1
        if node is None:
            return None
    offset = _markup_start(data)
    if offset < 0:
        return None
    index = 0
    for node in root.iter():
        if node is element:
            break
        index += 1
    start = _nth_start_tag(data, offset, index)
    qname = _qname(element)
    after = start + 1 + len(qname)
    if start < 0 or data[start + 1 : after] != qname or data[after : after + 1] not in _NAME_END:
        return None
    end = len(data)
    for _ in range(ancestors):  # from the end: the end tags of the root, ..., of the element's parent
        end = data.rfind(b"<", start + 1, end)
        if end < 0:
            return None
    while data[end - 1] in _WHITESPACE:
        end -= 1
    last_tag = data.rfind(b"<", start, end)
    if data[end - 2 : end] == b"/>":  # an empty element written <x/>: the last tag is its start tag
        if last_tag != start:
            return None
    elif data[last_tag:end] != b"</" + qname + b">":
        return None
    next_tag = data.find(b"<", start + 1)
    declarations = _inherited(element, data[start : next_tag if next_tag > 0 else end])
    if declarations is None:
        return None
    return data[start:after] + declarations + data[after:end]
