"""Process view of an order at its end -> the canonical product order with its end state and completion date.

Sent by the order_to_activation process to the NCR order extract and the channel commissions (steps
tell_ncr, tell_channel, tell_ncr_undone). ``completionDate`` is when the last component was activated (OSS's
``completedAt``), the moment the services went live; an order no component reached activation in (failed,
cancelled, or nothing to activate) takes the time this message is built, which is when the process ended.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from esb.transforms import dates

_BOOKS_TZ = ZoneInfo("Asia/Shanghai")


def _last_activation(components: list[Any]) -> str | None:
    times = [
        (dates.parse_datetime(stamp, None, "Asia/Shanghai"), stamp)
        for c in components
        if isinstance(c, dict)
        and isinstance(c.get("activation"), dict)
        and c["activation"].get("result") == "COMPLETED"
        and (stamp := c["activation"].get("completedAt"))
    ]
    return max(times)[1] if times else None


def to_outcome(view: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return the order (without the hub's ``components``) with ``state`` and ``completionDate``."""
    order = copy.deepcopy(view["data"])
    components = order.pop("components", None) or []
    order["state"] = view["state"]
    if not order.get("completionDate"):
        order["completionDate"] = _last_activation(components) or datetime.now(_BOOKS_TZ).isoformat(
            timespec="seconds"
        )
    return order
