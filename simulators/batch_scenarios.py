"""Scenarios for the batch flows: Billing's charge files in, the NCR warehouse's customer extract out.

Billing drops a GBK fixed-width charge file and its done file in the exchange folder the hub polls; the
records must reach the canonical charges queue once each. Canonical customers are fed to the NCR feed
queue; the hub writes them into '|'-delimited GBK extract files (flushed every
``ESB_NCR_MAX_RECORDS`` records in the demo) which the simulated warehouse reads back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.batch.config import BatchEndpoint
from esb.message import Message
from simulators.batch_files import write_charge_file
from simulators.crm import NAMES, PlannedMessage
from simulators.receiver import QueueReceiver

if TYPE_CHECKING:
    from esb.project import Project

#: Extract files are flushed every this many records in the demo (the scenario plans whole files).
NCR_FILE_RECORDS = 10


def _remote_folder(project: Project, endpoint: str) -> Path:
    """The local exchange folder of a batch endpoint (``remote.protocol: local``)."""
    config = project.endpoint(endpoint)
    assert isinstance(config, BatchEndpoint), f"{endpoint} is not a batch endpoint"
    remote = config.remote
    if remote.protocol != "local":
        raise RuntimeError(f"the demo needs {endpoint} on a local folder, not {remote.protocol}")
    path = Path(remote.path)
    return path if path.is_absolute() else project.root / path


class BillingChargesScenario:
    """Billing sends one charge file of N records; each becomes one canonical message downstream."""

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        route = project.route(route_id)
        self.source = route.from_
        self.receiver = QueueReceiver(project, route.destinations()[0])
        self.file: Path | None = None
        self.prefix = ""

    def start(self) -> None:
        """Start the downstream consumer."""
        self.receiver.start()
        self.receiver.ready.wait(10)

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Write the charge file (GBK, fixed width) aside; its records' ids follow from its SHA-256."""
        folder = Path(tempfile.mkdtemp(prefix="esb-demo-charges-"))
        self.file = folder / f"CHG_571_20240531_{zlib.crc32(run.encode()) % 9999:04d}.dat"
        write_charge_file(self.file, count, seed=len(run) + count)
        self.prefix = hashlib.sha256(self.file.read_bytes()).hexdigest()[:16]
        return [
            PlannedMessage(Message(body=b"", id=f"{self.prefix}:{n}"), "charge-record", "delivered")
            for n in range(1, count + 1)
        ]

    def send(self, planned: list[PlannedMessage]) -> None:
        """Drop the file, then its done file, in the folder the hub polls."""
        assert self.file is not None
        inbox = _remote_folder(self.project, self.source)
        inbox.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.file), inbox / self.file.name)
        (inbox / f"{self.file.name}.ok").write_bytes(b"")

    def received(self) -> int:
        """Records of this file that reached the canonical charges queue."""
        return self.receiver.count(self.prefix)

    def problems(self) -> list[str]:
        """Duplicates seen downstream."""
        return [f"{self.receiver.duplicates} duplicate charge messages"] if self.receiver.duplicates else []

    def stop(self) -> None:
        """Stop the consumer."""
        self.receiver.stop()
        if self.receiver.is_alive():  # never started when the hub failed to start
            self.receiver.join(5)


class NCRExtractScenario:
    """Canonical customers go to the NCR feed; the warehouse must find each good one in an extract file."""

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        route = project.route(route_id)
        self.source = route.from_
        self.target = route.destinations()[0]
        self.customer_ids: set[str] = set()
        template = (
            project.root / "canonical_model" / "examples" / "customer.v1" / "valid" / "residential.json"
        )
        self.template = json.loads(template.read_text(encoding="utf-8"))

    def start(self) -> None:
        """Nothing to start: the warehouse reads files."""

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Whole files of good customers; the rest (and every 9th) break the canonical schema.

        Good customers come only in whole extract files (``NCR_FILE_RECORDS``) so that each is flushed and
        the warehouse can count them: fewer than ``NCR_FILE_RECORDS * 9 // 8 + 1`` records plan none.
        """
        rng = random.Random(count)  # noqa: S311 - test data
        good_total = (count * 8 // 9) // NCR_FILE_RECORDS * NCR_FILE_RECORDS
        planned = []
        for index in range(count):
            customer = copy.deepcopy(self.template)
            customer["id"] = f"CUST-{run}-{index:06d}"
            customer["name"] = rng.choice(NAMES)
            good = len(self.customer_ids) < good_total and index % 9 != 4
            if good:
                self.customer_ids.add(customer["id"])
            else:
                customer["status"] = "closedForever"  # not a customer status: schema violation
            body = json.dumps(customer, ensure_ascii=False).encode("utf-8")
            message = Message(body=body, id=f"{run}-ncr-{index:06d}")
            planned.append(
                PlannedMessage(
                    message,
                    "customer" if good else "invalid-customer",
                    "delivered" if good else "dead_lettered",
                )
            )
        return planned

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish the customers on the NCR feed queue."""
        config = self.project.endpoint(self.source)
        sink = self.project.adapter_for(self.source).sink(config, self.project.context(self.source))
        with sink:
            for item in planned:
                sink.write(item.message)

    def received(self) -> int:
        """Customers of this run found in complete extract files (a done file beside each)."""
        folder = _remote_folder(self.project, self.target)
        found = 0
        for done in folder.glob("*.ok") if folder.exists() else []:
            data = done.with_suffix("").read_bytes().decode("gb18030")
            for line in data.splitlines():
                fields = line.split("|")
                if fields[0] == "D" and fields[1] in self.customer_ids:
                    found += 1
        return found

    def problems(self) -> list[str]:
        """Nothing beyond the counts."""
        return []

    def stop(self) -> None:
        """Nothing to stop."""
