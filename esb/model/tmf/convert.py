"""Canonical <-> TMF Open API v4 conversion, driven by the table in :mod:`esb.model.tmf.entities`.

Rules (docs/canonical-model-rules.md, "TMF mapping"):

- Field names are the TMF names already (the canonical model follows the SID), so most fields pass as is.
- Money: canonical ``{"unit": "CNY", "value": "12.50"}`` (decimal string) <-> TMF ``Money`` whose value
  is a JSON *number*: a :class:`~decimal.Decimal` (print it with :func:`dumps`, never through float).
- Canonical-only fields stay under their own names; the TMF document declares them the TMF630 way with
  ``@schemaLocation`` = ``<canonical schema $id>#tmf-extension`` (set unless the document already has a
  ``@schemaLocation``, and removed again on the way back), so canonical -> TMF -> canonical is exact.
- Per-class renames (Individual ``name`` <-> ``fullName``) and canonical refs that TMF keeps in
  ``relatedParty`` (BillingAccount ``customer``) are moved there and back, tagged with
  ``@baseType: "esb:<field>"``.
- Sloppy input (:func:`from_tmf`): a state in the wrong case or spelling (``InProgress``, ``IN_PROGRESS``)
  or a mis-cased ``@type`` is accepted and corrected with a warning; a missing ``@type`` is filled with a
  warning when the entity has one TMF class; a TMF630 sub-class (unknown ``@type``, ``@baseType`` the
  class) is read as the class with a warning; an unknown state or class, or a relatedParty without
  ``@referredType``, is a :class:`TMFConversionError`. Nothing is changed silently.
- TMF's own values are kept: states TMF spells its own way (``"aborted "``, ``"deceaded"``, the SID's
  ``"accepted"``) are read silently and written back TMF's way (``entities.TMF_SPELLINGS``); an ``href``
  that is not a URI reference is kept with a warning.
- Given the project's canonical schemas, :func:`from_tmf` fits the result to them
  (:mod:`esb.model.tmf.fit`): what they have no place for is dropped, each with a warning carrying it.
  docs/canonical-model.md ("TM Forum documents") lists what is kept and what becomes a warning.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from esb.exceptions import MessageError
from esb.model.money import MINOR_UNITS
from esb.model.registry import ModelRegistry
from esb.model.states import MACHINES
from esb.model.tmf.entities import ALIASES, ENTITIES, TMF_SPELLINGS, StateField, TMFEntity
from esb.model.tmf.fit import fit_to_schema, show
from esb.registry import did_you_mean

EXTENSION_SUFFIX = "#tmf-extension"
#: the marker when the hub also added ``@baseType`` (TMF: ``@schemaLocation`` needs ``@baseType``)
EXTENSION_BASETYPE_SUFFIX = "#tmf-extension-b"
SINGLE_PREFIX = "esb_"
CANONICAL_BASE = "https://esb.example/canonical/"
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
#: RFC 3986 URI-reference: only its characters, every % followed by two hex digits
_URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")


#: TMF class name -> its entry (``Individual`` -> party)
_BY_CLASS = {t: e for e in ENTITIES.values() for t in e.tmf_types}


class TMFConversionError(MessageError):
    """A TMF document that cannot be read into the canonical model (unknown state or class, ...)."""

    reason = "tmf-conversion"


def entity_spec(name: str) -> TMFEntity:
    """Return the table entry of ``name``: a canonical entity name, an alias such as ``individual``, or a
    TMF class name such as ``ProductOrder`` or ``LogicalResource``."""
    key = ALIASES.get(name, name).removesuffix(".v1")
    try:
        return ENTITIES[key] if key in ENTITIES else _BY_CLASS[key]
    except KeyError:
        known = sorted({*ENTITIES, *ALIASES})
        raise TMFConversionError(
            f"no TMF mapping for {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}"
        ) from None


def extension_location(spec: TMFEntity, suffix: str = EXTENSION_SUFFIX) -> str:
    """The ``@schemaLocation`` that marks canonical-only fields in a TMF document."""
    return f"{CANONICAL_BASE}{spec.canonical_schema}.schema.json{suffix}"


def _is_money(node: dict[str, Any], value_type: type | tuple[type, ...]) -> bool:
    return (
        set(node) == {"unit", "value"}
        and node["unit"] in MINOR_UNITS
        and isinstance(node["value"], value_type)
    )


def _money_out(node: Any) -> Any:
    if isinstance(node, dict):
        if _is_money(node, str) and _DECIMAL.match(node["value"]):
            return {"unit": node["unit"], "value": Decimal(node["value"])}
        return {k: _money_out(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_money_out(v) for v in node]
    return node


def _money_in(node: Any, path: str, warnings: list[str]) -> Any:
    if isinstance(node, dict):
        if _is_money(node, (int, float, Decimal)) and not isinstance(node["value"], bool):
            value = node["value"]
            if isinstance(value, float):
                warnings.append(f"{path}.value: money {value!r} arrived as a binary float; read as {value!r}")
                value = Decimal(repr(value))
            return {"unit": node["unit"], "value": format(Decimal(value), "f")}
        return {k: _money_in(v, f"{path}.{k}", warnings) for k, v in node.items()}
    if isinstance(node, list):
        return [_money_in(v, f"{path}[{i}]", warnings) for i, v in enumerate(node)]
    return node


def tmf_type_of(spec: TMFEntity, doc: dict[str, Any]) -> str:
    """Return the TMF class of canonical ``doc`` (its ``@type`` when it is one of the entity's classes)."""
    t = doc.get("@type")
    return t if t in spec.tmf_types else spec.tmf_types[0]


def to_tmf(entity: str, canonical: dict[str, Any]) -> dict[str, Any]:
    """Return the TMF v4 form of the canonical document ``canonical`` (money values as Decimal)."""
    spec = entity_spec(entity)
    doc: dict[str, Any] = _money_out(copy.deepcopy(canonical))
    tmf_type = tmf_type_of(spec, doc)
    for src, dst in spec.renames.get(tmf_type, {}).items():
        if src in doc:
            doc[dst] = doc.pop(src)
    for src, role in spec.party_refs.items():
        if src in doc:
            ref = dict(doc.pop(src))
            ref.setdefault("@referredType", "Customer")
            doc.setdefault("relatedParty", []).append({**ref, "role": role, "@baseType": f"esb:{src}"})
    for name in spec.single:
        value = doc.pop(name, None)
        if isinstance(value, list) and len(value) == 1:
            doc[name] = value[0]
        elif value is not None:
            doc[SINGLE_PREFIX + name] = value
    doc.setdefault("@type", tmf_type)
    _tmf_spellings(doc, spec)
    if "@schemaLocation" not in doc:
        if "@baseType" in doc:
            doc["@schemaLocation"] = extension_location(spec)
        else:
            doc["@baseType"] = tmf_type
            doc["@schemaLocation"] = extension_location(spec, EXTENSION_BASETYPE_SUFFIX)
    return doc


def from_tmf(
    entity: str, tmf: dict[str, Any], model: ModelRegistry | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Return the canonical form of TMF document ``tmf`` and the warnings about what was corrected.

    With ``model`` (the project's canonical schemas), the result is also fitted to the canonical schema
    (:func:`~esb.model.tmf.fit.fit_to_schema`): fields and values it cannot hold are dropped and the
    fields it requires but the document lacks are named, each with a warning.
    """
    spec = entity_spec(entity)
    if not isinstance(tmf, dict):
        raise TMFConversionError(
            f"{spec.entity}: a TMF document must be a JSON object, got {type(tmf).__name__}"
        )
    warnings: list[str] = []
    doc: dict[str, Any] = _money_in(copy.deepcopy(tmf), "$", warnings)
    tmf_type = _check_type(spec, entity, doc, warnings)
    location = doc.get("@schemaLocation")
    if location == extension_location(spec):
        del doc["@schemaLocation"]
    elif location == extension_location(spec, EXTENSION_BASETYPE_SUFFIX):
        del doc["@schemaLocation"]
        doc.pop("@baseType", None)
    for name in spec.single:
        if SINGLE_PREFIX + name in doc:
            doc[name] = doc.pop(SINGLE_PREFIX + name)
        elif isinstance(doc.get(name), dict):
            doc[name] = [doc[name]]
    for src, dst in spec.renames.get(tmf_type, {}).items():
        if dst in doc:
            doc[src] = doc.pop(dst)
    for other, name in spec.read_as.items():
        if other in doc and name not in doc:
            warnings.append(f"$.{other}: read as {name!r} (the name the canonical model and TMF API use)")
            doc[name] = doc.pop(other)
    _party_refs_in(spec, doc)
    _check_related_parties(doc, "$", warnings)
    _check_hrefs(doc, "$", warnings)
    for sf in spec.states:
        _normalise_states(doc, sf, warnings)
    if model is not None:
        warnings.extend(fit_to_schema(doc, model, spec.canonical_schema))
    return doc, warnings


def _check_type(spec: TMFEntity, asked: str, doc: dict[str, Any], warnings: list[str]) -> str:
    given = doc.get("@type")
    if given is None:
        wanted = [t for t in spec.tmf_types if t.lower() == asked.lower()] or list(spec.tmf_types)
        if len(wanted) > 1:
            raise TMFConversionError(
                f"{spec.entity}: @type is missing; say which TMF class it is: {', '.join(spec.tmf_types)}"
            )
        warnings.append(f"$.@type: missing; assumed {wanted[0]!r}")
        doc["@type"] = wanted[0]
        return wanted[0]
    if given in spec.tmf_types:
        return str(given)
    for t in spec.tmf_types:
        if isinstance(given, str) and given.lower() == t.lower():
            warnings.append(f"$.@type: {given!r} read as {t!r}")
            doc["@type"] = t
            return t
    base = doc.get("@baseType")
    if isinstance(given, str) and given not in _BY_CLASS and base in spec.tmf_types:
        warnings.append(f"$.@type: {given!r} is a sub-class of {base!r} (its @baseType); read as {base!r}")
        doc["@type"] = base
        return str(base)
    hint, expected = did_you_mean(str(given), spec.tmf_types), ", ".join(spec.tmf_types)
    raise TMFConversionError(
        f"{spec.entity}: @type {given!r} is not a {spec.api} class{hint}; expected {expected}"
    )


def _party_refs_in(spec: TMFEntity, doc: dict[str, Any]) -> None:
    parties = doc.get("relatedParty")
    if not spec.party_refs or not isinstance(parties, list):
        return
    moved = False
    for src in spec.party_refs:
        for i, party in enumerate(parties):
            if isinstance(party, dict) and party.get("@baseType") == f"esb:{src}":
                ref = {k: v for k, v in party.items() if k not in ("@baseType", "role")}
                doc[src] = ref
                del parties[i]
                moved = True
                break
    if moved and not parties:  # the list only carried the moved refs (an empty list that came stays)
        del doc["relatedParty"]


def _check_related_parties(node: Any, path: str, warnings: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "relatedParty" and isinstance(value, list):
                for i, party in enumerate(value):
                    if isinstance(party, dict) and "@referredType" not in party:
                        raise TMFConversionError(
                            f"{path}.relatedParty[{i}]: @referredType is missing (Individual, Organization, "
                            f"Customer, PartyRole...): TMF requires it and the hub will not guess it"
                        )
            _check_related_parties(value, f"{path}.{key}", warnings)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_related_parties(item, f"{path}[{i}]", warnings)


def _is_uri_reference(text: str) -> bool:
    """True when ``text`` is an RFC 3986 URI reference: its characters, and a port made of digits."""
    if not _URI_REFERENCE.match(text):
        return False
    try:
        urlsplit(text).port  # noqa: B018 - raises ValueError for https://host:port/...
    except ValueError:
        return False
    return True


def _check_hrefs(node: Any, path: str, warnings: list[str]) -> None:
    """Warn about every ``href`` that is not a URI reference (kept as it came: TMF's href is any string)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "href" and isinstance(value, str) and not _is_uri_reference(value):
                warnings.append(
                    f"{path}.href: {show(value)} is not a URI reference (RFC 3986); kept as it came"
                )
            _check_hrefs(value, f"{path}.{key}", warnings)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_hrefs(item, f"{path}[{i}]", warnings)


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).lower()


def _normalise_state(obj: dict[str, Any], sf: StateField, path: str, warnings: list[str]) -> None:
    value = obj.get(sf.field)
    if not isinstance(value, str):
        return  # absent, or not text: the canonical schema (fit_to_schema) says what to do with it
    states = MACHINES[sf.machine].states
    if value in states:
        return
    tmf_spelling = {t: c for c, t in TMF_SPELLINGS.get(sf.machine, {}).items()}
    if value in tmf_spelling:
        obj[sf.field] = tmf_spelling[value]  # TMF's own value, spelt as TMF publishes it: no warning
        return
    for state in states:
        if _squash(value) == _squash(state):
            warnings.append(f"{path}.{sf.field}: {value!r} read as {state!r}")
            obj[sf.field] = state
            return
    if not sf.tmf_enum:
        del obj[sf.field]
        warnings.append(
            f"{path}.{sf.field}: {value!r} is not a {sf.machine} state; dropped "
            f"(expected one of {', '.join(states)})"
        )
        return
    raise TMFConversionError(
        f"{path}.{sf.field}: {value!r} is not a {sf.machine} state{did_you_mean(value, states)}; "
        f"expected one of {', '.join(states)}"
    )


def _state_holders(doc: dict[str, Any], sf: StateField) -> Iterator[tuple[dict[str, Any], str]]:
    """Yield every object of ``doc`` that holds state field ``sf``, with its path."""
    if sf.within is None:
        yield doc, "$"
        return

    def walk(node: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == sf.within and isinstance(value, dict):
                    yield value, f"{path}.{key}"
                elif key == sf.within and isinstance(value, list):
                    for i, item in enumerate(value):
                        if isinstance(item, dict):
                            yield item, f"{path}.{key}[{i}]"
                yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                yield from walk(item, f"{path}[{i}]")

    yield from walk(doc, "$")


def _normalise_states(doc: dict[str, Any], sf: StateField, warnings: list[str]) -> None:
    for holder, path in list(_state_holders(doc, sf)):
        _normalise_state(holder, sf, path, warnings)


def _tmf_spellings(doc: dict[str, Any], spec: TMFEntity) -> None:
    """Write the states TMF spells its own way (``aborted`` -> ``"aborted "``) as TMF publishes them."""
    for sf in spec.states:
        spelling = TMF_SPELLINGS.get(sf.machine, {})
        for holder, _ in list(_state_holders(doc, sf)):
            value = holder.get(sf.field)
            if isinstance(value, str) and value in spelling:
                holder[sf.field] = spelling[value]


def dumps(doc: Any, *, indent: int | None = 2) -> str:
    """JSON text of a TMF document, Decimals written as exact JSON numbers (``12.50``, never via float)."""
    marks: list[str] = []

    def default(value: Any) -> str:
        if isinstance(value, Decimal):
            marks.append(format(value, "f"))
            return f"\x00{len(marks) - 1}\x00"
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")

    text = json.dumps(doc, ensure_ascii=False, indent=indent, default=default)
    return re.sub(r'"\\u0000(\d+)\\u0000"', lambda m: marks[int(m[1])], text)


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as an exact Decimal (so TMF money stays exact)."""
    return json.loads(text, parse_float=Decimal)
