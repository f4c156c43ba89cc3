"""``esb`` with the hub held in the batched path's crash window: outputs confirmed, outcomes not journaled.

    python -m tests.e2e.window_hub [--next-batch] MARKER [esb arguments...]

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


def hold_with_next_batch(marker: Path) -> None:
    """Make the first batch with outputs block before its outcomes' commit until the next batch's
    arrivals are journaled, then write ``marker`` (both batches) and block."""
    original_settle, original_received = BatchedWrites.settle_many, BatchedWrites.received_many
    held = threading.Event()
    arrivals: list[list[str]] = []  # each received_many's ids, in order
    arrived = threading.Condition()

    def received_many(self: Any, route: str, items: list[tuple[Any, int]]) -> list[bool]:
        firsts = original_received(self, route, items)
        with arrived:
            arrivals.append([message.id for message, _ in items])
            arrived.notify_all()
        return firsts

    def next_batch(first_id: str) -> list[str] | None:
        """The ids of the batch journaled after the one holding ``first_id``, once there."""
        index = next((i for i, ids in enumerate(arrivals) if first_id in ids), None)
        return arrivals[index + 1] if index is not None and index + 1 < len(arrivals) else None

    def settle_many(self: Any, route: str, outcomes: list[Outcome], details: Any = None) -> None:
        if not held.is_set() and any(sent for _, _, sent in outcomes) and not marker.exists():
            held.set()
            first_id = outcomes[0][0].id
            with arrived:
                following = next_batch(first_id) or (arrived.wait(30) and next_batch(first_id))
            if following:
                states = {message.id: state for message, state, _ in outcomes}
                partial = marker.with_suffix(".tmp")
                partial.write_text(
                    json.dumps({"route": route, "states": states, "next": following}), encoding="utf-8"
                )
                partial.replace(marker)
            threading.Event().wait()  # until SIGKILL (no marker: the test says the window was not reached)
        original_settle(self, route, outcomes, details)

    BatchedWrites.received_many = received_many  # type: ignore[method-assign]
    BatchedWrites.settle_many = settle_many  # type: ignore[method-assign]


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[0] == "--next-batch":
        hold_with_next_batch(Path(arguments[1]))
        arguments = arguments[2:]
    else:
        hold_in_window(Path(arguments[0]))
        arguments = arguments[1:]
    sys.argv = ["esb", *arguments]
    sys.exit(main())
