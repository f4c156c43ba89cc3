"""The channel commission file and the NCR order and ticket extracts, written by the running hub.

The real routes (channel-commissions, ncr-order-extract, ncr-ticket-extract), transforms, tables, layouts,
rates and catalogue run in a hub with its journal; the feeds are in-memory queues and the files are
written by the batch adapter into local folders, then read back: counts, totals, encodings, idempotency.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from adapters.batch import BatchSink
from esb.message import Message
from esb.project import Project
from esb.runtime.hub import Hub
from esb.testing import BROKER

ROOT = Path(__file__).resolve().parents[2]
ROUTES = ("channel-commissions", "ncr-order-extract", "ncr-ticket-extract")
FEEDS = {
    "channel-commissions": "channel.commissions_feed",
    "ncr-order-extract": "ncr.orders_feed",
    "ncr-ticket-extract": "ncr.tickets_feed",
}
OUT = {"channel.commissions_out": "channel", "ncr.orders_out": "ncr", "ncr.tickets_out": "ncr"}
FLUSH_AT = datetime(2026, 1, 6, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _systems(tmp: Path) -> dict[str, object]:
    """The real batch endpoints (folders under ``tmp``, unscheduled), the feeds and dead letters in memory."""
    real = yaml.safe_load((ROOT / "config" / "systems.yaml").read_text(encoding="utf-8"))["systems"]
    systems: dict[str, dict[str, object]] = {
        "channel": {"name": "Channel", "endpoints": {}},
        "ncr": {"name": "NCR", "endpoints": {}},
        "dlq": {"name": "Dead letters", "endpoints": {}},
    }
    for endpoint, folder in OUT.items():
        system, name = endpoint.split(".")
        spec = copy.deepcopy(real[system]["endpoints"][name])
        spec["remote"] = {"protocol": "local", "path": str(tmp / "exchange" / folder)}
        spec["outbound"].pop("schedule")
        spec["outbound"]["max_records"] = 100000
        systems[system]["endpoints"][name] = spec  # type: ignore[index]
    for route, feed in FEEDS.items():
        system, name = feed.split(".")
        systems[system]["endpoints"][name] = {"adapter": "memory"}  # type: ignore[index]
        systems["dlq"]["endpoints"][route] = {"adapter": "memory"}  # type: ignore[index]
    return {"systems": systems}


def _project(tmp: Path) -> Project:
    """A project with the shipped content for the three routes, over ``tmp``."""
    for folder in (
        "canonical_model",
        "config/layouts",
        "transforms/channel",
        "transforms/ncr",
        "transforms/tables",
    ):
        shutil.copytree(ROOT / folder, tmp / folder, dirs_exist_ok=True)
    shutil.copy(ROOT / "config" / "catalog.yaml", tmp / "config" / "catalog.yaml")
    for folder in OUT.values():
        (tmp / "exchange" / folder).mkdir(parents=True, exist_ok=True)
    shipped = yaml.safe_load((ROOT / "routes.yaml").read_text(encoding="utf-8"))["routes"]
    routes = [r for r in shipped if r["id"] in ROUTES]
    (tmp / "routes.yaml").write_text(yaml.safe_dump({"routes": routes}, allow_unicode=True), encoding="utf-8")
    (tmp / "config" / "systems.yaml").write_text(
        yaml.safe_dump(_systems(tmp), allow_unicode=True), encoding="utf-8"
    )
    settings = "data_dir: var\nlogging: {level: warning}\nmonitoring: {enabled: false}\n"
    (tmp / "config" / "settings.yaml").write_text(settings, encoding="utf-8")
    return Project.load(tmp, environ={})


def _wait(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), "the hub did not settle the messages in time"


def _acked() -> int:
    """How many messages the hub acknowledged on the three feeds."""
    return sum(len(BROKER.box(feed).acked) for feed in FEEDS.values())


def _flush(project: Project, endpoint: str) -> tuple[str, list[str]]:
    """Flush the endpoint's outbox (as its schedule would) and return the file name and its lines."""
    sink = project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint))
    assert isinstance(sink, BatchSink)
    sink.schedule = False
    with sink:
        name = sink.flush(FLUSH_AT)
    assert name is not None, f"{endpoint}: nothing to write"
    spec = project.endpoint(endpoint)
    raw = (Path(spec.remote.path) / name).read_bytes()
    assert (Path(spec.remote.path) / f"{name}.ok").exists()
    assert raw.endswith(b"\r\n")
    return name, raw.decode(spec.encoding).split("\r\n")[:-1]


def _order(
    order_id: str,
    channel: str,
    *,
    state: str = "completed",
    completed: str = "2026-01-05T10:01:00+08:00",
    name: str = "张伟",
) -> dict[str, object]:
    """A canonical order at its end with a 好E家 bundle, a 5G plan and a removed value-added service."""
    body = json.loads((ROOT / "tests" / "routes" / "samples" / "partner_order_completed.json").read_text())
    body.update(id=order_id, state=state, completionDate=completed)
    body["channel"] = [{"id": channel, "role": "sales", "@referredType": "SalesChannel"}]
    body["relatedParty"][0]["name"] = name
    return body


def _ticket(ticket_id: str, resolution: str) -> dict[str, object]:
    """A resolved ticket as the fault_to_resolution process sends it (hub/ticket_outcome)."""
    return {
        "id": ticket_id,
        "@type": "TroubleTicket",
        "status": "resolved",
        "severity": "major",
        "accessNumber": "ad057188001234",
        "creationDate": "2026-01-05T09:00:00+08:00",
        "resolutionDate": "2026-01-05T15:00:00+08:00",
        "dispatch": {"team": "hz-fiber"},
        "assignment": {
            "workOrderId": f"WO-{ticket_id}",
            "technicianId": "T-7",
            "dueAt": "2026-01-05T17:00:00+08:00",
        },
        "completion": {"resolution": resolution, "completedAt": "2026-01-05T15:00:00+08:00"},
    }


def _feed(endpoint: str, message_id: str, body: dict[str, object], *, delivery_count: int = 1) -> None:
    BROKER.feed(
        endpoint,
        Message(body=json.dumps(body, ensure_ascii=False).encode("utf-8"), id=message_id),
        delivery_count=delivery_count,
    )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The three routes' project over a temporary folder."""
    return _project(tmp_path)


def _run(project: Project, feeds: Callable[[], None], count: int) -> None:
    """Start a hub, feed it ``count`` messages, wait until it acknowledged them all, stop it."""
    before = _acked()
    with Hub(project):
        feeds()
        _wait(lambda: _acked() >= before + count)


def test_commission_file_counts_totals_and_each_order_once(project: Project) -> None:
    """Partner orders give one UTF-8 record per commissioned item; a redelivered or re-fed order (same
    message, also after a hub restart) is not paid twice; the trailer's count and CNY total match."""

    def first() -> None:
        _feed("channel.commissions_feed", "ord-1:tell_channel", _order("PO-1", "CP-MO-001"))
        _feed("channel.commissions_feed", "ord-2:tell_channel", _order("PO-2", "CP-HK-003"))
        _feed("channel.commissions_feed", "ord-3:tell_channel", _order("PO-3", "CH-GZ-TH-001"))  # own shop
        _feed("channel.commissions_feed", "ord-1:tell_channel", _order("PO-1", "CP-MO-001"), delivery_count=2)

    _run(project, first, 4)
    _run(
        project,
        lambda: _feed("channel.commissions_feed", "ord-2:tell_channel", _order("PO-2", "CP-HK-003")),
        1,
    )
    name, lines = _flush(project, "channel.commissions_out")
    assert name == "CHN_COMM_20260106_001.txt"
    header, *details, trailer = lines
    assert header == "H|CHN|20260106|1"
    rows = [line.split("|") for line in details]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("CP-MO-001", "PO-1", "01"),
        ("CP-MO-001", "PO-1", "02"),
        ("CP-HK-003", "PO-2", "01"),
        ("CP-HK-003", "PO-2", "02"),
    ]
    assert [(r[5], r[11], r[12], r[13]) for r in rows] == [
        ("Home Bundle 199", "69.90", "MOP", "77.93"),
        ("5G暢享計劃199元", "31.94", "MOP", "35.61"),
        ("Home Bundle 199", "45.92", "HKD", "49.71"),  # 199.00 x 8 % + 30.00; / 0.9238
        ("5G Enjoy plan 199", "35.92", "HKD", "38.88"),  # 199.00 x 8 % + 20.00; / 0.9238
    ]
    total = sum(Decimal(r[11]) for r in rows)
    assert trailer == f"T|4|{total:.2f}"
    assert BROKER.written("dlq.channel-commissions") == []


def test_ncr_order_extract_is_gbk_with_count_and_fee_total(project: Project) -> None:
    """Orders at their end (completed and failed) are one GBK record each, Chinese intact; a name GBK
    cannot write dead-letters its order alone and the file still renders."""

    def feeds() -> None:
        _feed("ncr.orders_feed", "o1:tell_ncr", _order("PO-1", "CP-MO-001", name="欧阳娜娜"))
        _feed(
            "ncr.orders_feed", "o2:after_undo.tell_ncr_undone", _order("PO-2", "CH-GZ-TH-001", state="failed")
        )
        _feed("ncr.orders_feed", "o3:tell_ncr", _order("PO-3", "CH-GZ-TH-001", name="王𠀾"))  # not in GBK
        _feed(
            "ncr.orders_feed", "o1:tell_ncr", _order("PO-1", "CP-MO-001", name="欧阳娜娜"), delivery_count=2
        )

    _run(project, feeds, 4)
    name, lines = _flush(project, "ncr.orders_out")
    assert name == "571_ORDER_20260106_001.dat"
    header, *details, trailer = lines
    assert header == "H|571|20260106|1"
    rows = [line.split("|") for line in details]
    assert [(r[1], r[2], r[6]) for r in rows] == [
        ("PO-1", "completed", "欧阳娜娜"),
        ("PO-2", "failed", "张伟"),
    ]
    assert trailer == "T|2|796.00"  # 2 x (199.00 + 199.00)
    (dead,) = BROKER.written("dlq.ncr-order-extract")
    assert "cannot be written in gbk" in dead.headers["esb-error"]


def test_ncr_ticket_extract_is_gbk_once_per_ticket(project: Project) -> None:
    """Resolved tickets are one GBK record each, a '|' in a resolution cannot shift the columns."""

    def feeds() -> None:
        _feed("ncr.tickets_feed", "t1:tell_ncr", _ticket("TT-1", "更换光猫|重新熔接"))
        _feed("ncr.tickets_feed", "t2:tell_ncr", _ticket("TT-2", "远程复位"))
        _feed("ncr.tickets_feed", "t1:tell_ncr", _ticket("TT-1", "更换光猫|重新熔接"), delivery_count=2)

    _run(project, feeds, 3)
    _, lines = _flush(project, "ncr.tickets_out")
    _header, *details, trailer = lines
    rows = [line.split("|") for line in details]
    assert [len(r) for r in rows] == [15, 15]
    assert [(r[1], r[13], r[14]) for r in rows] == [
        ("TT-1", "Y", "更换光猫｜重新熔接"),
        ("TT-2", "Y", "远程复位"),
    ]
    assert trailer == "T|2"
