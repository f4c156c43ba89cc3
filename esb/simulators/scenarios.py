"""Demo scenarios: for each route, a simulated sender, the planned messages, and the simulated receiver.

A scenario knows how to drive its route with N messages and how many of them the receiving system must
get. `esb demo` and `make run` use them; the e2e tests too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from esb.simulators.batch_scenarios import BillingChargesScenario, NCRExtractScenario
from esb.simulators.channel import ChannelOrderScenario
from esb.simulators.crm import CRMSimulator, PlannedMessage, order_scenario
from esb.simulators.iom import IOMSimulator
from esb.simulators.soap_scenarios import CRMBillingAccountScenario, HotlineBalanceScenario


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
        self.iom = IOMSimulator.shared(project, route.destinations()[0])  # IOM is fed by the channel too
        self.prefix = ""

    def start(self) -> None:
        """Start the simulated IOM."""
        self.iom.start_once()
        self.iom.ready.wait(10)

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan ``count`` CRM messages."""
        self.prefix = f"{run}-crm-"
        return order_scenario(count, run=run)

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish on the CRM queue."""
        with CRMSimulator(self.project, self.source) as crm:
            for item in planned:
                crm.send(item.message)

    def received(self) -> int:
        """Orders IOM received."""
        return self.iom.count(prefix=self.prefix)

    def problems(self) -> list[str]:
        """Malformed requests IOM saw."""
        mine = [mid for mid in self.iom.malformed if mid.startswith(self.prefix)]
        return [f"IOM got a malformed order request: {mid}" for mid in mine]

    def stop(self) -> None:
        """Stop the simulated IOM."""
        self.iom.stop()
        self.iom.join(5)


#: source endpoint -> scenario factory. Other flows register theirs here.
SCENARIOS: dict[str, Callable[[Any, str], Scenario]] = {
    "crm.orders_out": CRMOrderScenario,
    "crm.soap_billing_accounts": CRMBillingAccountScenario,
    "hotline.soap_balance": HotlineBalanceScenario,
    "billing.charges_in": BillingChargesScenario,
    "ncr.customers_feed": NCRExtractScenario,
    "channel.orders_out": ChannelOrderScenario,
}


def scenario_for(project: Any, route_id: str) -> Scenario | None:
    """Return the scenario that drives ``route_id``, or None when no simulator serves its source."""
    factory = SCENARIOS.get(project.route(route_id).from_)
    return factory(project, route_id) if factory else None
