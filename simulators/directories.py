"""The simulated 114 directory (114查号台) and phone directory (号薄): they read the listing files the hub
uploads, check them, reject a small share of records with a reason, and answer each file with an ack file.

Each directory is written as its vendor would: its own parser of its own layout (not the hub's layout
code), so a layout the hub gets wrong shows here. A file is taken once its done file (``.ok``) is there;
the header and trailer are checked (a count that does not match rejects the whole file: every record is
rejected with the file-level code). A record is rejected when its number's CRC-32 falls in the reject
share (about 1 in :data:`REJECT_ONE_IN`), deterministically, so a test knows which ones. What each
directory holds afterwards (adds and changes applied, deletes removed) is in ``listed``; every number that
ever appeared in any of its files is in ``seen`` (the privacy checks read both).
"""

from __future__ import annotations

import csv
import io
import os
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: about one record in this many is rejected by each directory
REJECT_ONE_IN = 25
#: 114's record codes (config/layouts/dir114_listing.yaml) and the slices of its detail record (bytes)
_114_SLICES = {"action": (2, 3), "number": (3, 23), "name": (23, 83)}


@dataclass
class ListingFile:
    """One listing file a directory read: its name, kind, records and what the directory made of it."""

    name: str
    kind: str
    records: list[dict[str, str]]
    count_ok: bool
    rejected: list[tuple[int, str, str, str]] = field(default_factory=list)  # (record no, number, code, text)


def rejected_by_share(number: str) -> bool:
    """True for the numbers a directory rejects (about 1 in REJECT_ONE_IN, the same in every run)."""
    return zlib.crc32(number.encode()) % REJECT_ONE_IN == 0


def parse_114(data: bytes) -> tuple[str, list[dict[str, str]], int | None]:
    """Read a 114 listing file: (file kind D/F, details, trailer count; None without a trailer)."""
    lines = [line for line in data.split(b"\r\n") if line]
    kind = lines[0][28:29].decode("ascii") if lines and lines[0][:2] == b"01" else "?"
    details = []
    for line in lines:
        if line[:2] == b"10":
            record = {k: line[a:b].decode("gb18030").strip() for k, (a, b) in _114_SLICES.items()}
            details.append(record)
    count = int(lines[-1][2:10]) if lines and lines[-1][:2] == b"99" else None
    return kind, details, count


def parse_phonebook(data: bytes) -> tuple[str, list[dict[str, str]], int | None]:
    """Read a phone directory listing file (comma-separated, quoted, GBK)."""
    rows = list(csv.reader(io.StringIO(data.decode("gb18030"), newline="")))
    rows = [r for r in rows if r]
    kind = rows[0][4] if rows and rows[0][0] == "HDR" else "?"
    details = [{"action": r[1], "number": r[2], "name": r[3]} for r in rows if r[0] == "DTL"]
    count = int(rows[-1][1]) if rows and rows[-1][0] == "TRL" else None
    return kind, details, count


def _pad(text: str, length: int) -> bytes:
    raw = text.encode("gbk")[:length]
    return raw + b" " * (length - len(raw))


def ack_114(listing: ListingFile) -> tuple[str, bytes]:
    """114's ack file for ``listing``: (name, GBK bytes), fixed width (config/layouts/dir114_ack.yaml)."""
    received = len(listing.records)
    lines = [
        b"A1"
        + _pad(listing.name, 40)
        + b"%08d%08d%08d" % (received, received - len(listing.rejected), len(listing.rejected))
    ]
    for number_in_file, number, code, text in listing.rejected:
        lines.append(b"A2" + b"%08d" % number_in_file + _pad(number, 20) + _pad(code, 3) + _pad(text, 40))
    lines.append(b"A9" + b"%08d" % len(listing.rejected))
    return f"ACK_{listing.name}", b"\r\n".join(lines) + b"\r\n"


def ack_phonebook(listing: ListingFile) -> tuple[str, bytes]:
    """The phone directory's ack for ``listing``: (name, bytes), config/layouts/phonebook_ack.yaml."""
    received = len(listing.records)
    lines = [f"ACKH|{listing.name}|{received}|{received - len(listing.rejected)}|{len(listing.rejected)}"]
    lines += [f"ACKR|{n}|{number}|{code}|{text}" for n, number, code, text in listing.rejected]
    lines.append(f"ACKT|{len(listing.rejected)}")
    return f"{listing.name}.ack", ("\r\n".join(lines) + "\r\n").encode("gbk")


@dataclass(frozen=True)
class Vendor:
    """What differs between the two directories: how they read, how they answer, their reason codes."""

    name: str
    parse: Callable[[bytes], tuple[str, list[dict[str, str]], int | None]]
    ack: Callable[[ListingFile], tuple[str, bytes]]
    delete: str
    reject: tuple[str, str]  # (code, text) for a record in the reject share
    bad_count: tuple[str, str]  # (code, text) for every record of a file whose trailer count is wrong


VENDORS = {
    "dir114": Vendor("dir114", parse_114, ack_114, "D", ("E01", "号码不在本地网"), ("E99", "记录数不符")),
    "phonebook": Vendor("phonebook", parse_phonebook, ack_phonebook, "DEL", ("101", "号码格式错误"),
                        ("199", "记录数不符")),
}  # fmt: skip


class DirectorySystem(threading.Thread):
    """A simulated directory: polls ``inbox`` for listing files, writes an ack for each into ``ack_dir``."""

    def __init__(self, vendor: str, inbox: Path, ack_dir: Path, interval: float = 0.3) -> None:
        super().__init__(name=f"sim-{vendor}", daemon=True)
        self.vendor = VENDORS[vendor]
        self.inbox = inbox
        self.ack_dir = ack_dir
        self.interval = interval
        self.files: dict[str, ListingFile] = {}
        self.listed: dict[str, dict[str, str]] = {}
        self.seen: set[str] = set()
        self.stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        """Poll until stopped."""
        while not self.stop_event.wait(self.interval):
            self.poll()

    def poll(self) -> list[str]:
        """Read every complete listing file not read yet and answer it; return their names."""
        taken = []
        for done in sorted(self.inbox.glob("*.ok")) if self.inbox.is_dir() else []:
            name = done.name[: -len(".ok")]
            data_file = self.inbox / name
            if name in self.files or not data_file.is_file():
                continue
            self.take(name, data_file.read_bytes())
            taken.append(name)
        return taken

    def take(self, name: str, data: bytes) -> ListingFile:
        """Read one listing file, apply what it accepts, write its ack (and the ack's done file)."""
        kind, records, count = self.vendor.parse(data)
        listing = ListingFile(name, kind, records, count == len(records))
        with self._lock:
            if kind in ("F", "FULL") and listing.count_ok:
                self.listed.clear()
            for number, record in enumerate(records, 1):
                self.seen.add(record["number"])
                reason = self._reason(listing, record)
                if reason is not None:
                    listing.rejected.append((number, record["number"], *reason))
                elif record["action"] == self.vendor.delete:
                    self.listed.pop(record["number"], None)
                else:
                    self.listed[record["number"]] = record
            self.files[name] = listing
        self._write_ack(listing)
        return listing

    def _reason(self, listing: ListingFile, record: dict[str, str]) -> tuple[str, str] | None:
        if not listing.count_ok:
            return self.vendor.bad_count
        if rejected_by_share(record["number"]):
            return self.vendor.reject
        return None

    def _write_ack(self, listing: ListingFile) -> None:
        """Write the ack under a temporary name, rename it into place, then its done file."""
        ack_name, body = self.vendor.ack(listing)
        self.ack_dir.mkdir(parents=True, exist_ok=True)
        temp = self.ack_dir / f".{ack_name}.part"
        temp.write_bytes(body)
        os.replace(temp, self.ack_dir / ack_name)
        (self.ack_dir / f"{ack_name}.ok").write_bytes(b"")

    def acks_taken(self) -> int:
        """How many of this directory's acks the hub picked up (moved out of the ack folder)."""
        with self._lock:
            names = [self.vendor.ack(f)[0] for f in self.files.values()]
        return sum(1 for n in names if not (self.ack_dir / n).exists())

    def stop(self) -> None:
        """Stop polling."""
        self.stop_event.set()
