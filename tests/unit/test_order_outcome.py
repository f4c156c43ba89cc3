"""hub/order_outcome: the order at its end, with the completion date it is paid and extracted by."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from esb.transforms.registry import TransformRegistry

ROOT = Path(__file__).resolve().parents[2]


def _view(components: list[dict[str, Any]], state: str = "completed") -> dict[str, Any]:
    order = {"id": "PO-1", "@type": "ProductOrder", "productOrderItem": [{"id": "01", "action": "add"}]}
    return {"data": {**order, "components": components}, "state": state, "keys": {"order_id": "PO-1"}}


def _activated(at: str, result: str = "COMPLETED") -> dict[str, Any]:
    return {"id": "PO-1-1", "activation": {"result": result, "completedAt": at}}


def test_completion_date_is_the_last_successful_activation() -> None:
    """The latest COMPLETED activation wins, compared as instants (a UTC time may be the later one)."""
    transform = TransformRegistry(ROOT).get("hub/order_outcome")
    body = transform.run(
        _view(
            [
                _activated("2026-01-05T10:01:00+08:00"),
                _activated("2026-01-05T02:30:00Z"),  # 10:30 in Beijing: the last
                _activated("2026-01-05T11:00:00+08:00", result="FAILED"),  # a failed one does not count
            ]
        )
    )
    assert body["completionDate"] == "2026-01-05T02:30:00Z"
    assert body["state"] == "completed"
    assert "components" not in body


def test_without_an_activation_the_end_of_the_process_is_the_completion_date() -> None:
    """A failed order nothing was activated for takes the time it ended (now, Beijing time)."""
    before = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    body = TransformRegistry(ROOT).get("hub/order_outcome").run(_view([], state="failed"))
    stamped = datetime.fromisoformat(body["completionDate"])
    assert before <= stamped <= before + timedelta(seconds=5)
    assert stamped.utcoffset() == timedelta(hours=8)
    assert body["state"] == "failed"
