"""Helpers for the batch adapter's tests: endpoints over a local folder, draining a source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.batch import BatchEndpoint, BatchSink, BatchSource
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.typing import Delivery

PROJECT = Path(__file__).resolve().parents[2]
CHARGE_LAYOUT = "config/layouts/billing_charge_record.yaml"


def inbound_endpoint(remote: dict[str, Any], **inbound: Any) -> BatchEndpoint:
    """A Billing charge inbound endpoint (GBK fixed width) over ``remote``."""
    spec = {
        "pattern": "CHG_*.dat",
        "poll": {"interval": 3600},
        "message_type": "billing.charge_record",
        "checkpoint_every": 100,
        **inbound,
    }
    return BatchEndpoint.model_validate(
        {"adapter": "batch", "remote": remote, "layout": CHARGE_LAYOUT, "encoding": "gbk", "inbound": spec}
    )


def context(data_dir: Path, endpoint: str = "billing.charges_in") -> AdapterContext:
    """An adapter context with its data under ``data_dir``."""
    return AdapterContext(settings=Settings(data_dir=data_dir), project_dir=PROJECT, endpoint=endpoint)


def local_source(tmp: Path, **inbound: Any) -> BatchSource:
    """An unconnected, unscheduled source over ``tmp/inbox``."""
    (tmp / "inbox").mkdir(exist_ok=True)
    endpoint = inbound_endpoint({"protocol": "local", "path": str(tmp / "inbox")}, **inbound)
    return BatchSource(endpoint, context(tmp / "var"), schedule=False)


def local_sink(tmp: Path, layout: str, encoding: str = "gbk", **outbound: Any) -> BatchSink:
    """An unconnected, unscheduled sink writing to ``tmp/outbox_remote``."""
    (tmp / "outbox_remote").mkdir(exist_ok=True)
    endpoint = BatchEndpoint.model_validate(
        {
            "adapter": "batch",
            "remote": {"protocol": "local", "path": str(tmp / "outbox_remote")},
            "layout": layout,
            "encoding": encoding,
            "outbound": outbound,
        }
    )
    return BatchSink(endpoint, context(tmp / "var", "ncr.customers_out"), schedule=False)


def drain(source: BatchSource, limit: int | None = None, *, ack: bool = True) -> list[Delivery]:
    """Read (and ack) deliveries until none is ready, or ``limit`` were read."""
    out: list[Delivery] = []
    while limit is None or len(out) < limit:
        delivery = source.read(0.01)
        if delivery is None:
            break
        if ack:
            delivery.ack()
        out.append(delivery)
    return out


def drop(inbox: Path, name: str, data: bytes, *, done: bool = True) -> None:
    """Put a file (and its .ok done file) into ``inbox``."""
    (inbox / name).write_bytes(data)
    if done:
        (inbox / f"{name}.ok").write_bytes(b"")
