"""esb.runtime.inline: which routes may run on their source's threads, and a lead run on the caller's
thread with the worker's guarantees (journaled, delivered, dead-lettered; given back once closed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import MappingError
from esb.journal import Journal
from esb.message import Message
from esb.runtime.inline import InlineRoute, runs_inline
from esb.runtime.worker import RouteWorker
from esb.testing import BROKER
from esb.typing import Delivery
from tests.unit.routes_fixture import make_project

ENDPOINTS = ["a.in", "b.out", "dlq.r"]
ROUTE = {
    "id": "r",
    "from": "a.in",
    "to": "b.out",
    "on_error": {"redeliver": {"max": 1, "initial": "1ms"}, "dead_letter": "dlq.r"},
    "steps": [{"transform": "t/m"}],
}


def mapping(body: Any) -> Any:
    """Uppercase the body; ``bad`` is a permanent mapping error."""
    if body == b"bad":
        raise MappingError("t/m", "id", "/x", "missing")
    return {"v": body.decode().upper()}


@pytest.fixture
def worker(tmp_path: Path) -> Any:
    """A route worker (never started) over memory endpoints, with a journal."""
    BROKER.reset()
    project = make_project(tmp_path, [ROUTE], ENDPOINTS, {"t/m": mapping})
    journal = Journal(project.settings.journal.url)
    journal.connect()
    yield RouteWorker(project, project.routes[0], journal)
    journal.close()


class Requests:
    """Deliveries handed out one by one, their acks recorded."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.waiting = [
            Delivery(Message(body=b, id=f"m{i}"), self._acker(f"m{i}")) for i, b in enumerate(bodies)
        ]
        self.acks: dict[str, BaseException | None] = {}

    def _acker(self, ident: str) -> Any:
        return lambda error: self.acks.__setitem__(ident, error)

    def read(self) -> Delivery | None:
        """The next waiting delivery, or None."""
        return self.waiting.pop(0) if self.waiting else None


def inline_route(worker: RouteWorker) -> InlineRoute:
    """The worker's route, run inline."""
    return InlineRoute(worker.project, worker.route, worker.journal, worker.source_name)


def test_a_plain_route_runs_inline(worker: RouteWorker) -> None:
    """A route to ordinary endpoints may run on its source's threads."""
    assert runs_inline(worker)


def test_a_route_writing_files_hands_over(worker: RouteWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A route whose dead letters go to a file-writing adapter (one sink per process) hands over."""

    class FileAdapter:
        def write_file(self, endpoint: Any, context: Any, records: Any, now: Any = None) -> tuple[str, int]:
            return "f", 0

    adapter_for = worker.project.adapter_for
    monkeypatch.setattr(
        worker.project, "adapter_for", lambda e: FileAdapter() if e == "dlq.r" else adapter_for(e)
    )
    assert not runs_inline(worker)


def test_a_lead_journals_delivers_and_dead_letters(worker: RouteWorker) -> None:
    """One lead runs every waiting request as the worker would: delivered or dead-lettered, journaled,
    acked without error."""
    requests = Requests([b"a", b"bad", b"c"])
    inline_route(worker).lead(requests.read)
    assert requests.acks == {"m0": None, "m1": None, "m2": None}
    assert [m.body for m in BROKER.written("b.out")] == [{"v": "A"}, {"v": "C"}]
    assert [m.id for m in BROKER.written("dlq.r")] == ["m1"]
    assert worker.journal.outcome("r", "m0") == "delivered"
    assert worker.journal.outcome("r", "m1") == "dead_lettered"


def test_a_closed_route_gives_requests_back(worker: RouteWorker) -> None:
    """After close, a lead processes nothing: each request is given back (acked with an error)."""
    route = inline_route(worker)
    route.close()
    requests = Requests([b"a"])
    route.lead(requests.read)
    assert isinstance(requests.acks["m0"], Exception)
    assert BROKER.written("b.out") == []
    assert worker.journal.outcome("r", "m0") is None
