"""CRM full customer extract record (config/layouts/crm_customer_full.yaml) -> canonical customer.

It must give the canonical customer that crm/siebel_customer_to_canonical gives for the same customer
(the same code tables, the same shapes): a full resync compares its content hashes with those the live
changes left, so any difference here would resend every customer.
"""

from __future__ import annotations

from typing import Any

STATUS = {"Prospect": "prospective", "Active": "active", "Inactive": "inactive", "Closed": "closed"}
SEGMENT = {"Residential": "residential", "SME": "sme", "Enterprise": "enterprise", "Government": "government"}
PARTY_TYPE = {"Individual": "Individual", "Organization": "Organization"}


def _clean(text: str | None) -> str | None:
    return " ".join(text.split()) if text else None


def to_canonical(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Map one extract record to the canonical customer a live change of it would give."""
    name = _clean(body["name"])
    out: dict[str, Any] = {
        "@type": "Customer",
        "@schemaVersion": "1",
        "id": body["csn"].strip(),
        "lastUpdate": body["updated"],
        "externalReference": [{"id": body["row_id"].strip(), "externalReferenceType": "siebel"}],
        "name": name,
        "status": STATUS.get((body.get("status") or "Active").strip()),
        "engagedParty": {
            "id": body["party_id"].strip(),
            "name": name,
            "@referredType": PARTY_TYPE.get((body.get("party_type") or "Individual").strip()),
        },
    }
    if body.get("segment"):
        out["customerSegment"] = SEGMENT.get(body["segment"].strip())
    if body.get("level"):
        out["customerLevel"] = _clean(body["level"])
    phone = _clean(body.get("main_phone"))
    if phone:
        out["contactMedium"] = [{"mediumType": "mobile", "preferred": True, "characteristic": {"phoneNumber": phone}}]
    if body.get("billing_account_id"):
        out["account"] = [{"id": body["billing_account_id"].strip(), "@referredType": "BillingAccount"}]
    if body.get("unlisted") == "Y":
        out["unlisted"] = True
    return out
