"""Fit a document read from TMF into its canonical schema: what the schema cannot hold leaves, with a warning.

TMF schemas are open (any extra field is TMF-valid) and looser than the canonical ones (free strings
where the canonical model has a code list, ``""`` where it wants a value). :func:`fit_to_schema` makes a
converted document hold only what its canonical schema accepts, and says what it did:

- a field the canonical schema does not know (``unevaluatedProperties``) is dropped; the warning names
  its path and carries its value, so the journal keeps it;
- a value the schema refuses (not in the enumeration, wrong type or format, empty where a value is
  wanted) is dropped the same way (an array item is removed from its array);
- a field the canonical schema requires and the TMF document lacks (an order without ``id``, an order
  item without its offering) is named in a warning, nothing is invented and no object is dropped for
  it (an order without one of its lines would be another order): the document stays incomplete, and
  whoever validates it next (the CLI, the route's output schema) refuses it for that field.

Nothing is changed without a warning. Valid documents cost one fast check (jsonschema-rs); only the
others are walked with python-jsonschema, whose errors say which keyword failed where.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import ValidationError

from esb.model.registry import ModelRegistry
from esb.model.validation import ReferenceValidator, json_path

#: keywords whose error lists fields the schema does not know (the rest are about one value)
_UNKNOWN_FIELDS = frozenset({"unevaluatedProperties", "additionalProperties"})
#: longest rendering of a dropped value in a warning (the whole value stays in the journaled input)
SHOW_LIMIT = 300
_MAX_ROUNDS = 12


@lru_cache(maxsize=64)
def _reference(model: ModelRegistry, schema: str) -> ReferenceValidator:
    return model.reference_validator(schema)


def show(value: Any) -> str:
    """Return ``value`` as compact JSON for a warning, cut at :data:`SHOW_LIMIT` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= SHOW_LIMIT else text[: SHOW_LIMIT - 1] + "…"


def _unknown_keys(error: ValidationError) -> list[str]:
    """The keys an unevaluated/additionalProperties error is about (python-jsonschema lists their reprs)."""
    instance = error.instance if isinstance(error.instance, dict) else {}
    listed = error.message.partition("(")[2]
    found = [key for key in instance if repr(key) in listed]
    # a key whose repr is inside another's ("'a'" in "'a', 'b'" is fine; "'a'" in "\"x'a'\"" is not)
    exact = sorted(found, key=str)
    expected = ", ".join(repr(k) for k in exact)
    return exact if listed.startswith(expected) else found


def _present(doc: Any, path: tuple[Any, ...]) -> bool:
    """True when ``path`` still leads to a value in ``doc``."""
    for part in path:
        in_object = isinstance(doc, dict) and isinstance(part, str) and part in doc
        in_list = isinstance(doc, list) and isinstance(part, int) and 0 <= part < len(doc)
        if not (in_object or in_list):
            return False
        doc = doc[part]
    return True


def _order(path: tuple[Any, ...]) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)


def _remove(doc: Any, path: tuple[Any, ...]) -> Any:
    """Remove the value at ``path`` (not the root) and return it."""
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    return parent.pop(path[-1])


class _Removed:
    """The array items removed so far, so warnings name each value by its place in the document as it came."""

    def __init__(self) -> None:
        self._gone: dict[tuple[Any, ...], list[int]] = {}

    def original(self, path: tuple[Any, ...]) -> tuple[Any, ...]:
        """Return ``path`` (in the document as it is now) as a path in the document as it came."""
        out: list[Any] = []
        for part in path:
            if isinstance(part, int):
                for gone in sorted(self._gone.get(tuple(out), [])):
                    if gone <= part:
                        part += 1
            out.append(part)
        return tuple(out)

    def add(self, original: tuple[Any, ...]) -> None:
        """Record that the array item at ``original`` (a path in the document as it came) is gone."""
        self._gone.setdefault(original[:-1], []).append(original[-1])


def fit_to_schema(doc: dict[str, Any], model: ModelRegistry, schema: str) -> list[str]:
    """Make ``doc`` (changed in place) hold only what canonical ``schema`` accepts; return the warnings."""
    if model.validator(schema).is_valid(doc):
        return []
    validator = _reference(model, schema)
    warnings: list[str] = []
    removed = _Removed()
    for _ in range(_MAX_ROUNDS):
        errors = [e for e in validator.iter_errors(doc) if e.validator != "required"]
        values = [e for e in errors if e.validator not in _UNKNOWN_FIELDS and e.absolute_path]
        drops: dict[tuple[Any, ...], str] = {}
        if values:
            for error in values:
                drops[tuple(error.absolute_path)] = f"{error.message}; dropped"
        else:
            for error in errors:
                for key in _unknown_keys(error):
                    drops[(*error.absolute_path, key)] = f"not a field of the canonical {schema}; dropped"
        if not drops:
            break
        for path in sorted(drops, key=_order, reverse=True):
            if any(path[: len(p)] == p and path != p for p in drops):
                continue  # an enclosing value goes anyway
            value = _remove(doc, path)
            where = removed.original(path)
            if isinstance(path[-1], int):
                removed.add(where)
            warnings.append(f"{json_path(where)}: {drops[path]}: {show(value)}")
    # the compiled validator checks formats more strictly than the reference one ("@" is an email to
    # python-jsonschema, not to jsonschema-rs): what it still refuses goes the same way
    for path, message in model.validator(schema).value_errors(doc):
        if _present(doc, path):
            value = _remove(doc, path)
            warnings.append(f"{json_path(removed.original(path))}: {message}; dropped: {show(value)}")
    for error in validator.iter_errors(doc):
        at = json_path(removed.original(tuple(error.absolute_path)))
        if error.validator == "required":
            warnings.append(f"{at}: {error.message} in the canonical {schema}; the document is incomplete")
        else:
            warnings.append(f"{at}: {error.message} (left as it came)")
    return warnings
