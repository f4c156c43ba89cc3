"""Canonical customer -> flat NCR customer extract record (field names of the layout's detail record)."""

from __future__ import annotations

from typing import Any


def _first_identification(party: dict[str, Any]) -> dict[str, Any]:
    for key in ("individualIdentification", "organizationIdentification", "identification"):
        items = party.get(key)
        if isinstance(items, list) and items:
            return dict(items[0])
    return {}


def to_record(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Project one customer onto the extract's columns."""
    party = body.get("engagedParty") or {}
    ident = _first_identification(party)
    return {
        "customer_id": body["id"],
        "customer_name": body.get("name") or party.get("name") or "",
        "status": body.get("status"),
        "segment": body.get("customerSegment"),
        "level": body.get("customerLevel"),
        "id_type": ident.get("identificationType"),
        "id_number": ident.get("identificationId"),
        "updated_at": body.get("lastUpdate"),
    }
