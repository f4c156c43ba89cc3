"""``xsd:redefine`` for zeep, which has no visitor for it: the documents are served rewritten.

A redefine includes a schema and replaces some of its named components (simple and complex types,
groups, attribute groups) by new ones, which may derive from (or refer to) the component they replace.
zeep 4 refuses the element, so the transport serves a contract using it rewritten into what zeep knows:

- the redefined schema with each redefined component renamed ``<name>__esb_original``;
- the redefining schema with ``xsd:redefine`` turned into an ``xsd:include`` of that schema followed by
  the new components, their references to the component they replace pointed at the renamed original.

Redefinition is pervasive in XML Schema (every use of the name sees the new component), so renaming the
original wherever the redefined schema is served is faithful. The listener's validator (libxml2) reads
the files as they are: libxml2 implements ``xsd:redefine`` itself.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from adapters.soap.contractset import XSD, locate
from esb.xmlsafe import hardened_parser

SUFFIX = "__esb_original"
_REDEFINE = f"{{{XSD}}}redefine"
_REFERENCES = (("base", "restriction", "extension"), ("ref", "group", "attributeGroup"))


def redefinitions(files: list[Path], root: Path) -> dict[Path, set[str]]:
    """Return, per redefined file of the contract, the local names of the components redefined in it."""
    out: dict[Path, set[str]] = {}
    for path in files:
        tree = etree.parse(str(path), parser=hardened_parser())
        for node in tree.iter(_REDEFINE):
            target = locate(str(node.get("schemaLocation")), path, "xsd:redefine", root)
            names = {str(c.get("name")) for c in node if isinstance(c.tag, str) and c.get("name")}
            out.setdefault(target, set()).update(names)
    return out


def rewrite(data: bytes, renamed: set[str]) -> bytes:
    """Return the document ``data`` for zeep: ``renamed`` components renamed, redefines made includes."""
    root = etree.fromstring(data, parser=hardened_parser())
    changed = False
    for schema in root.iter(f"{{{XSD}}}schema"):
        if renamed:
            for child in schema:
                if isinstance(child.tag, str) and child.get("name") in renamed:
                    child.set("name", f"{child.get('name')}{SUFFIX}")
                    changed = True
        for redefine in list(schema.iterchildren(_REDEFINE)):
            _unfold(schema, redefine, schema.get("targetNamespace"))
            changed = True
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") if changed else data


def _unfold(schema: etree._Element, redefine: etree._Element, namespace: str | None) -> None:
    """Replace ``redefine`` by an include and its components, self-references pointed at the original."""
    components = [c for c in redefine if isinstance(c.tag, str) and c.get("name")]
    for component in components:  # while still in the tree: the prefixes in QName values resolve here
        name = str(component.get("name"))
        for attr, *tags in _REFERENCES:
            for node in component.iter(*(f"{{{XSD}}}{t}" for t in tags)):
                value = node.get(attr)
                if value and _names(node, value, namespace, name):
                    node.set(attr, f"{value}{SUFFIX}")
    include = etree.Element(f"{{{XSD}}}include", schemaLocation=str(redefine.get("schemaLocation")))
    schema.replace(redefine, include)
    for component in components:
        schema.append(component)


def _names(node: etree._Element, value: str, namespace: str | None, name: str) -> bool:
    """True when the QName ``value`` (in ``node``'s scope) is ``{namespace}name``."""
    prefix, _, local = value.rpartition(":")
    return local == name and node.nsmap.get(prefix or None) == namespace
