"""The files of a contract: a WSDL and everything it imports, all under one contract root.

A published contract is often a set of files in sibling folders (``wsdl/<service>/v2/Service.wsdl``
importing ``../../../xsd/common/v1/Types.xsd``, which includes a sibling and imports a third folder).
:func:`contract_files` walks that set before anything else reads it: every ``wsdl:import``,
``xsd:import``, ``xsd:include`` and ``xsd:redefine``, at any depth, is resolved against the file that
names it (as zeep and libxml2 resolve it) and must be a local file under the contract root once
symbolic links are resolved. Anything else is a ConfigError naming the file that tried, the import and
the root: an http(s) location (there is no catalog mapping remote names to local copies: contracts are
loaded offline), a file outside the root, a link leading out of it, a missing file. The zeep transport
and the listener's schema resolver then serve exactly the walked files and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from lxml import etree

from esb.exceptions import ConfigError
from esb.xmlsafe import hardened_parser

WSDL = "http://schemas.xmlsoap.org/wsdl/"
XSD = "http://www.w3.org/2001/XMLSchema"

#: the elements that pull in another document, and the attribute naming it
LOCATIONS = {
    f"{{{WSDL}}}import": "location",
    f"{{{XSD}}}import": "schemaLocation",
    f"{{{XSD}}}include": "schemaLocation",
    f"{{{XSD}}}redefine": "schemaLocation",
}
_KINDS = {
    f"{{{WSDL}}}import": "wsdl:import",
    f"{{{XSD}}}import": "xsd:import",
    f"{{{XSD}}}include": "xsd:include",
    f"{{{XSD}}}redefine": "xsd:redefine",
}


def real_root(root: Path) -> Path:
    """Return the contract root with symbolic links resolved; ConfigError when it is not a folder."""
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise ConfigError(f"contract root {root} is not a folder")
    return real


def file_location(location: str) -> str | None:
    """Return the local path a location names (``file:`` URLs unquoted), or None when it is remote."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and location[1:3] in (":\\", ":/")):
        return location
    return None


def under_root(path: Path, root: Path) -> Path:
    """Return ``path`` with symbolic links resolved when it lies inside ``root`` (itself resolved).

    ConfigError otherwise, saying so when a link is what leads out.
    """
    real = Path(os.path.realpath(path))
    top = real_root(root)
    if top == real or top in real.parents:
        return real
    plain = Path(os.path.abspath(path))
    given = Path(os.path.abspath(root))
    if plain != real and any(r == plain or r in plain.parents for r in (top, given)):
        where = (
            f"{plain} is a symbolic link (or lies under one) leading outside the contract root {top}, "
            f"to {real}"
        )
    else:
        where = f"{plain} is outside the contract root {top}"
    raise ConfigError(
        f"{where}: nothing outside the contract root is read; put the whole contract set under one root "
        "(contract_root: on the endpoint, --root for esb soap operations)"
    )


def locate(location: str, referrer: Path, kind: str, root: Path) -> Path:
    """Return the file ``location`` (named by ``kind`` in ``referrer``) denotes, checked against ``root``."""
    local = file_location(location)
    where = f"{referrer}: {kind} {location!r}"
    if local is None:
        raise ConfigError(
            f"{where} is remote: contracts are loaded offline from files under the contract root {root}; "
            "download the document into the root and point the import at the local copy"
        )
    try:
        path = under_root(Path(os.path.join(referrer.parent, local)), root)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not path.is_file():
        raise ConfigError(f"{where}: {path} does not exist (contract root {root})")
    return path


def references(path: Path) -> list[tuple[str, str]]:
    """Return ``(kind, location)`` of every document ``path`` imports, includes or redefines, in order."""
    try:
        tree = etree.parse(str(path), parser=hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"contract document {path} is not well-formed XML: {exc}") from exc
    found = []
    for node in tree.iter(*LOCATIONS):
        location = (node.get(LOCATIONS[str(node.tag)]) or "").strip()
        if location:
            found.append((_KINDS[str(node.tag)], location))
    return found


def contract_files(wsdl: Path, root: Path) -> list[Path]:
    """Return the WSDL and every file it pulls in, at any depth (resolved paths, WSDL first, each once).

    ConfigError when the WSDL or any of those files is remote, missing or outside ``root``.
    """
    if not wsdl.is_file():
        raise ConfigError(f"WSDL {wsdl} does not exist")
    try:
        first = under_root(wsdl, root)
    except ConfigError as exc:
        raise ConfigError(f"WSDL {wsdl}: {exc}") from None
    files = [first]
    seen = {first}
    for path in files:  # grows while walking: breadth first, each file once (import cycles are legal)
        for kind, location in references(path):
            found = locate(location, path, kind, root)
            if found not in seen:
                seen.add(found)
                files.append(found)
    return files
