"""NCR customer extract record (config/layouts/ncr_customer_extract.yaml) -> canonical customer.

The reverse of customer_extract.py, for reconciling NCR's extract with what the hub sent it.
"""

from __future__ import annotations

from typing import Any


def to_canonical(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Map one NCR extract record back to the canonical customer fields it carries."""
    party: dict[str, Any] = {"name": body["customer_name"], "@referredType": "Individual"}
    if body.get("id_number"):
        party["individualIdentification"] = [
            {"identificationType": body.get("id_type") or "idCard", "identificationId": body["id_number"]}
        ]
    out: dict[str, Any] = {
        "id": body["customer_id"],
        "@type": "Customer",
        "name": body["customer_name"],
        "status": body.get("status"),
        "engagedParty": party,
    }
    if body.get("updated_at"):
        out["lastUpdate"] = body["updated_at"]
    if body.get("segment"):
        out["customerSegment"] = body["segment"]
    if body.get("level"):
        out["customerLevel"] = body["level"]
    return out
