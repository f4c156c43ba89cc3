"""Billing charge record (flat dict from the batch adapter) -> canonical AppliedBillingRate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def to_canonical(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Map one parsed charge record to an AppliedBillingRate."""
    amount = Decimal(body["amount"])
    tax = Decimal(body.get("tax_amount") or "0")
    currency = body.get("currency") or "CNY"
    day = body["charge_date"]
    out: dict[str, Any] = {
        "id": body["charge_id"],
        "@type": "AppliedCustomerBillingRate",
        "@schemaVersion": "1",
        "name": body.get("charge_name") or body["charge_code"],
        "date": f"{day}T00:00:00+08:00",
        "type": "recurring",
        "chargeItemCode": body["charge_code"],
        "isBilled": False,
        "taxIncludedAmount": {"value": f"{amount:.2f}", "unit": currency},
        "taxExcludedAmount": {"value": f"{amount - tax:.2f}", "unit": currency},
        "billingAccount": {"id": body["account_id"], "@referredType": "BillingAccount"},
    }
    if body.get("msisdn"):
        out["subscriber"] = {"id": f"SUB-{body['msisdn']}", "@referredType": "Subscriber"}
    return out
