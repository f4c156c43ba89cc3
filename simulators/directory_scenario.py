"""The directory flow end to end: the simulated CRM sends subscriber changes, the hub writes 114's and the
phone directory's listing files, the simulated directories answer with ack files the hub picks up.

Subscribers come in blocks of :data:`BLOCK`: 12 listed and printed, 4 listed in 114 only, 4 unlisted
(不登录). With ``ESB_DIRECTORY_MAX_RECORDS`` at :data:`FILE_RECORDS` (the demo's environment) each block
fills whole files (16 records for 114, 12 for the phone directory), so every listing is flushed without
waiting for the nightly schedule. The check: every listed subscriber is in 114, every printed one in the
phone directory, and no unlisted number appears in any file of either (the privacy promise).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from esb.message import Message
from esb.ops.dlq import peek
from esb.processors.sync_rejected import ERROR_CLASS as REJECTED
from simulators.batch_scenarios import _remote_folder
from simulators.crm import ADDRESSES, NAMES, PlannedMessage
from simulators.directories import DirectorySystem, rejected_by_share

if TYPE_CHECKING:
    from esb.project import Project

BLOCK = 20
#: records per listing file in the demo (divides the 16 and 12 listings of a block)
FILE_RECORDS = 4
#: the routes this scenario's files and acks go through, besides its own
DOWNSTREAM_ROUTES = (
    "subscriber-to-directory114",
    "subscriber-to-phonebook",
    "directory114-acks",
    "phonebook-acks",
)
#: per position in a block: listed in 114, printed in the phone directory
_PLAN = [(True, True)] * 12 + [(True, False)] * 4 + [(False, False)] * 4


@dataclass(frozen=True)
class PlannedSubscriber:
    """One subscriber the CRM sends, and where it must (and must not) be listed."""

    asset_id: str
    number: str
    name: str
    listed: bool
    printed: bool


def plan_subscribers(count: int, run: str) -> list[PlannedSubscriber]:
    """``count`` subscribers: whole blocks of the mix; what is left over is unlisted (goes in no file)."""
    base = zlib.crc32(run.encode()) % 100
    whole = count // BLOCK * BLOCK
    planned = []
    for index in range(count):
        listed, printed = _PLAN[index % BLOCK] if index < whole else (False, False)
        number = f"139{base:02d}{index:06d}"
        planned.append(PlannedSubscriber(f"1-SUB{run}{index:06d}", number, NAMES[index % len(NAMES)],
                                         listed, printed and listed))  # fmt: skip
    return planned


def subscriber_xml(sub: PlannedSubscriber, updated: str = "01/05/2026 10:00:00") -> bytes:
    """The CRM's "ESB Subscriber" SiebelMessage for ``sub`` (UTF-8), last changed at ``updated`` (Beijing
    time, Siebel's MM/DD/YYYY HH:MM:SS)."""
    privacy = "Public" if sub.listed else "Unlisted"
    fields = {
        "Id": sub.asset_id, "Serial_spcNumber": sub.number, "Product_spcType": "Mobile", "Status": "Active",
        "Owner_spcAccount_spcId": f"CUST-{sub.asset_id}", "Updated": updated,
        "Directory_spcPrivacy": privacy, "Directory_spcPrinted": "Y" if sub.printed else "N",
        "Directory_spcName": sub.name, "Directory_spcType": "Residential", "Directory_spcCity": "杭州市",
        "Directory_spcAddress": ADDRESSES[int(sub.number) % len(ADDRESSES)],
    }  # fmt: skip
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<SiebelMessage MessageType="Integration Object" '
        f'IntObjectName="ESB Subscriber" IntObjectFormat="Siebel Hierarchical"><ListOfESB_spcSubscriber>'
        f"<Asset>{inner}</Asset></ListOfESB_spcSubscriber></SiebelMessage>\n"
    ).encode()


class DirectoryScenario:
    """CRM subscriber changes through to 114's and the phone directory's files, and their acks back."""

    downstream = DOWNSTREAM_ROUTES

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        self.source = project.route(route_id).from_
        self.dir114 = DirectorySystem(
            "dir114",
            _remote_folder(project, "dir114.listings_out"),
            _remote_folder(project, "dir114.acks_in"),
        )
        self.phonebook = DirectorySystem(
            "phonebook",
            _remote_folder(project, "phonebook.listings_out"),
            _remote_folder(project, "phonebook.acks_in"),
        )
        self.planned: list[PlannedSubscriber] = []
        #: the sync route whose dead-letter queue holds each directory's rejected listings (put there by
        #: routes directory114-acks and phonebook-acks), per directory
        self.dead_letters = {"dir114": "subscriber-to-directory114", "phonebook": "subscriber-to-phonebook"}

    def start(self) -> None:
        """Start both directories."""
        for thread in (self.dir114, self.phonebook):
            if not thread.is_alive():
                thread.start()

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan ``count`` subscriber changes; each is delivered by crm-subscriber-to-hub."""
        subscribers = plan_subscribers(count, run)
        self.planned.extend(subscribers)
        kinds = {(True, True): "listed+printed", (True, False): "listed 114 only", (False, False): "unlisted"}
        return [
            PlannedMessage(
                Message(body=subscriber_xml(s), id=f"{run}-sub-{i:06d}"),
                kinds[s.listed, s.printed],
                "delivered",
            )
            for i, s in enumerate(subscribers)
        ]

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish the subscriber changes on the CRM's queue."""
        config = self.project.endpoint(self.source)
        sink = self.project.adapter_for(self.source).sink(config, self.project.context(self.source))
        with sink:
            for item in planned:
                sink.write(item.message)

    def received(self) -> int:
        """Subscribers each directory holds (or rightly does not): listed ones in 114, printed ones in the
        phone directory, unlisted ones in neither. Rejected listings count as held once the hub picked up
        the ack and noted the reject; none counts while an ack or a rejected listing is on its way."""
        if any(self._unsettled(d) for d in (self.dir114, self.phonebook)):
            return 0
        return sum(1 for s in self.planned if self._as_planned(s))

    def _unsettled(self, directory: DirectorySystem) -> list[str]:
        """What the hub has yet to do with the directory's acks: pick them up, dead-letter each rejected
        listing on the directory's sync route (peeked, never taken: `esb dlq retry` still finds them)."""
        found = []
        waiting = len(directory.files) - directory.acks_taken()
        if waiting:
            found.append(f"{waiting} ack file(s) not picked up by the hub")
        rejected = sum(len(f.rejected) for f in directory.files.values())
        noted = self.rejected_listings(directory.vendor.name)
        if noted != rejected:
            found.append(
                f"{rejected} record(s) rejected in acks, {noted} rejected listing(s) on the hub's "
                f"dead-letter queue of {self.dead_letters[directory.vendor.name]}"
            )
        return found

    def rejected_listings(self, vendor: str) -> int:
        """How many listings the hub put on the dead-letter queue of ``vendor``'s sync route as rejected."""
        letters = peek(self.project, self.dead_letters[vendor], limit=100_000)
        return sum(1 for letter in letters if letter.error_class == REJECTED)

    def _as_planned(self, sub: PlannedSubscriber) -> bool:
        in_114 = sub.number in self.dir114.listed or self._rejected(self.dir114, sub.number)
        in_book = sub.number in self.phonebook.listed or self._rejected(self.phonebook, sub.number)
        return in_114 == sub.listed and in_book == sub.printed

    @staticmethod
    def _rejected(directory: DirectorySystem, number: str) -> bool:
        return rejected_by_share(number) and number in directory.seen

    def problems(self) -> list[str]:
        """Unlisted numbers that appeared in any file, bad counts, acks the hub did not pick up."""
        found = []
        unlisted = {s.number for s in self.planned if not s.listed}
        unprinted = {s.number for s in self.planned if not s.printed}
        for directory, hidden in ((self.dir114, unlisted), (self.phonebook, unprinted)):
            leaked = sorted(hidden & directory.seen)
            if leaked:
                found.append(
                    f"{directory.vendor.name}: {len(leaked)} unlisted number(s) in its files: {leaked[:3]}"
                )
            bad = [f.name for f in directory.files.values() if not f.count_ok]
            if bad:
                found.append(f"{directory.vendor.name}: trailer count wrong in {bad}")
            found += [f"{directory.vendor.name}: {problem}" for problem in self._unsettled(directory)]
        return found

    def stop(self) -> None:
        """Stop both directories."""
        self.dir114.stop()
        self.phonebook.stop()
