"""A small project with one sync route and its extracts, for the resync/reconcile tests and the bench.

Route ``customer-ncr``: CRM customer changes (queue) -> ``sync`` (customer-ncr: key body.id, version
body.lastUpdate, fields name/status/customerSegment/customerLevel, delete when closed, exclude when
unlisted) -> NCR's queue (the embedded SQLite broker, so another process can count what was sent).
The resync reads the CRM's full extract (config/layouts/crm_customer_full.yaml, GBK); the
reconciliation reads NCR's extract (config/layouts/ncr_customer_extract.yaml).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from esb.message import Message
from esb.project import Project

REPO = Path(__file__).resolve().parents[1]
SYNC = "customer-ncr"
TARGET = "ncr.customers"
FIELDS = ["name", "status", "customerSegment", "customerLevel"]

ROUTE: dict[str, Any] = {
    "id": "customer-ncr",
    "from": "crm.customer_events",
    "ordered_by": "body.id",
    "steps": [
        {
            "sync": {
                "name": SYNC,
                "key": "body.id",
                "version": "body.lastUpdate",
                "fields": FIELDS,
                "delete": "body.status == 'closed'",
                "exclude": "body.unlisted == `true`",
            }
        }
    ],
    "to": TARGET,
    "on_error": {"redeliver": {"max": 1, "initial": "1ms", "max_delay": "2ms"}, "dead_letter": "dlq.sync"},
}


def make_sync_project(
    root: Path, journal_url: str | None = None, *, chunk: int = 1000, delete_missing: bool = True
) -> Project:
    """Write the project under ``root`` (journal on ``journal_url``, SQLite in ``root/var`` by default)."""
    for folder in ("config/layouts", "transforms/crm", "transforms/ncr", "exchange"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name in ("crm_customer_full.yaml", "ncr_customer_extract.yaml"):
        shutil.copy(REPO / "config/layouts" / name, root / "config/layouts" / name)
    for name in (
        "crm/customer_full_to_canonical.yaml",
        "crm/customer_full.py",
        "ncr/customer_extract_to_canonical.yaml",
        "ncr/customer_extract_record.py",
    ):
        shutil.copy(REPO / "transforms" / name, root / "transforms" / name)
    batch = {
        "adapter": "batch",
        "encoding": "gbk",
        "remote": {"protocol": "local", "path": str(root / "exchange")},
    }
    systems = {
        "crm": {
            "name": "crm",
            "endpoints": {
                "customer_events": {"adapter": "queue", "queue": "crm.customer.events", "format": "json"},
                "customer_full": {
                    **batch,
                    "layout": "config/layouts/crm_customer_full.yaml",
                    "inbound": {"pattern": "CRM_CUST_FULL_*.dat"},
                },
            },
        },
        "ncr": {
            "name": "ncr",
            "endpoints": {
                "customers": {"adapter": "queue", "queue": "ncr.customers", "format": "json"},
                "customer_extract": {**batch, "layout": "config/layouts/ncr_customer_extract.yaml"},
            },
        },
        "dlq": {"name": "dlq", "endpoints": {"sync": {"adapter": "queue", "queue": "dlq.sync"}}},
    }
    settings: dict[str, Any] = {
        "data_dir": str(root / "var"),
        "runtime": {"poll_timeout": 0.05},
        "logging": {"level": "warning"},
        "monitoring": {"enabled": False},
        "sync": {
            "resync": {
                SYNC: {
                    "extract": "crm.customer_full",
                    "transform": "crm/customer_full_to_canonical",
                    "delete_missing": delete_missing,
                    "chunk": chunk,
                }
            },
            "reconcile": {
                SYNC: {"extract": "ncr.customer_extract", "transform": "ncr/customer_extract_to_canonical"}
            },
        },
    }
    if journal_url is not None:
        settings["journal"] = {"url": journal_url}
    (root / "config/systems.yaml").write_text(yaml.safe_dump({"systems": systems}, allow_unicode=True))
    (root / "config/settings.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True))
    (root / "routes.yaml").write_text(yaml.safe_dump({"routes": [ROUTE]}, sort_keys=False))
    return Project.load(root, environ={})


def crm_record(
    i: int,
    *,
    version: str = "2026-12-01T08:00:00+08:00",
    name: str | None = None,
    status: str = "Active",
    unlisted: bool = False,
) -> dict[str, str]:
    """The CRM's record of customer ``i`` (CSN ``C<i:07d>``), values as Siebel holds them."""
    return {
        "csn": f"C{i:07d}", "row_id": f"1-{i:X}", "name": name or f"客户{i}", "status": status,
        "segment": "Residential", "level": "3星", "party_id": f"P{i:07d}", "party_type": "Individual",
        "main_phone": f"133{i:08d}", "billing_account_id": f"A{i:09d}", "unlisted": "Y" if unlisted else "N",
        "updated": version,
    }  # fmt: skip


CRM_COLUMNS = ["csn", "row_id", "name", "status", "segment", "level", "party_id", "party_type", "main_phone",
               "billing_account_id", "unlisted", "updated"]  # fmt: skip


def write_crm_extract(path: Path, records: Iterable[dict[str, str]]) -> int:
    """Write the CRM's full extract (GBK, CRLF, header and trailer); return how many records."""
    count = 0
    with path.open("wb") as out:
        out.write(b"H|CRM|20261206|1\r\n")
        for record in records:
            out.write(("D|" + "|".join(record[c] for c in CRM_COLUMNS) + "\r\n").encode("gb18030"))
            count += 1
        out.write(f"T|{count}\r\n".encode())
    return count


def write_ncr_extract(path: Path, records: Iterable[dict[str, str]]) -> int:
    """Write NCR's customer extract (its layout) holding CRM records as the hub sent them to NCR."""
    count = 0
    with path.open("wb") as out:
        out.write(b"H|440000|20261206|1\r\n")
        for r in records:
            fields = [r["csn"], r["name"], r["status"].lower(), r["segment"].lower(), r["level"], "", "",
                      r["updated"]]  # fmt: skip
            out.write(("D|" + "|".join(fields) + "\r\n").encode("gb18030"))
            count += 1
        out.write(f"T|{count}\r\n".encode())
    return count


def sent(project: Project) -> list[Message]:
    """Take every message waiting on NCR's queue (what the target was sent), in order."""
    endpoint = project.endpoint(TARGET)
    source = project.adapter_for(TARGET).source(endpoint, project.context(TARGET))
    source.connect()
    out: list[Message] = []
    try:
        while (delivery := source.read(0.2)) is not None:
            out.append(delivery.message)
            delivery.ack()
    finally:
        source.close()
    return out
