"""Canonical product order at its end -> one flat record of the NCR daily order extract.

Field names are the detail fields of config/layouts/ncr_order_extract.yaml. Free texts go through the
``flat_text`` mapping function (no '|', no line break, writable in GBK: a character GBK lacks refuses this
record alone); times are Beijing time as ``yyyymmddhhmmss``, whatever offset the order carried.
``monthly_fee`` is the sum of the items' recurring prices (tax included, CNY).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from esb.model.money import Money


def _party(order: dict[str, Any], role: str) -> dict[str, Any]:
    for party in order.get("relatedParty") or []:
        if isinstance(party, dict) and party.get("role") == role:
            return party
    return {}


def _monthly_fee(order: dict[str, Any]) -> str:
    total = Decimal("0.00")
    for item in order.get("productOrderItem") or []:
        for price in item.get("itemPrice") or []:
            amount = (price.get("price") or {}).get("taxIncludedAmount")
            if price.get("priceType") == "recurring" and amount is not None:
                fee = Money.from_json(amount)
                if fee.currency != "CNY":
                    raise ValueError(f"item {item.get('id')}: a monthly fee in {fee.currency}, not CNY")
                total += fee.amount
    return str(Money.of(total, "CNY").quantize().amount)


def to_record(order: dict[str, Any], context: Any) -> dict[str, Any]:
    """Project one order onto the extract's columns."""

    def text(value: Any) -> str | None:
        return None if value is None else context.fn("flat_text", value, "|", "gbk")

    def stamp(value: Any) -> str | None:
        return (
            None if value is None else context.fn("format_datetime", value, "%Y%m%d%H%M%S", "Asia/Shanghai")
        )

    items = order.get("productOrderItem") or []
    channel = next((c for c in order.get("channel") or [] if c.get("role") == "sales"), None)
    customer = _party(order, "customer")
    offerings = [str((i.get("productOffering") or {}).get("id")) for i in items if i.get("productOffering")]
    return {
        "order_id": text(order["id"]),
        "state": order["state"],
        "category": text(order.get("category")),
        "channel_id": text((channel or (order.get("channel") or [{}])[0]).get("id")),
        "customer_id": text(customer.get("id")),
        "customer_name": text(customer.get("name")),
        "account_id": text((order.get("billingAccount") or {}).get("id")),
        "order_date": stamp(order.get("orderDate")),
        "completion_date": stamp(order.get("completionDate")),
        "item_count": len(items),
        "offering_ids": text(",".join(offerings)) if offerings else None,
        "description": text(order.get("description")),
        "monthly_fee": _monthly_fee(order),
    }
