"""What the TMF resources accept and how they are shown: request bodies, ids, hrefs, filters, fields, pages.

Pure functions of bytes and dicts (no HTTP, no store), each refusing with a :class:`Refusal` that says
what is wrong: the WSGI side (``app.py``) only wires them together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from adapters.rest.errors import Refusal
from adapters.rest.schema import TMFValidator
from esb.message import new_id

#: Each served resource's schema (folder/Class under the TMF schema folder).
SCHEMAS = {"productOrder": "Customer/ProductOrder", "cancelProductOrder": "Product/CancelProductOrder"}
#: Attributes every projection keeps (TMF630: ``fields`` never hides the identity of a resource).
ALWAYS = ("id", "href", "@type")
#: Query parameters that are not attribute filters.
CONTROL = frozenset({"fields", "offset", "limit", "sort"})
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_NAME = re.compile(r"^[A-Za-z@][A-Za-z0-9@_]*(\.[A-Za-z@][A-Za-z0-9@_]*)*$")
_JSON_TYPES = ("application/json", "application/merge-patch+json")


def validator(kind: str, schemas: Path) -> TMFValidator:
    """Return the (reusable) validator of resource ``kind`` over the schema folder ``schemas``."""
    return TMFValidator(SCHEMAS[kind], schemas)


def check_content_type(value: str | None) -> None:
    """Refuse (415) a body that does not say it is JSON."""
    media = (value or "").split(";", 1)[0].strip().lower()
    if media not in _JSON_TYPES and not media.endswith("+json"):
        raise Refusal(
            415, "415", f"send JSON (Content-Type: application/json), not {media or 'nothing'!r}",
            audit="wrong_content_type",
        )  # fmt: skip


def parse_document(data: bytes) -> dict[str, Any]:
    """Return the JSON object in ``data``; 400 when it is not JSON or not an object."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Refusal(400, "400", f"malformed JSON: {exc}", audit="malformed") from None
    if not isinstance(doc, dict):
        raise Refusal(400, "400", "the body must be a JSON object", audit="malformed")
    return doc


def check_schema(kind: str, doc: dict[str, Any], checker: TMFValidator | None) -> None:
    """Refuse (400, with each error's JSON path) a document that breaks the resource's TMF schema."""
    if checker is None:
        return
    errors = checker.errors(doc)
    if errors:
        shown = "; ".join(f"{path}: {text}" for path, text in errors[:3])
        raise Refusal(
            400, "400", f"the body does not match the TMF {SCHEMAS[kind]} schema: {shown}",
            audit="schema_violation", errors=errors,
        )  # fmt: skip


def with_id(data: bytes, doc: dict[str, Any]) -> tuple[str, bytes]:
    """Return the resource's id and the bytes the route gets: the client's bytes as they are when it gave
    an id, else the same bytes with a new ``"id"`` written first (nothing else re-encoded)."""
    if "id" in doc:
        given = doc["id"]
        if not isinstance(given, str):
            raise Refusal(400, "400", "id: must be a string", audit="bad_payload")
        return check_id(given), data
    ident = new_id()
    head = data.lstrip()[1:]  # after the opening brace of an object
    sep = b"" if head.lstrip().startswith(b"}") else b","
    return ident, b'{"id":' + orjson.dumps(ident) + sep + head


def class_name(kind: str) -> str:
    """The TMF class of a served resource: ``CancelProductOrder`` for ``cancelProductOrder``."""
    return kind[0].upper() + kind[1:]


def created(kind: str, doc: dict[str, Any], ident: str, href: str) -> dict[str, Any]:
    """The resource as the hub keeps and shows it: the client's attributes, its id and href, and the
    state a new order or cancel request starts in (``acknowledged``, TMF622's spelling of both)."""
    return {**doc, "id": ident, "href": href, "@type": doc.get("@type") or class_name(kind),
            "state": "acknowledged"}  # fmt: skip


def check_id(ident: str) -> str:
    """Refuse (400) an id that cannot be one (empty, too long, control characters)."""
    if not ident or len(ident) > 200 or any(ord(c) < 32 for c in ident):
        raise Refusal(400, "400", "invalid resource id", audit="malformed")
    return ident


def list_query(query_string: str) -> tuple[dict[str, str], list[str] | None, int, int]:
    """Return (attribute filters, fields or None, offset, limit) of a list request; 400 when unusable."""
    filters: dict[str, str] = {}
    fields: list[str] | None = None
    offset, limit = 0, DEFAULT_LIMIT
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        if name == "fields":
            fields = [f.strip() for f in value.split(",") if f.strip()]
            bad = [f for f in fields if not _NAME.match(f)]
            if bad:
                raise Refusal(400, "400", f"fields: {bad[0]!r} is not an attribute name", audit="bad_query")
        elif name in ("offset", "limit"):
            number = _count(name, value)
            offset, limit = (number, limit) if name == "offset" else (offset, number)
        elif name not in CONTROL:
            if not _NAME.match(name):
                raise Refusal(400, "400", f"{name!r} is not an attribute to filter on", audit="bad_query")
            filters[name] = value
    if limit < 1 or limit > MAX_LIMIT:
        raise Refusal(400, "400", f"limit must be 1..{MAX_LIMIT}", audit="bad_query")
    return filters, fields, offset, limit


def _count(name: str, value: str) -> int:
    if not value.isdigit():
        raise Refusal(400, "400", f"{name} must be a whole number, not {value!r}", audit="bad_query")
    return int(value)


def project(doc: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Return ``doc`` with only the top-level attributes ``fields`` names (and its identity)."""
    if fields is None:
        return doc
    keep = set(ALWAYS) | {f.split(".", 1)[0] for f in fields}
    return {k: v for k, v in doc.items() if k in keep}


def hub_request(doc: dict[str, Any]) -> tuple[str, str | None]:
    """Return (callback, query) of an event-hub registration; 400 when the callback is not http(s)."""
    from urllib.parse import urlsplit

    from adapters.rest.events import check_query

    callback = doc.get("callback")
    query = doc.get("query")
    if not isinstance(callback, str) or len(callback) > 2000:
        raise Refusal(400, "400", "callback: give the listener's URL", audit="bad_payload")
    parts = urlsplit(callback)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refusal(400, "400", "callback: must be an http(s) URL with a host", audit="bad_payload")
    if query is not None and not isinstance(query, str):
        raise Refusal(400, "400", "query: must be a string (name=value&...)", audit="bad_payload")
    problem = check_query(query)
    if problem:
        raise Refusal(400, "400", problem, audit="bad_payload")
    return callback, query or None
