"""The simulated Siebel CRM: publishes orders on its outbound queue, as the Siebel EAI JMS transport does.

:func:`order_scenario` makes a deterministic mix of good and bad orders, each with the outcome the hub
must give it, so `esb demo` can prove every message ended as expected.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esb.message import Message
from simulators.siebel import LineItem, SiebelOrder, siebel_order_xml

if TYPE_CHECKING:
    from esb.project import Project

NAMES = [
    "张伟",
    "王芳",
    "李娜",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄晓明",
    "周杰",
    "吴桐",
    "Li Lei",
    "Han Meimei",
]
OFFERS = [
    ("PO-5G-129", "5G畅享套餐129元", "129.00"),
    ("PO-5G-199", "5G畅享套餐199元", "199.00"),
    ("PO-HB-299", "好E家融合套餐299元", "299.00"),
    ("PO-BB-100M", "宽带100M", "50.00"),
    ("PO-VAS-CLIP", "来电显示", "6.00"),
    ("PO-VAS-RBT", "彩铃", "5.00"),
    ("PO-IPTV", "天翼高清IPTV", "20.00"),
]
#: Standard addresses the simulated RIM serves (simulators/rim.py default_inventory).
ADDRESSES = ["浙江省杭州市西湖区文三路90号", "浙江省杭州市西湖区教工路18号", "浙江省宁波市海曙区中山西路2号"]
#: The billing accounts of the CRM's customers (Billing holds them: see ProcessOrderScenario.start).
BILLING_ACCOUNTS = [f"1-BA{n:05d}" for n in range(997)]
CHANNELS = ["Store", "Call Center", "Web", "Mobile App", "Dealer", "WeChat"]
ACTIONS = ["Add", "Add", "Add", "Update", "Delete", "-"]

XXE_ORDER = (
    b'<?xml version="1.0"?>\n<!DOCTYPE SiebelMessage [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<SiebelMessage MessageType="Integration Object" IntObjectName="Order Entry (Sales)">'
    b"&xxe;</SiebelMessage>\n"
)


@dataclass
class PlannedMessage:
    """One message the simulated CRM sends, and how the hub must end it."""

    message: Message
    kind: str
    expected: str  # delivered / filtered / dead_lettered


def make_order(index: int, rng: random.Random) -> SiebelOrder:
    """Return a plausible order number ``index`` (Chinese names, 1-4 lines, XA attributes)."""
    items = []
    for line in range(1, rng.randint(1, 4) + 1):
        offer_id, offer_name, price = rng.choice(OFFERS)
        attributes = (
            {"MSISDN": f"133{rng.randint(0, 99_999_999):08d}"} if offer_id.startswith("PO-5G") else {}
        )
        # a line that needs a broadband port carries where it is installed (an address RIM serves)
        address = ADDRESSES[index % len(ADDRESSES)] if offer_id in ("PO-HB-299", "PO-BB-100M") else ""
        items.append(
            LineItem(
                line,
                rng.choice(ACTIONS),
                offer_id,
                offer_name,
                price,
                attributes=attributes,
                service_address=address,
            )
        )
    return SiebelOrder(
        row_id=f"1-SIM{index:06d}",
        number=f"SO2026{index:010d}",
        account_id=f"1-ACC{index % 997:05d}",
        account_name=rng.choice(NAMES),
        billing_account_id=BILLING_ACCOUNTS[index % len(BILLING_ACCOUNTS)],
        channel=rng.choice(CHANNELS),
        comments="请尽快开通" if index % 3 == 0 else "",
        items=items,
    )


def _variant(index: int, rng: random.Random) -> tuple[bytes, str, str]:
    """Return (body, kind, expected outcome) for message ``index`` of a scenario."""
    order = make_order(index, rng)
    slot = index % 25
    encoding = "GBK" if index % 2 else "UTF-8"
    attributes = index % 4 in (1, 2)
    if slot == 5:
        order.status = "Pending"  # a draft: not for fulfilment, the route filters it
        return siebel_order_xml(order, encoding=encoding), "draft-order", "filtered"
    if slot == 9:
        return siebel_order_xml(order)[:-40], "truncated-xml", "dead_lettered"
    if slot == 13:
        return XXE_ORDER, "xxe-attack", "dead_lettered"
    if slot == 17:
        order.int_object = "Account (PRM ANI)"
        return siebel_order_xml(order), "unknown-message-type", "dead_lettered"
    if slot == 19:
        order.items[0].action = "Upsert"
        return siebel_order_xml(order), "unknown-action-code", "dead_lettered"
    if slot == 23:
        order.items = []
        return siebel_order_xml(order), "order-without-items", "dead_lettered"
    return siebel_order_xml(order, encoding=encoding, attributes=attributes), "order", "delivered"


def order_scenario(count: int, seed: int = 20261125, run: str = "demo") -> list[PlannedMessage]:
    """Return ``count`` planned CRM messages: mostly good orders, a draft, and five kinds of bad input."""
    rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
    planned = []
    for index in range(count):
        body, kind, expected = _variant(index, rng)
        message = Message(
            body=body,
            id=f"{run}-crm-{index:06d}",
            source="crm",
            headers={"SiebelIntObject": "Order Entry (Sales)"},
        )
        planned.append(PlannedMessage(message, kind, expected))
    return planned


class CRMSimulator:
    """Publishes planned messages on the CRM's outbound endpoint through its real adapter."""

    def __init__(self, project: Project, endpoint: str = "crm.orders_out") -> None:
        self.project = project
        self.endpoint = endpoint
        self._sink: Any = None

    def __enter__(self) -> CRMSimulator:
        self._sink = self.project.adapter_for(self.endpoint).sink(
            self.project.endpoint(self.endpoint), self.project.context(self.endpoint)
        )
        self._sink.connect()
        return self

    def send(self, message: Message) -> None:
        """Publish one message."""
        self._sink.write(message)

    def __exit__(self, *exc: object) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
