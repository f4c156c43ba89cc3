"""Validating canonical messages: one compiled validator per schema, every error with its JSON path.

The hot path uses **jsonschema-rs** (Rust): Draft 2020-12, cross-file ``$ref`` through a registry that
holds every schema of the project (nothing is ever fetched over the network), formats checked
(``validate_formats=True``: ``2026-13-45T99:00:00Z`` is not a date-time), and ``iter_errors`` giving
every error with its instance path. A valid document costs one ``is_valid`` call (a few µs); only an
invalid one pays for collecting the errors. ``bench/validation_bench.py`` measures the options.

**python-jsonschema** with ``referencing`` is the reference implementation: it meta-validates schemas
(``check_schema``) in ``esb lint`` and the tests cross-check that both libraries agree on every example.

JSON paths read like ``$.productOrderItem[0].action``; a key that is not an identifier is bracketed:
``$['@type']``, ``$.name['zh-CN']``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

import jsonschema_rs
import referencing
import referencing.jsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from esb.exceptions import ConfigError, SchemaValidationError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Iterable[str | int]) -> str:
    """Render an instance path (``["productOrderItem", 0, "action"]``) as ``$.productOrderItem[0].action``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


def _refuse_retrieval(uri: str) -> Any:
    """Retriever for jsonschema-rs: every schema must be in the registry; never fetch over the network."""
    raise LookupError(f"$ref to {uri!r}: no such schema in canonical_model/ (schemas are never fetched)")


def _refs(node: Any) -> Iterable[str]:
    """Yield every ``$ref`` value inside a schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def referenced_resources(
    schema: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """Return the resources ``schema`` reaches through ``$ref``, transitively (by ``$id``).

    Giving each validator only what it uses keeps one broken schema from breaking every other one.
    """
    found: dict[str, Mapping[str, Any]] = {}
    todo: list[Mapping[str, Any]] = [schema]
    while todo:
        current = todo.pop()
        base = str(current.get("$id", ""))
        for ref in _refs(current):
            uri = urldefrag(urljoin(base, ref)).url
            if uri and uri not in found and uri in resources:
                found[uri] = resources[uri]
                todo.append(resources[uri])
    return found


#: jsonschema-rs error kinds that are about an object's fields, not a value the schema refuses
_NOT_A_VALUE = frozenset({"Required", "AdditionalProperties", "UnevaluatedProperties"})


class CanonicalValidator:
    """A compiled validator for one canonical schema (compile once, reuse for every message)."""

    def __init__(
        self, name: str, schema: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Compile ``schema`` (named ``name``, e.g. ``product_order.v1``); ``resources`` maps every
        schema ``$id`` of the project to its schema, for cross-file ``$ref``.

        Raises ConfigError when the schema does not compile (bad regex, unresolvable ``$ref``).
        """
        self.name = name
        self.schema = schema
        needed = referenced_resources(schema, resources)
        try:
            registry = jsonschema_rs.Registry(
                [(uri, dict(doc)) for uri, doc in needed.items()], retriever=_refuse_retrieval
            )
            self._validator = jsonschema_rs.validator_for(
                dict(schema),
                registry=registry,
                validate_formats=True,
                ignore_unknown_formats=False,
                retriever=_refuse_retrieval,
            )
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"canonical schema {name!r} does not compile: {first_line}") from exc

    def is_valid(self, instance: Any) -> bool:
        """Return True when ``instance`` conforms (the cheapest check)."""
        return bool(self._validator.is_valid(instance))

    def errors(self, instance: Any) -> list[tuple[str, str]]:
        """Return every violation as ``(json_path, message)``, in document order; empty when valid."""
        if self._validator.is_valid(instance):
            return []
        found = [
            (json_path(err.instance_path), _message(err)) for err in self._validator.iter_errors(instance)
        ]
        return sorted(set(found), key=lambda e: (*_path_key(e[0]), e[1]))

    def value_errors(self, instance: Any) -> list[tuple[tuple[str | int, ...], str]]:
        """Every refused value as ``(path, message)``: not missing fields (``required``) nor unknown ones
        (additional/unevaluated properties), whose paths are the object's, not a value's."""
        if self._validator.is_valid(instance):
            return []
        return [
            (tuple(err.instance_path), _message(err))
            for err in self._validator.iter_errors(instance)
            if err.instance_path and type(err.kind).__name__ not in _NOT_A_VALUE
        ]

    def validate(self, instance: Any) -> None:
        """Return None when ``instance`` conforms; otherwise raise SchemaValidationError with every error."""
        if self._validator.is_valid(instance):
            return
        raise SchemaValidationError(self.name, self.errors(instance))

    def __repr__(self) -> str:
        return f"CanonicalValidator({self.name!r})"


def _message(err: jsonschema_rs.ValidationError) -> str:
    """Return the error's message, listing every allowed value of an enum or const (jsonschema-rs
    abbreviates long enums to "or 2 other candidates")."""
    kind = err.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        allowed = ", ".join(json.dumps(v, ensure_ascii=False) for v in kind.options)
        return f"{json.dumps(err.instance, ensure_ascii=False)} is not one of {allowed}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Constant):
        expected = json.dumps(kind.expected_value, ensure_ascii=False)
        return f"{json.dumps(err.instance, ensure_ascii=False)} is not the expected value {expected}"
    return str(err.message)


def _path_key(path: str) -> tuple[Any, ...]:
    """Sort key for JSON paths that orders array indexes numerically (``[2]`` before ``[10]``)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[\[\].']+", path) if p)


class ReferenceValidator:
    """The same checks with python-jsonschema (reference implementation; slower, used by lint and tests)."""

    def __init__(self, schema: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]) -> None:
        """Build a Draft 2020-12 validator with format checking and a registry of ``resources``."""
        registry: referencing.Registry[Any] = referencing.Registry().with_resources(
            (uri, referencing.Resource.from_contents(doc, referencing.jsonschema.DRAFT202012))
            for uri, doc in resources.items()
        )
        self._validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        """Yield every violation as python-jsonschema's error (keyword, instance path, offending value)."""
        yield from self._validator.iter_errors(instance)

    def errors(self, instance: Any) -> list[tuple[str, str]]:
        """Return every violation as ``(json_path, message)``."""
        found = [(json_path(e.absolute_path), e.message) for e in self._validator.iter_errors(instance)]
        return sorted(set(found), key=lambda e: (*_path_key(e[0]), e[1]))


def meta_errors(schema: Mapping[str, Any]) -> list[str]:
    """Return the ways ``schema`` is not a valid Draft 2020-12 schema (python-jsonschema ``check_schema``)."""
    validator = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    return [f"{json_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(schema)]
