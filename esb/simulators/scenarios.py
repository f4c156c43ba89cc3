"""Demo scenarios: for each route, a simulated sender, the planned messages, and the simulated receiver.

A scenario knows how to drive its route with N messages and how many of them the receiving system must
get. `esb demo` and `make run` use them; the e2e tests too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from esb.simulators.crm import CRMSimulator, PlannedMessage, order_scenario
from esb.simulators.iom import IOMSimulator


class Scenario(Protocol):
    """Drives one route with simulated peripheral systems."""

    route_id: str

    def start(self) -> None:
        """Start the simulated receiving systems."""
        ...

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Return ``count`` planned messages with their expected outcomes."""
        ...

    def send(self, planned: list[PlannedMessage]) -> None:
        """Send the planned messages through the real protocol."""
        ...

    def received(self) -> int:
        """How many distinct messages the receiving system got."""
        ...

    def problems(self) -> list[str]:
        """What the receiving system found wrong (malformed requests...)."""
        ...

    def stop(self) -> None:
        """Stop the simulated systems."""
        ...


class CRMOrderScenario:
    """CRM orders (SiebelMessage on the CRM queue) to IOM order requests (JSON on the IOM queue)."""

    def __init__(self, project: Any, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        route = project.route(route_id)
        self.source = route.from_
        self.iom = IOMSimulator(project, route.destinations()[0])

    def start(self) -> None:
        """Start the simulated IOM."""
        self.iom.start()
        self.iom.ready.wait(10)

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan ``count`` CRM messages."""
        return order_scenario(count, run=run)

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish on the CRM queue."""
        with CRMSimulator(self.project, self.source) as crm:
            for item in planned:
                crm.send(item.message)

    def received(self) -> int:
        """Orders IOM received."""
        return self.iom.count()

    def problems(self) -> list[str]:
        """Malformed requests IOM saw."""
        return [f"IOM got a malformed order request: {mid}" for mid in self.iom.malformed]

    def stop(self) -> None:
        """Stop the simulated IOM."""
        self.iom.stop()
        self.iom.join(5)


#: source endpoint -> scenario factory. Other flows register theirs here.
SCENARIOS: dict[str, Callable[[Any, str], Scenario]] = {
    "crm.orders_out": CRMOrderScenario,
}


def scenario_for(project: Any, route_id: str) -> Scenario | None:
    """Return the scenario that drives ``route_id``, or None when no simulator serves its source."""
    factory = SCENARIOS.get(project.route(route_id).from_)
    return factory(project, route_id) if factory else None
