"""``esb`` with the hub held in the batched path's crash window: outputs confirmed, outcomes not journaled.

    python -m tests.e2e.window_hub MARKER [esb arguments...]

The first batch whose outputs reached their sinks (the journal's ``settle_many``, called once they are
confirmed) writes its message ids and states to MARKER (JSON) and then blocks, so the test can SIGKILL
the hub exactly between the sinks' confirmation and the outcomes' commit (arrivals journaled, outcomes
not, nothing acked). With MARKER already there, the hub runs normally.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from esb.cli.main import main
from esb.journal.batched import BatchedWrites, Outcome


def hold_in_window(marker: Path) -> None:
    """Make the first batch with outputs write ``marker`` and block before its outcomes' commit."""
    original = BatchedWrites.settle_many
    held = threading.Event()

    def settle_many(self: Any, route: str, outcomes: list[Outcome], details: Any = None) -> None:
        if not held.is_set() and any(sent for _, _, sent in outcomes) and not marker.exists():
            held.set()
            states = {message.id: state for message, state, _ in outcomes}
            partial = marker.with_suffix(".tmp")
            partial.write_text(json.dumps({"route": route, "states": states}), encoding="utf-8")
            partial.replace(marker)
            threading.Event().wait()  # until SIGKILL
        original(self, route, outcomes, details)

    BatchedWrites.settle_many = settle_many  # type: ignore[method-assign]


if __name__ == "__main__":
    hold_in_window(Path(sys.argv[1]))
    sys.argv = ["esb", *sys.argv[2:]]
    sys.exit(main())
