"""Serving a contract at ``?wsdl``: the WSDL and every file it imports, with locations rewritten.

``soap:address`` becomes the listener's own URL; ``wsdl:import``/``xsd:import``/``xsd:include``
locations become ``<path>?file=<relative name>``, so a client such as zeep can load the whole contract
from the hub. Only the contract's own files are served, by exact name. Names are taken from real paths
(symbolic links resolved) on both sides, so a contract folder reached through a link (a project overlay)
serves the same names it writes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import quote

from lxml import etree

from adapters.soap.contractset import LOCATIONS
from esb.xmlsafe import hardened_parser

_ADDRESSES = {
    "{http://schemas.xmlsoap.org/wsdl/soap/}address",
    "{http://schemas.xmlsoap.org/wsdl/soap12/}address",
}


class Publisher:
    """The contract's documents as served to callers, rewritten once per base URL."""

    def __init__(self, main: Path, files: list[Path]) -> None:
        self.main = main
        self.base_dir = Path(os.path.realpath(main)).parent
        self.names = {self._name(p): p for p in files}
        self._cache: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _name(self, path: Path) -> str:
        return Path(os.path.relpath(os.path.realpath(path), self.base_dir)).as_posix()

    def document(self, name: str | None, url: str) -> bytes | None:
        """Return the WSDL (``name`` None) or a named imported file, for ``url``; None if unknown."""
        key = (name or "", url)
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        path = self.main if name is None else self.names.get(name)
        if path is None:
            return None
        tree = etree.parse(str(path), parser=hardened_parser())
        for node in tree.iter():
            attr = LOCATIONS.get(node.tag) if isinstance(node.tag, str) else None
            if attr and node.get(attr):
                target = Path(os.path.abspath(path.parent / str(node.get(attr))))
                node.set(attr, f"{url}?file={quote(self._name(target))}")
            elif node.tag in _ADDRESSES:
                node.set("location", url)
        data: bytes = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
        with self._lock:
            self._cache[key] = data
        return data
