"""Validating request bodies against a WSDL's schema with lxml (libxml2), offline.

The schemas inline in the WSDL documents (``wsdl:types``) and the XSD files they import or include are
compiled into one ``XMLSchema``. Every document is served by a resolver that knows only the contract's own
files, as ``contractset.py`` walked them under the contract root: anything else (http, any other file,
a link leading out of the root) is refused. The schema is compiled when the listener connects (the
listener attaches a path, ``server.py``), twice, one compile after the other, never in a server thread:

- the first answers "valid or not" for every request, on every server thread at once: each validation
  has its own libxml2 context and the compiled schema is only read; its error log, shared by those
  calls, is never read (a concurrent call clears it);
- the second finds the errors of an invalid request, one validation at a time (a lock): its error log
  is then that request's alone.

Why the documents are files. libxml2 loads the documents a schema imports through one process-wide
"external entity loader"; lxml installs its own (which asks the parser's resolvers) around every parse
and every compile, and afterwards puts back whichever loader it found installed. Threads doing so at
once interleave: a parse that began before a compile and ends during it puts back libxml2's own loader,
and the compile's imports are then read by that loader, the resolver never asked (lxml 6.0, libxml2
2.14; ``bench/soap_compile_race.py`` shows it). The inline schemas used to be served under made-up
``esb-inline:`` names, which libxml2's loader cannot read; libxml2 treats an import it cannot load as a
warning, so the schema compiled without that namespace and the listener refused every request of its
operations ("no matching global declaration") until restarted. Any thread parsing XML (other routes,
other listeners, the listener's own first requests) can cause it: no choice of thread or lock here
avoids it. So every document a compile reads is a file: the inline schemas and the driver are written,
for the compile's duration, to a private temporary folder, their references made absolute paths, and
whichever loader reads them reads the same bytes. (libxml2's loader does not refuse what the resolver
would; the files it can be led to are the ones ``contractset.py`` checked when it walked the set.)

And each compile is checked all the same: every operation's input element the WSDL names must be
declared in it (:func:`undeclared`); a compile lacking one is logged and done again, up to
``COMPILE_ATTEMPTS`` times, then the connect fails with a ConfigError naming the operation and element:
the listener never serves a half-compiled schema.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.soap.contractset import LOCATIONS, WSDL, XSD, file_location, locate
from esb.exceptions import ConfigError
from esb.logging import get_logger
from esb.xmlsafe import hardened_parser

_COMPILE_LOCK = threading.Lock()
DRIVER = "driver.xsd"
#: compiles of one schema before the connect fails (a compile lacking an element is a defect to report,
#: see the module docstring; a second and third attempt cover a cause not yet understood)
COMPILE_ATTEMPTS = 3


class _ContractResolver(etree.Resolver):  # type: ignore[misc]  # lxml's stubs are not installed
    """Serves the contract's files (and the compile's own documents); refuses everything else."""

    def __init__(self, files: Iterable[Path], root: Path) -> None:
        super().__init__()
        self.files = set(files)
        self.root = root
        self.refused: ConfigError | None = None  # libxml2 reports a refusal only as "failed to load"

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        local = file_location(system_url)
        path = Path(os.path.realpath(local)) if local is not None else None
        if path is None or path not in self.files:
            self.refused = ConfigError(
                f"schema {system_url} is not one of the contract's local files under {self.root}"
            )
            raise self.refused
        return self.resolve_filename(str(path), context)


def _inline_schemas(files: list[Path]) -> list[tuple[etree._Element, Path]]:
    found: list[tuple[etree._Element, Path]] = []
    for path in files:
        root = etree.parse(str(path), parser=hardened_parser()).getroot()
        if root.tag == f"{{{WSDL}}}definitions":
            found.extend((s, path) for s in root.iterfind(f"{{{WSDL}}}types/{{{XSD}}}schema"))
    return found


def _standalone(schema: etree._Element, path: Path, root: Path) -> bytes:
    """The inline ``schema`` of the WSDL ``path`` as a document of its own: its imports, includes and
    redefines pointed at the files they name (absolute paths), so that it reads the same from any folder."""
    schema = etree.fromstring(etree.tostring(schema), parser=hardened_parser())  # keeps the WSDL's xmlns
    for node in schema.iterchildren(*(t for t in LOCATIONS if t.startswith(f"{{{XSD}}}"))):
        location = (node.get("schemaLocation") or "").strip()
        if location:
            kind = f"xsd:{etree.QName(node).localname}"
            node.set("schemaLocation", str(locate(location, path, kind, root)))
    return bytes(etree.tostring(schema))


def _documents(files: list[Path], root: Path) -> dict[str, bytes]:
    """The documents a compile reads besides the contract's files, by file name: ``driver.xsd``, importing
    every namespace of the inline schemas (through a wrapper including them when a namespace has several),
    and those schemas, each as a document of its own."""
    by_namespace: dict[str, list[str]] = {}
    documents: dict[str, bytes] = {}
    for index, (schema, path) in enumerate(_inline_schemas(files)):
        name = f"inline-{index}.xsd"
        documents[name] = _standalone(schema, path, root)
        by_namespace.setdefault(schema.get("targetNamespace", ""), []).append(name)
    driver = etree.Element(
        f"{{{XSD}}}schema", nsmap={"xsd": XSD}, targetNamespace="urn:esb:validation-driver"
    )
    for index, (namespace, names) in enumerate(by_namespace.items()):
        location = names[0]
        if len(names) > 1:  # several inline schemas of one namespace: one wrapper including them all
            location = f"namespace-{index}.xsd"
            wrapper = etree.Element(f"{{{XSD}}}schema", nsmap={"xsd": XSD})
            if namespace:
                wrapper.set("targetNamespace", namespace)
            for name in names:
                etree.SubElement(wrapper, f"{{{XSD}}}include", schemaLocation=name)
            documents[location] = etree.tostring(wrapper)
        attrs = {"schemaLocation": location}
        if namespace:
            attrs["namespace"] = namespace
        etree.SubElement(driver, f"{{{XSD}}}import", **attrs)
    documents[DRIVER] = etree.tostring(driver)
    return documents


def undeclared(schema: etree.XMLSchema, elements: Iterable[str]) -> list[str]:
    """Return those of ``elements`` (``{namespace}name``) that ``schema`` does not declare globally.

    Each is checked by validating an empty element of that name: libxml2 reports an undeclared root as
    cvc-elt.1 ("no matching global declaration"), whatever else an empty element violates. Reads the
    schema's error log: call it before the schema is shared between threads.
    """
    missing = []
    for qname in elements:
        if schema.validate(etree.Element(qname)):
            continue
        if any(e.type == etree.ErrorTypes.SCHEMAV_CVC_ELT_1 for e in schema.error_log):
            missing.append(qname)
    return missing


class RequestValidator:
    """Validates operation elements against the contract's schema (compiled once, at construction, so that
    a broken contract fails at connect and not at the first call).

    ``elements`` maps each element the schema must declare (``{namespace}name``) to the operation taking
    it: every compile is checked against it (see the module docstring).
    """

    def __init__(self, files: list[Path], root: Path, elements: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.files = files
        self.elements = dict(elements or {})
        self.documents = _documents(files, root)
        self._lock = threading.Lock()
        self._compiled = self._checked_compile()
        self._reporter = self._checked_compile()

    def _checked_compile(self) -> etree.XMLSchema:
        """Compile until the schema declares every element of ``self.elements`` (COMPILE_ATTEMPTS at most)."""
        missing: list[str] = []
        for attempt in range(1, COMPILE_ATTEMPTS + 1):
            schema = self._compile()
            missing = undeclared(schema, self.elements)
            if not missing:
                return schema
            get_logger("soap-listener").warning(
                "SOAP schema compiled without some operation elements",
                contract=self.files[0].name,
                attempt=attempt,
                attempts=COMPILE_ATTEMPTS,
                then="compiling again" if attempt < COMPILE_ATTEMPTS else "refusing to serve it",
                missing=[f"{self.elements[q]}: {q}" for q in missing],
            )
        first = missing[0]
        raise ConfigError(
            f"{self.files[0].name}: the schema compiled {COMPILE_ATTEMPTS} times without the element {first} "
            f"of operation {self.elements[first]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + ": the listener does not start with a schema that would refuse every such request"
        )

    def _compile(self) -> etree.XMLSchema:
        """Compile the driver, its documents written to a private folder for the compile's duration."""
        with tempfile.TemporaryDirectory(prefix="esb-soap-schema-") as folder:
            written = self._write_documents(Path(os.path.realpath(folder)))
            parser = hardened_parser()
            resolver = _ContractResolver([*self.files, *written], self.root)
            parser.resolvers.add(resolver)
            try:
                # libxml2 builds schemas with process-wide state that is not safe to share: two threads
                # compiling at once corrupted it ("xmlSchemaPValAttrNodeValue, the given type is not a
                # built-in type", then every later compile failed). Compile one at a time.
                with _COMPILE_LOCK:
                    doc = etree.parse(str(written[-1]), parser=parser)
                    return etree.XMLSchema(doc)
            except etree.XMLSchemaParseError as exc:
                if resolver.refused is not None:
                    raise resolver.refused from exc
                raise ConfigError(f"the contract's schema does not compile: {exc}") from exc

    def _write_documents(self, folder: Path) -> list[Path]:
        """Write the compile's own documents into ``folder`` (the driver last); a ConfigError when the
        temporary folder cannot hold them (``TMPDIR`` missing, full or read-only)."""
        written = []
        try:
            for name, data in self.documents.items():
                path = folder / name
                path.write_bytes(data)
                written.append(path)
        except OSError as exc:
            raise ConfigError(
                f"{self.files[0].name}: cannot write the schema's documents to the temporary folder {folder} "
                f"(set TMPDIR to a writable folder): {exc}"
            ) from exc
        return written

    def errors(self, element: etree._Element) -> list[str]:
        """Return the schema violations of ``element`` (empty when valid)."""
        if self._compiled.validate(element):  # concurrently: the answer is the call's own
            return []
        with self._lock:  # the reporter's error log is the validator's own: one validation at a time
            if self._reporter.validate(element):
                return []
            return [f"line {e.line}: {e.message}" for e in self._reporter.error_log][:20]
