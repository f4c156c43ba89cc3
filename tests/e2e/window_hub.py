"""``esb`` with the hub held in the batched path's crash window: outputs confirmed, journal not committed.

    python -m tests.e2e.window_hub MARKER [esb arguments...]

The first batch whose outputs reach their sinks (the journal's ``journey_many``, called once they are
confirmed) writes its message ids and states to MARKER (JSON) and then blocks, so the test can SIGKILL
the hub exactly between the sink's confirmation and the journal's commit (nothing of the batch is
journaled, nothing acked). With MARKER already there, the hub runs normally.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from esb.cli.main import main
from esb.journal.batched import BatchedWrites, Journey


def hold_in_window(marker: Path) -> None:
    """Make the first batch with outputs write ``marker`` and block before its journal commit."""
    original = BatchedWrites.journey_many
    held = threading.Event()

    def journey_many(self: Any, route: str, journeys: list[Journey], arrived_at: datetime) -> list[bool]:
        if not held.is_set() and any(j.sent for j in journeys) and not marker.exists():
            held.set()
            states = {j.message.id: j.state for j in journeys}
            partial = marker.with_suffix(".tmp")
            partial.write_text(json.dumps({"route": route, "states": states}), encoding="utf-8")
            partial.replace(marker)
            threading.Event().wait()  # until SIGKILL
        return original(self, route, journeys, arrived_at)

    BatchedWrites.journey_many = journey_many  # type: ignore[method-assign]


if __name__ == "__main__":
    hold_in_window(Path(sys.argv[1]))
    sys.argv = ["esb", *sys.argv[2:]]
    sys.exit(main())
