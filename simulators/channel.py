"""The simulated sales-channel system (渠道): publishes TMF622 ProductOrder JSON on its outbound queue.

:func:`channel_order_scenario` makes a deterministic mix, each message with the outcome the hub must give
it: mostly clean TMF orders; sloppy ones the TMF reader accepts with a journaled warning (a capitalised
state, an upper-case item state, no ``@type``), which must be delivered; and bad ones that must be
dead-lettered (an unknown state, a relatedParty without ``@referredType``, invalid JSON, an order that
breaks the canonical schema). Message ids are ``<run>-channel-<n>``: :data:`ID_MARK` tells them apart
from the CRM's at IOM, which both routes feed.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from esb.message import Message
from esb.model.tmf import dumps
from simulators.crm import NAMES, OFFERS, PlannedMessage
from simulators.order_flows import OrdersToIOMScenario

#: what every message id of this scenario contains (``<run>-channel-000042``)
ID_MARK = "-channel-"
#: canonical channel codes (code list channel_type) the channel system sells through
CHANNELS = [("agent", "社会渠道"), ("app", "掌上营业厅"), ("wechat", "微信"), ("web", "网上营业厅")]

#: slot (index % 20) -> (kind, expected outcome, how to spoil the order); other slots are clean orders
_VARIANTS: dict[int, tuple[str, str]] = {
    3: ("sloppy-state", "delivered"),
    7: ("missing-type", "delivered"),
    11: ("sloppy-item-state", "delivered"),
    5: ("unknown-state", "dead_lettered"),
    9: ("party-without-referred-type", "dead_lettered"),
    13: ("invalid-json", "dead_lettered"),
    17: ("schema-violation", "dead_lettered"),
}


def tmf_order(index: int, rng: random.Random) -> dict[str, Any]:
    """Return a clean TMF622 ProductOrder number ``index`` (1-3 items, prices as Decimals)."""
    channel_id, channel_name = rng.choice(CHANNELS)
    items = []
    for line in range(1, rng.randint(1, 3) + 1):
        offer_id, offer_name, price = rng.choice(OFFERS)
        item: dict[str, Any] = {
            "id": str(line),
            "action": "add",
            "quantity": 1,
            "state": "acknowledged",
            "productOffering": {"id": offer_id, "name": offer_name, "@referredType": "ProductOffering"},
            "itemPrice": [{"priceType": "recurring", "recurringChargePeriod": "month",
                           "price": {"taxIncludedAmount": {"unit": "CNY", "value": Decimal(price)}}}],
        }  # fmt: skip
        if offer_id.startswith("PO-5G"):
            msisdn = f"153{rng.randint(0, 99_999_999):08d}"
            item["product"] = {"productCharacteristic": [{"name": "msisdn", "value": msisdn}]}
        items.append(item)
    return {
        "id": f"QD2026{index:010d}",
        "@type": "ProductOrder",
        "externalId": f"{channel_id.upper()}{20261125000000 + index}",
        "category": "新装",
        "orderDate": f"2026-11-25T{9 + index % 10:02d}:{index % 60:02d}:00+08:00",
        "state": "acknowledged",
        "channel": [
            {"id": channel_id, "name": channel_name, "role": "sales", "@referredType": "SalesChannel"}
        ],
        "relatedParty": [
            {"id": f"CUST-{index % 997:05d}", "name": rng.choice(NAMES), "role": "customer",
             "@referredType": "Customer"},
            {"id": f"AGENT-{index % 37:03d}", "role": "salesAgent", "@referredType": "PartyRole"},
        ],
        "billingAccount": {"id": f"ACCT-{index % 997:06d}", "@referredType": "BillingAccount"},
        "productOrderItem": items,
    }  # fmt: skip


def to_json(order: dict[str, Any]) -> bytes:
    """JSON bytes of ``order``, its Decimal prices written as exact JSON numbers (``199.00``)."""
    return dumps(order, indent=None).encode("utf-8")


def _spoil(kind: str, order: dict[str, Any]) -> bytes:
    """Return the body of ``order`` spoiled as ``kind`` says."""
    if kind == "sloppy-state":
        order["state"] = "Acknowledged"
    elif kind == "missing-type":
        del order["@type"]
    elif kind == "sloppy-item-state":
        order["productOrderItem"][0]["state"] = "ACKNOWLEDGED"
    elif kind == "unknown-state":
        order["state"] = "Submitted"
    elif kind == "party-without-referred-type":
        del order["relatedParty"][0]["@referredType"]
    elif kind == "schema-violation":
        del order["productOrderItem"][0]["productOffering"]  # an 'add' item must name its offering
    body = to_json(order)
    return body[: len(body) // 2] if kind == "invalid-json" else body


def channel_order_scenario(count: int, seed: int = 20261126, run: str = "demo") -> list[PlannedMessage]:
    """Return ``count`` planned channel messages: 16 in 20 delivered (3 of them sloppy), 4 dead-lettered."""
    rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
    planned = []
    for index in range(count):
        order = tmf_order(index, rng)
        kind, expected = _VARIANTS.get(index % 20, ("order", "delivered"))
        body = to_json(order) if kind == "order" else _spoil(kind, order)
        message = Message(body=body, id=f"{run}{ID_MARK}{index:06d}", source="channel")
        planned.append(PlannedMessage(message, kind, expected))
    return planned


class ChannelOrderScenario(OrdersToIOMScenario):
    """Channel orders (TMF622 JSON on the channel queue) to IOM order requests (JSON on the IOM queue)."""

    id_mark = ID_MARK

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan ``count`` channel messages."""
        self.prefix = f"{run}{ID_MARK}"
        return channel_order_scenario(count, run=run)
