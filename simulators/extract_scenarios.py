"""Scenarios for the outbound extracts: the channel system's commission file, NCR's order and ticket extracts.

Each plans messages as the processes send them at an order's or a ticket's end (on the routes' feed
queues), a few of which must be filtered or dead-lettered, publishes them, and then plays the receiver: it
reads the files the hub wrote into the endpoint's local exchange folder (a done file beside each) and
counts the planned orders or tickets found there, each once. The demo flushes these endpoints at every
record (``DEMO_ENVIRONMENT``), so that no record waits for the nightly schedule.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.batch.config import BatchEndpoint
from esb.message import Message
from simulators.crm import NAMES, PlannedMessage

if TYPE_CHECKING:
    from esb.project import Project

#: The environment that makes these endpoints write a file per record (the demo's, not make run's).
FLUSH_EVERY_RECORD = {
    "ESB_CHANNEL_COMMISSIONS_MAX_RECORDS": "1",
    "ESB_NCR_ORDERS_MAX_RECORDS": "1",
    "ESB_NCR_TICKETS_MAX_RECORDS": "1",
}
#: Channel partners of transforms/tables/channel_partner.yaml, and a shop of the operator's own.
PARTNERS = ("CP-MO-001", "CP-HK-002", "CP-HK-003", "CP-GD-010")
OWN_SHOP = "CH-GZ-TH-001"
SAMPLE_ORDER = Path("tests") / "routes" / "samples" / "partner_order_completed.json"


def _folder(project: Project, endpoint: str) -> Path:
    config = project.endpoint(endpoint)
    assert isinstance(config, BatchEndpoint), f"{endpoint} is not a batch endpoint"
    if config.remote.protocol != "local":
        raise RuntimeError(f"the demo needs {endpoint} on a local folder, not {config.remote.protocol}")
    path = Path(config.remote.path)
    return path if path.is_absolute() else project.root / path


class _ExtractScenario:
    """Publish planned messages on the route's feed; count the planned keys found in its files."""

    key_column = 1  # the detail column holding the order or ticket id
    file_glob = "*"

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        route = project.route(route_id)
        self.source = route.from_
        self.target = route.destinations()[0]
        self.keys: set[str] = set()  # the ids that must be found in the files
        self.seen: Counter[str] = Counter()

    def start(self) -> None:
        """Nothing to start: the receiver reads files."""

    def _body(self, index: int, run: str) -> tuple[dict[str, Any], str, str]:
        """One planned body, its kind and expected end (subclasses)."""
        raise NotImplementedError

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan ``count`` messages; the delivered ones' ids are what the receiver must find."""
        planned = []
        for index in range(count):
            body, kind, expected = self._body(index, run)
            if expected == "delivered":
                self.keys.add(str(body["id"]))
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
            planned.append(PlannedMessage(Message(body=raw, id=f"{run}-{kind}-{index:06d}"), kind, expected))
        return planned

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish the messages on the feed queue, as the processes do."""
        config = self.project.endpoint(self.source)
        sink = self.project.adapter_for(self.source).sink(config, self.project.context(self.source))
        with sink:
            for item in planned:
                sink.write(item.message)

    def _read(self) -> Counter[str]:
        """Records per planned id in the complete files (a done file beside each), read as the receiver."""
        folder = _folder(self.project, self.target)
        encoding = self.project.endpoint(self.target).encoding
        codec = "gb18030" if encoding.lower() in ("gbk", "gb2312", "cp936") else encoding
        found: Counter[str] = Counter()
        for done in sorted(folder.glob(f"{self.file_glob}.ok")) if folder.exists() else []:
            for line in done.with_suffix("").read_bytes().decode(codec).split("\r\n"):
                fields = line.split("|")
                if fields[0] == "D" and fields[self.key_column] in self.keys:
                    found[fields[self.key_column]] += 1
        return found

    def received(self) -> int:
        """Planned orders or tickets found in the files."""
        self.seen = self._read()
        return len(self.seen)

    def problems(self) -> list[str]:
        """Planned ids found more often than they should be."""
        return [f"{key} is in the files {n} times" for key, n in self.seen.items() if n > self._expected(key)]

    def _expected(self, key: str) -> int:
        return 1

    def stop(self) -> None:
        """Nothing to stop."""


class CommissionScenario(_ExtractScenario):
    """Completed partner orders earn commissions; the channel system finds each in its commission file.

    Each good order has two commissioned items (a 好E家 bundle and a 5G plan; its third item, a removal,
    earns nothing); every 7th order is from the operator's own shop (filtered), every 11th completed before
    the partners' pataca rate existed (dead-lettered: no CNY->MOP rate on that date).
    """

    key_column = 2
    file_glob = "*_COMM_*"

    def __init__(self, project: Project, route_id: str) -> None:
        super().__init__(project, route_id)
        self.template = json.loads((project.root / SAMPLE_ORDER).read_text(encoding="utf-8"))

    def _body(self, index: int, run: str) -> tuple[dict[str, Any], str, str]:
        order = copy.deepcopy(self.template)
        order["id"] = f"PO-{run}-{index:06d}"
        order["relatedParty"][0]["name"] = NAMES[index % len(NAMES)]
        partner = PARTNERS[index % len(PARTNERS)]
        kind, expected = "partner-order", "delivered"
        if index % 7 == 3:
            partner, kind, expected = OWN_SHOP, "own-shop-order", "filtered"
        elif index % 11 == 5:
            partner, kind, expected = "CP-MO-001", "order-before-mop-rate", "dead_lettered"
            order["completionDate"] = "2024-12-31T23:30:00+08:00"
        order["channel"] = [{"id": partner, "role": "sales", "@referredType": "SalesChannel"}]
        return order, kind, expected

    def _expected(self, key: str) -> int:
        return 2


class NCROrderExtractScenario(_ExtractScenario):
    """Orders at their end (completed, failed, cancelled) reach NCR's order extract once each; every 9th
    breaks the canonical schema (dead-lettered)."""

    file_glob = "*_ORDER_*"

    def __init__(self, project: Project, route_id: str) -> None:
        super().__init__(project, route_id)
        self.template = json.loads((project.root / SAMPLE_ORDER).read_text(encoding="utf-8"))

    def _body(self, index: int, run: str) -> tuple[dict[str, Any], str, str]:
        order = copy.deepcopy(self.template)
        order["id"] = f"PO-{run}-{index:06d}"
        order["relatedParty"][0]["name"] = NAMES[index % len(NAMES)]
        order["state"] = ("completed", "completed", "failed", "cancelled")[index % 4]
        if index % 9 == 4:
            order["state"] = "finished"  # not a TMF622 state: schema violation
            return order, "invalid-order", "dead_lettered"
        return order, f"{order['state']}-order", "delivered"


class NCRTicketExtractScenario(_ExtractScenario):
    """Resolved tickets reach NCR's ticket extract once each; some were completed late."""

    file_glob = "*_TICKET_*"

    def _body(self, index: int, run: str) -> tuple[dict[str, Any], str, str]:
        late = index % 5 == 2
        ticket = {
            "id": f"TT-{run}-{index:06d}",
            "@type": "TroubleTicket",
            "status": "resolved",
            "severity": ("critical", "major", "minor")[index % 3],
            "accessNumber": f"ad0571{88000000 + index}",
            "faultCategory": "no_service",
            "creationDate": "2026-01-05T09:00:00+08:00",
            "resolutionDate": "2026-01-05T18:30:00+08:00" if late else "2026-01-05T15:00:00+08:00",
            "relatedParty": [{"id": "hz", "role": "serviceRegion", "@referredType": "Organization"}],
            "dispatch": {"team": "hz-fiber", "skill": "fiber", "deadline_hours": 8},
            "assignment": {
                "workOrderId": f"WO-{run}-{index:06d}",
                "technicianId": "T-7",
                "dueAt": "2026-01-05T17:00:00+08:00",
            },
            "completion": {
                "resolution": "更换光猫|重新熔接" if late else "远程复位",
                "completedAt": "2026-01-05T18:30:00+08:00" if late else "2026-01-05T15:00:00+08:00",
            },
        }
        return ticket, "late-ticket" if late else "resolved-ticket", "delivered"
