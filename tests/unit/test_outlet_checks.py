"""The outlet's per-sink checks: whether a sink writes many is checked once per sink object, again for
the sink that replaces one dropped after a failure; a fixed route's destinations are its own list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import esb.runtime.outlet as outlet_module
from esb.exceptions import TransportError
from esb.journal import Journal
from esb.message import Message
from esb.runtime.outlet import Outlet
from esb.testing import BROKER, MemoryAdapter, MemorySink
from tests.unit.routes_fixture import make_project

ROUTE = {"id": "r", "from": "a.in", "to": ["b.out", "c.out"], "steps": []}


class ManySink(MemorySink):
    """A memory sink that writes many (fails them all while ``failing`` is set)."""

    failing = False

    def write_many(self, messages: list[Message]) -> None:
        """Write each message in turn, or fail the batch."""
        if self.failing:
            raise TransportError("down", endpoint="b.out")
        for message in messages:
            self.write(message)


@pytest.fixture
def outlet(tmp_path: Path) -> Any:
    """An outlet of a route to two memory endpoints, with a journal."""
    BROKER.reset()
    project = make_project(tmp_path, [ROUTE], ["a.in", "b.out", "c.out"])
    journal = Journal(project.settings.journal.url)
    journal.connect()
    yield Outlet(project, project.routes[0], journal)
    journal.close()


def test_the_batch_writer_check_runs_once_per_sink(outlet: Outlet, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many batches make one protocol check per sink; the sink made after a failed batch is checked anew."""
    made: list[MemorySink] = []

    def sink(_self: MemoryAdapter, _endpoint: Any, context: Any) -> MemorySink:
        # the first b.out sink writes many; the one made after its failure does not
        made.append(ManySink(context.endpoint) if not made else MemorySink(context.endpoint))
        return made[-1]

    monkeypatch.setattr(MemoryAdapter, "sink", sink)
    checks: list[object] = []
    capability = outlet_module.capability

    def counted(obj: object, kind: Any) -> Any:
        checks.append(obj)
        return capability(obj, kind)

    monkeypatch.setattr(outlet_module, "capability", counted)
    for batch in range(5):
        assert outlet.writes_many("b.out")
        outlet.write_many("b.out", [Message(body=f"m{batch}".encode())])
    assert checks == [made[0]]
    assert [m.body for m in BROKER.written("b.out")] == [f"m{i}".encode() for i in range(5)]
    ManySink.failing = True
    try:
        with pytest.raises(TransportError):
            outlet.write_many("b.out", [Message(body=b"lost")])
    finally:
        ManySink.failing = False
    assert not outlet.writes_many("b.out")  # a new sink, which writes one at a time
    assert checks == [made[0], made[1]]


def test_a_fixed_routes_destinations_are_its_to(outlet: Outlet) -> None:
    """Every message of a route with a fixed ``to`` goes to its endpoints, in order."""
    assert outlet.destinations(Message(body=b"x")) == ["b.out", "c.out"]
    assert outlet.destinations(Message(body={"other": 1})) == ["b.out", "c.out"]
