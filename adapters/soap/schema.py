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

A compile can silently lack an inline schema. libxml2 loads the documents a schema imports through one
process-wide "external entity loader"; lxml installs its own (which asks the parser's resolvers) around
every parse and every compile and puts back, afterwards, whichever loader it found installed. Two
threads doing so at once can interleave: a parse that began before the compile ends during it and puts
back libxml2's own loader, which cannot read the ``esb-inline:`` documents; libxml2 treats an import it
cannot load as a warning, so the schema compiles without that namespace and every request of its
operations is refused as "no matching global declaration" until the listener restarts. Any thread of
the process parsing XML (other routes, other listeners) can cause it, so no choice of thread or lock
here avoids it. Each compile is therefore checked: every operation's input element the WSDL names must
be declared in it (:func:`undeclared`); a compile lacking one is logged and done again, up to
``COMPILE_ATTEMPTS`` times, then the connect fails with a ConfigError naming the operation and element.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.soap.contractset import WSDL, XSD, file_location
from esb.exceptions import ConfigError
from esb.logging import get_logger
from esb.xmlsafe import hardened_parser

_COMPILE_LOCK = threading.Lock()
_INLINE = "esb-inline:"
#: compiles of one schema before the connect fails: a compile lacks an element only by the rare race of
#: the module docstring, so a second one is complete in practice and the third is a margin
COMPILE_ATTEMPTS = 3


class _ContractResolver(etree.Resolver):  # type: ignore[misc]  # lxml's stubs are not installed
    """Serves the inline schemas and the contract's files; refuses everything else."""

    def __init__(self, inline: dict[str, tuple[bytes, str]], files: list[Path], root: Path) -> None:
        super().__init__()
        self.inline = inline
        self.files = set(files)
        self.root = root
        self.refused: ConfigError | None = None  # libxml2 reports a refusal only as "failed to load"

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        if system_url in self.inline:
            data, base = self.inline[system_url]
            return self.resolve_string(data, context, base_url=base)
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


def _driver(files: list[Path]) -> tuple[bytes, dict[str, tuple[bytes, str]]]:
    by_namespace: dict[str, list[str]] = {}
    inline: dict[str, tuple[bytes, str]] = {}
    for index, (schema, path) in enumerate(_inline_schemas(files)):
        key = f"{_INLINE}{index}"
        inline[key] = (etree.tostring(schema), str(path))
        by_namespace.setdefault(schema.get("targetNamespace", ""), []).append(key)
    driver = etree.Element(
        f"{{{XSD}}}schema", nsmap={"xsd": XSD}, targetNamespace="urn:esb:validation-driver"
    )
    for namespace, keys in by_namespace.items():
        location = keys[0]
        if len(keys) > 1:  # several inline schemas of one namespace: one wrapper including them all
            location = f"{_INLINE}ns{len(inline)}"
            wrapper = etree.Element(f"{{{XSD}}}schema", nsmap={"xsd": XSD})
            if namespace:
                wrapper.set("targetNamespace", namespace)
            for key in keys:
                etree.SubElement(wrapper, f"{{{XSD}}}include", schemaLocation=key)
            inline[location] = (etree.tostring(wrapper), inline[keys[0]][1])
        attrs = {"schemaLocation": location}
        if namespace:
            attrs["namespace"] = namespace
        etree.SubElement(driver, f"{{{XSD}}}import", **attrs)
    return etree.tostring(driver), inline


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
        self.driver, self.inline = _driver(files)
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
                "SOAP schema compiled without some operation elements: compiling again",
                contract=self.files[0].name,
                attempt=attempt,
                attempts=COMPILE_ATTEMPTS,
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
        parser = hardened_parser()
        resolver = _ContractResolver(self.inline, self.files, self.root)
        parser.resolvers.add(resolver)
        try:
            # libxml2 builds schemas with process-wide state that is not safe to share: two threads
            # compiling at once corrupted it ("xmlSchemaPValAttrNodeValue, the given type is not a
            # built-in type", then every later compile failed). Compile one at a time.
            with _COMPILE_LOCK:
                doc = etree.fromstring(self.driver, parser=parser, base_url=str(self.root / "driver.xsd"))
                return etree.XMLSchema(doc)
        except etree.XMLSchemaParseError as exc:
            if resolver.refused is not None:
                raise resolver.refused from exc
            raise ConfigError(f"the contract's schema does not compile: {exc}") from exc

    def errors(self, element: etree._Element) -> list[str]:
        """Return the schema violations of ``element`` (empty when valid)."""
        if self._compiled.validate(element):  # concurrently: the answer is the call's own
            return []
        with self._lock:  # the reporter's error log is the validator's own: one validation at a time
            if self._reporter.validate(element):
                return []
            return [f"line {e.line}: {e.message}" for e in self._reporter.error_log][:20]
