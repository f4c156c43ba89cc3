"""The sync scenario: the CRM's customer changes reach Billing only when they change what Billing holds.

The simulated CRM publishes "ESB Customer" SiebelMessages on ``crm.customers_out`` (route
crm-customer-to-hub makes them canonical for each sync target). Each customer gets five changes in a row:

| kind | change | what Billing must see |
| --- | --- | --- |
| ``customer-new`` | created, 10:00 | an UPSERT_CUSTOMER |
| ``customer-unchanged`` | 11:00, only its level changed (Billing does not sync it) | nothing (unchanged) |
| ``customer-changed`` | 12:00, a new mobile number | an UPSERT_CUSTOMER |
| ``customer-late`` | 11:30 (older than 12:00), another name, arriving after it | nothing (stale) |
| ``customer-closed`` | 13:00, Closed (已注销) | a DELETE_CUSTOMER |

Every change ends ``delivered`` on crm-customer-to-hub; the scenario counts one as received when Billing
got what the table says, or when customer-sync-billing's journal says it skipped it for the table's
reason. The simulated Billing (a queue consumer of ``billing.customer_sync``) keeps each customer as its
messages leave it, so a late change that got through would show as the wrong final name.
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from esb.journal import Journal
from esb.message import Message
from simulators.crm import NAMES, PlannedMessage
from simulators.receiver import QueueReceiver

if TYPE_CHECKING:
    from esb.project import Project

#: The route that syncs the customers to Billing (run by the demo beside crm-customer-to-hub).
SYNC_ROUTE = "customer-sync-billing"
BILLING_ENDPOINT = "billing.customer_sync"
#: The name the late change carries: Billing must never end with it.
LATE_NAME = "迟到的旧名字"
#: Each customer's changes, in the order sent: kind, Siebel's Updated (Beijing time), what Billing gets.
CHANGES = (
    ("customer-new", "10:00:00", "UPSERT_CUSTOMER"),
    ("customer-unchanged", "11:00:00", "unchanged"),
    ("customer-changed", "12:00:00", "UPSERT_CUSTOMER"),
    ("customer-late", "11:30:00", "stale"),
    ("customer-closed", "13:00:00", "DELETE_CUSTOMER"),
)


def siebel_customer(csn: str, name: str, updated: str, *, status: str = "Active", phone: str = "13800138000",
                    level: str = "3星") -> bytes:  # fmt: skip
    """Return an "ESB Customer" SiebelMessage for one customer change (Updated as MM/DD/YYYY HH:MM:SS)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<SiebelMessage MessageId="{escape(csn)}-M" MessageType="Integration Object" IntObjectName="ESB Customer"
    IntObjectFormat="Siebel Hierarchical">
  <ListOfESB_spcCustomer><Account>
    <Id>1-{escape(csn[-6:])}</Id><CSN>{escape(csn)}</CSN><Name>{escape(name)}</Name><Status>{status}</Status>
    <Customer_spcSegment>Residential</Customer_spcSegment><Customer_spcLevel>{escape(level)}</Customer_spcLevel>
    <Party_spcId>PTY-{escape(csn)}</Party_spcId><Party_spcType>Individual</Party_spcType>
    <Main_spcPhone_spcNumber>{phone}</Main_spcPhone_spcNumber>
    <Updated>{updated}</Updated>
  </Account></ListOfESB_spcCustomer>
</SiebelMessage>
""".encode()


def _accept(body: bytes) -> str | None:
    """What the simulated Billing refuses: not JSON, or no op / custId / version."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "not JSON"
    if doc.get("op") not in ("UPSERT_CUSTOMER", "DELETE_CUSTOMER"):
        return f"unknown op {doc.get('op')!r}"
    missing = [k for k in ("custId", "version") if not doc.get(k)]
    return f"missing {', '.join(missing)}" if missing else None


class CustomerSyncScenario:
    """CRM customer changes through crm-customer-to-hub and customer-sync-billing to Billing."""

    #: Routes the demo runs beside this one: they consume what it delivers, and their result is checked.
    downstream = (SYNC_ROUTE,)

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        self.source = project.route(route_id).from_
        self.billing = QueueReceiver(project, BILLING_ENDPOINT, _accept)
        self.expected: dict[str, tuple[str, str, str]] = {}  # message id -> (kind, customer, expected)
        self._journal: Journal | None = None

    def start(self) -> None:
        """Start the simulated Billing's customer sync consumer."""
        self.billing.start()
        self.billing.ready.wait(10)

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """``count`` changes: each customer's five in a row (the last customer may get fewer)."""
        planned = []
        for index in range(count):
            number, step = divmod(index, len(CHANGES))
            kind, clock, billing_gets = CHANGES[step]
            csn = f"CUST-{run}-{number:05d}"
            name = LATE_NAME if kind == "customer-late" else NAMES[zlib.crc32(csn.encode()) % len(NAMES)]
            body = siebel_customer(
                csn,
                name,
                f"12/06/2026 {clock}",
                status="Closed" if kind == "customer-closed" else "Active",
                phone="13900139000" if kind in ("customer-changed", "customer-closed") else "13800138000",
                level="4星" if kind == "customer-unchanged" else "3星",
            )
            message = Message(body=body, id=f"{run}-cust-{index:06d}")
            self.expected[message.id] = (kind, csn, billing_gets)
            planned.append(PlannedMessage(message, kind, "delivered"))
        return planned

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish the changes on the CRM's customer queue, in order."""
        config = self.project.endpoint(self.source)
        sink = self.project.adapter_for(self.source).sink(config, self.project.context(self.source))
        with sink:
            for item in planned:
                sink.write(item.message)

    def received(self) -> int:
        """Changes that ended as the table says: Billing got the right op, or the sync skipped them."""
        return sum(1 for mid in self.expected if self._check(mid) is None)

    def problems(self) -> list[str]:
        """Each change that reached Billing when it should not have (or not as it should)."""
        found = [problem for mid in self.expected if (problem := self._check(mid, final=True))]
        found.extend(self.billing.malformed)
        if self.billing.duplicates:
            found.append(f"{self.billing.duplicates} duplicate customer sync messages at Billing")
        return found

    def _check(self, message_id: str, *, final: bool = False) -> str | None:
        """None when the change ended as planned; else what is wrong (or, before the end, not yet)."""
        kind, csn, billing_gets = self.expected[message_id]
        body = self.billing.received.get(message_id)
        if billing_gets.endswith("_CUSTOMER"):
            if body is None:
                return f"{message_id} ({kind}, {csn}): Billing got no {billing_gets}" if final else "pending"
            op = json.loads(body).get("op")
            return (
                None if op == billing_gets else f"{message_id} ({kind}): Billing got {op}, not {billing_gets}"
            )
        if body is not None:
            return f"{message_id} ({kind}, {csn}): reached Billing, should have been skipped ({billing_gets})"
        skipped = self._skipped(message_id)
        if skipped == billing_gets:
            return None
        return (
            f"{message_id} ({kind}): skipped as {skipped!r}, expected {billing_gets!r}"
            if final
            else "pending"
        )

    def _skipped(self, message_id: str) -> str | None:
        """Why customer-sync-billing skipped the change (the journal's filtered detail), or None."""
        if self._journal is None:
            self._journal = Journal(self.project.settings.journal.url)
            self._journal.connect()
        for event in self._journal.history(message_id):
            if event.route == SYNC_ROUTE and event.state == "filtered" and event.detail:
                skipped: Any = event.detail.get("skipped")
                return str(skipped)
        return None

    def stop(self) -> None:
        """Stop the consumer and close the journal."""
        self.billing.stop()
        self.billing.join(5)
        if self._journal is not None:
            self._journal.close()
