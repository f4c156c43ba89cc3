"""Loading WSDLs offline, once per process (and once across restarts, see ``cache.py``).

A WSDL and everything it imports (``wsdl:import``, ``xsd:import``, ``xsd:include``, ``xsd:redefine``) is
read from local files under the contract root only: ``contractset.py`` walks the set first and refuses
http(s), files outside the root and links leading out of it; :class:`LocalTransport` then serves zeep
exactly those files (rewritten where zeep lacks ``xsd:redefine``, see ``redefine.py``).
:class:`Contract` wraps the loaded zeep Document with the operation table both directions need.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.soap.cache import DocumentCache
from adapters.soap.contractset import contract_files, file_location
from adapters.soap.redefine import redefinitions, rewrite
from esb.exceptions import ConfigError
from esb.registry import did_you_mean

#: contracts that parse faster than this are not cached: hashing and unpickling would cost as much
CACHE_FROM_SECONDS = 0.05
SOAP11 = "1.1"
SOAP12 = "1.2"


def zeep_settings() -> Any:
    """Return zeep Settings with hardened XML parsing (no DTD, no entities, no external loads)."""
    from zeep import Settings

    return Settings(
        strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )


class LocalTransport:
    """Mixin behaviour for zeep's Transport: ``load`` serves the contract's walked files only."""

    @staticmethod
    def make(files: list[Path], root: Path, load_timeout: float) -> Any:
        """Return a zeep Transport that loads ``files`` (resolved paths) and refuses any other document.

        Documents of a set using ``xsd:redefine`` are served rewritten (see ``redefine.py``).
        """
        from zeep.transports import Transport

        allowed = set(files)
        renamed = redefinitions(files, root)

        class _Local(Transport):
            def load(self, url: str) -> bytes:
                local = file_location(url)
                path = Path(os.path.realpath(local)) if local is not None else None
                if path is None or path not in allowed:
                    raise ConfigError(f"contract document {url!r} is not one of the contract's files")
                data = path.read_bytes()
                if path in renamed or b"redefine" in data:
                    return rewrite(data, renamed.get(path, set()))
                return data

        return _Local(timeout=load_timeout, operation_timeout=load_timeout)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class OperationInfo:
    """One operation of one port: what it takes, what it returns, how it is bound."""

    service: str
    port: str
    name: str
    soap_version: str
    soap_action: str | None
    input_element: str | None
    output_element: str | None
    address: str | None

    @property
    def one_way(self) -> bool:
        """True when the operation has no output."""
        return self.output_element is None


def _port_version(port: Any) -> str | None:
    kind = type(port.binding).__name__
    if kind.startswith("Soap12"):
        return SOAP12
    if kind.startswith("Soap11"):
        return SOAP11
    return None


class Contract:
    """A loaded WSDL: the zeep Document, the files it came from, their root, and its operation table."""

    def __init__(self, path: Path, document: Any, files: list[Path], root: Path) -> None:
        self.path = path
        self.document = document
        self.files = files
        self.root = root
        self.operations: list[OperationInfo] = self._table()

    def _table(self) -> list[OperationInfo]:
        out = []
        for service in self.document.services.values():
            for port in service.ports.values():
                soap_version = _port_version(port)
                if soap_version is None:
                    continue
                for op in port.binding._operations.values():
                    body_in = getattr(op.input, "body", None)
                    body_out = getattr(op.output, "body", None) if op.output is not None else None
                    out.append(
                        OperationInfo(
                            service.name,
                            port.name,
                            op.name,
                            soap_version,
                            op.soapaction or None,
                            body_in.qname.text if body_in is not None else None,
                            body_out.qname.text if body_out is not None else None,
                            port.binding_options.get("address"),
                        )
                    )
        return out

    def port(self, service: str | None, port: str | None) -> tuple[str, Any]:
        """Return ``(service name, zeep Port)`` (defaults: the only service, its first SOAP port)."""
        services = self.document.services
        if service is None:
            if len(services) != 1:
                raise ConfigError(f"{self.path.name}: several services ({', '.join(services)}): name one")
            service = next(iter(services))
        if service not in services:
            raise ConfigError(
                f"{self.path.name}: no service {service!r}{did_you_mean(service, list(services))}"
            )
        ports = services[service].ports
        if port is None:
            soap_ports = [p for p in ports.values() if _port_version(p) is not None]
            if not soap_ports:
                raise ConfigError(f"{self.path.name}: service {service!r} has no SOAP port")
            return service, soap_ports[0]
        if port not in ports:
            raise ConfigError(f"{self.path.name}: no port {port!r}{did_you_mean(port, list(ports))}")
        return service, ports[port]

    def operation(self, service: str | None, port: str | None, name: str) -> OperationInfo:
        """Return the operation ``name`` of the chosen port; ConfigError with a suggestion if unknown."""
        service_name, chosen = self.port(service, port)
        found = [o for o in self.operations if o.port == chosen.name and o.service == service_name]
        names = [o.name for o in found]
        for info in found:
            if info.name == name:
                return info
        raise ConfigError(
            f"{self.path.name}: port {chosen.name!r} has no operation {name!r}"
            f"{did_you_mean(name, names)}; known: {', '.join(sorted(set(names)))}"
        )

    def element(self, qname: str) -> Any:
        """Return the zeep schema element ``{ns}name``."""
        return self.document.types.get_element(etree.QName(qname))


_contracts: dict[tuple[Path, Path], Contract] = {}
_lock = threading.Lock()


def load_contract(
    path: Path, *, root: Path | None = None, cache_dir: Path | None = None, load_timeout: float = 10.0
) -> Contract:
    """Return the contract at ``path``, loaded once per process and, with ``cache_dir``, across restarts.

    ``root`` is the folder the WSDL and every document it imports must lie in, symbolic links resolved
    (default: the WSDL's own folder). The set is walked (and checked) on every load, so that a cache entry
    is used only for the same files, all still under ``root`` and each with its recorded digest.
    """
    path = Path(os.path.abspath(path))
    root = Path(os.path.abspath(root or path.parent))
    with _lock:
        found = _contracts.get((path, root))
        if found is not None:
            return found
        files = contract_files(path, root)
        cache = DocumentCache(cache_dir) if cache_dir is not None else None
        cached = cache.get(path) if cache is not None else None
        if cached is not None and cached[1] == files:
            document = cached[0]
        else:
            started = time.perf_counter()
            document, files = _load(path, root, load_timeout)
            if cache is not None and time.perf_counter() - started >= CACHE_FROM_SECONDS:
                cache.put(path, document, files)
        contract = Contract(path, document, files, root)
        _contracts[(path, root)] = contract
        return contract


def _load(path: Path, root: Path, load_timeout: float) -> tuple[Any, list[Path]]:
    """Return the zeep Document of ``path`` and its files, reading only those (see ``contract_files``)."""
    from zeep.exceptions import Error as ZeepError
    from zeep.wsdl import Document

    files = contract_files(path, root)
    transport = LocalTransport.make(files, root, load_timeout)
    limit = sys.getrecursionlimit()
    try:
        document = Document(str(path), transport, settings=zeep_settings())
    except ConfigError:
        raise
    except (ZeepError, etree.XMLSyntaxError, ValueError, KeyError) as exc:
        raise ConfigError(f"WSDL {path}: cannot load: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.setrecursionlimit(limit)
    document.transport = None  # type: ignore[assignment]  # loaded: no further loads, and picklable
    return document, files


def forget_contracts() -> None:
    """Drop the in-process cache (tests)."""
    with _lock:
        _contracts.clear()
