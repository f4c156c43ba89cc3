"""ProjectResources: each runner thread gets its own connected sink of an endpoint, all closed at the end."""

from __future__ import annotations

import threading
from typing import Any

from esb.process.engine import ProjectResources


class Sink:
    """A sink recording whether it was connected and closed."""

    def __init__(self) -> None:
        self.connected = self.closed = False

    def connect(self) -> None:
        """Mark connected."""
        self.connected = True

    def close(self) -> None:
        """Mark closed."""
        self.closed = True


class Adapter:
    """Makes a new sink each time and keeps them all."""

    def __init__(self) -> None:
        self.made: list[Sink] = []

    def sink(self, endpoint: Any, context: Any) -> Sink:
        """A new sink."""
        self.made.append(Sink())
        return self.made[-1]


class FakeProject:
    """The three project methods ProjectResources uses."""

    def __init__(self) -> None:
        self.adapter = Adapter()

    def adapter_for(self, endpoint: str) -> Adapter:
        """The one adapter."""
        return self.adapter

    def endpoint(self, name: str) -> str:
        """The endpoint's config (its name is enough here)."""
        return name

    def context(self, name: str) -> None:
        """No context."""


def test_each_thread_gets_its_own_connected_sink_and_close_closes_them_all() -> None:
    """One thread asking twice gets one sink; another thread gets another (a sink is not thread-safe)."""
    project = FakeProject()
    resources = ProjectResources(project)
    mine = resources.sink("iom.order_status")
    assert resources.sink("iom.order_status") is mine
    theirs: list[Any] = []
    thread = threading.Thread(target=lambda: theirs.append(resources.sink("iom.order_status")))
    thread.start()
    thread.join(10)
    assert len(theirs) == 1
    assert theirs[0] is not mine
    assert [s.connected for s in project.adapter.made] == [True, True]
    resources.close()
    assert [s.closed for s in project.adapter.made] == [True, True]
