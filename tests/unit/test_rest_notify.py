"""The event hub's postman without HTTP: a listener's events are posted in order, a failed one holds
back the listener's later events (and no other listener's) until it is delivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.rest.config import EventOptions
from adapters.rest.notify import Notifier
from adapters.rest.store import ResourceStore


class Postman(Notifier):
    """A notifier whose listeners answer from a script: ``failures`` 500s per callback, then 2xx."""

    def __init__(self, store: ResourceStore, failures: dict[str, int]) -> None:
        context: Any = SimpleNamespace(endpoint="channel.rest_orders", system="channel")
        super().__init__(store, EventOptions(initial_backoff=60, max_attempts=5), context)
        self.failures = failures
        self.posted: list[tuple[str, str, bool]] = []

    def _post(self, callback: str, body: str) -> str | None:
        event_id = body.split('"eventId":"')[1].split('"')[0]
        failed = self.failures.get(callback, 0) > 0
        self.failures[callback] = self.failures.get(callback, 0) - 1
        self.posted.append((callback.rsplit("/", 1)[1], event_id, not failed))
        return "HTTP 500" if failed else None

    def _journal(self, row: dict[str, Any], state: str, attempts: int, error: str | None) -> bool:
        return True


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResourceStore]:
    """A store with two listeners, each given two events of one order."""
    opened = ResourceStore(tmp_path / "rest.db").open()
    opened.add_listener("L-a", "http://127.0.0.1:9/a", None)
    opened.add_listener("L-b", "http://127.0.0.1:9/b", None)
    for n, kind in ((1, "ProductOrderCreateEvent"), (2, "ProductOrderStateChangeEvent")):
        opened.enqueue({"eventId": f"E-{n}", "eventType": kind, "event": {}}, "PO-1", None)
    yield opened
    opened.close()


def test_a_failed_event_holds_back_its_listeners_later_events_only(store: ResourceStore) -> None:
    """a's first event fails: its second is not posted in that round (b's are); after the backoff a gets
    both, in order."""
    postman = Postman(store, {"http://127.0.0.1:9/a": 1})
    assert postman.post_due() == 2
    assert postman.posted == [("a", "E-1", False), ("b", "E-1", True), ("b", "E-2", True)]
    assert postman.post_due() == 0  # E-1 waits for its backoff (a minute); E-2 behind it
    assert postman.post_due(now=time.time() + 61) == 2
    assert postman.posted[3:] == [("a", "E-1", True), ("a", "E-2", True)]
    assert store.events(status="pending") == []
