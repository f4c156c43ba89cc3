"""TMF events (TMF622 notifications) and the listeners' queries that select them.

An event is ``{eventId, eventTime, eventType, correlationId, event: {<kind>: <resource>}}``, with
``eventType`` ``<Class>CreateEvent`` (the route accepted a POSTed resource: ``ProductOrderCreateEvent``,
``CancelProductOrderCreateEvent``) or ``<Class>StateChangeEvent`` (its state changed). A listener's
``query`` (TMF630 notation) is ``name=value[,value...]`` terms joined by ``&``, each a dotted path in
the event (``eventType``, ``event.productOrder.state``); an event matches when every term does. No
query: every event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from esb.message import new_id

CREATE = "CreateEvent"
STATE_CHANGE = "StateChangeEvent"


def event_type(kind: str, what: str) -> str:
    """``ProductOrderCreateEvent`` for kind ``productOrder`` and ``CreateEvent``."""
    return kind[0].upper() + kind[1:] + what


def make_event(kind: str, what: str, resource: dict[str, Any], correlation_id: str | None) -> dict[str, Any]:
    """Return a new TMF event announcing ``resource`` (a ``CreateEvent`` or ``StateChangeEvent``)."""
    return {
        "eventId": new_id(),
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventType": event_type(kind, what),
        "correlationId": correlation_id,
        "event": {kind: resource},
    }


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def check_query(query: str | None) -> str | None:
    """Return why ``query`` is not a usable listener query, or None."""
    if not query:
        return None
    try:
        terms = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return f"query {query!r} is not name=value terms joined by '&'"
    if any(not name for name, _ in terms):
        return f"query {query!r} has a term without a name"
    return None


def matches(query: str | None, event: dict[str, Any]) -> bool:
    """True when ``event`` satisfies every term of ``query`` (no query: every event)."""
    if not query:
        return True
    for name, value in parse_qsl(query, keep_blank_values=True):
        found = _at(event, name)
        if str(found) not in value.split(","):
            return False
    return True
