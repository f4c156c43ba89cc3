"""The CRM's full subscriber extract (config/layouts/crm_subscriber_full.yaml) for tests: the same
subscribers simulators/directory_scenario.py sends as live SiebelMessages, as extract records."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from simulators.crm import ADDRESSES
from simulators.directory_scenario import PlannedSubscriber

COLUMNS = ("serial_number", "asset_id", "product_type", "status", "owner_account_id", "updated",
           "directory_privacy", "directory_printed", "directory_name", "directory_type", "directory_industry",
           "directory_city", "directory_address")  # fmt: skip


def extract_record(sub: PlannedSubscriber, updated: str) -> dict[str, str]:
    """``sub`` as a record of the extract (the fields subscriber_xml gives it), changed at ``updated``."""
    return {
        "serial_number": sub.number, "asset_id": sub.asset_id, "product_type": "Mobile", "status": "Active",
        "owner_account_id": f"CUST-{sub.asset_id}", "updated": updated,
        "directory_privacy": "Public" if sub.listed else "Unlisted",
        "directory_printed": "Y" if sub.printed else "N", "directory_name": sub.name,
        "directory_type": "Residential", "directory_industry": "", "directory_city": "杭州市",
        "directory_address": ADDRESSES[int(sub.number) % len(ADDRESSES)],
    }  # fmt: skip


def write_subscriber_extract(path: Path, subscribers: Iterable[PlannedSubscriber], updated: str) -> None:
    """Write the extract (GBK, CRLF, header and trailer) of ``subscribers``, each changed at ``updated``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [b"H|CRM|20260110|1"]
    for sub in sorted(subscribers, key=lambda s: s.number):
        record = extract_record(sub, updated)
        lines.append(("D|" + "|".join(record[c] for c in COLUMNS)).encode("gb18030"))
    lines.append(f"T|{len(lines) - 1}".encode())
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
