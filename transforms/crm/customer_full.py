"""CRM full customer extract record (config/layouts/crm_customer_full.yaml) -> canonical customer."""

from __future__ import annotations

from typing import Any


def to_canonical(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Map one extract record to a canonical customer (the fields a live customer change carries)."""
    party: dict[str, Any] = {"name": body["customer_name"], "@referredType": "Individual"}
    if body.get("id_number"):
        party["individualIdentification"] = [
            {"identificationType": body.get("id_type") or "idCard", "identificationId": body["id_number"]}
        ]
    out: dict[str, Any] = {
        "id": body["customer_id"],
        "@type": "Customer",
        "@schemaVersion": "1",
        "lastUpdate": body["last_update"],
        "name": body["customer_name"],
        "status": body["status"],
        "engagedParty": party,
        "unlisted": body.get("unlisted") == "Y",
    }
    if body.get("segment"):
        out["customerSegment"] = body["segment"]
    if body.get("level"):
        out["customerLevel"] = body["level"]
    return out
