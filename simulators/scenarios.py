"""Demo scenarios: for each route, a simulated sender, the planned messages, and the simulated receiver.

A scenario knows how to drive its route with N messages and how many of them the receiving system must
get. `esb demo` and `make run` use them; the e2e tests too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from simulators.batch_scenarios import BillingChargesScenario, NCRExtractScenario
from simulators.channel import ChannelOrderScenario
from simulators.crm import PlannedMessage, order_scenario
from simulators.customer_sync import CustomerSyncScenario
from simulators.order_flows import OrdersToIOMScenario
from simulators.rest_channel import RESTChannelOrderScenario
from simulators.soap_scenarios import CRMBillingAccountScenario, HotlineBalanceScenario

if TYPE_CHECKING:
    from esb.project import Project


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


class CRMOrderScenario(OrdersToIOMScenario):
    """CRM orders (SiebelMessage on the CRM queue) to IOM order requests (JSON on the IOM queue)."""

    id_mark = "-crm-"

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan ``count`` CRM messages."""
        self.prefix = f"{run}{self.id_mark}"
        return order_scenario(count, run=run)


#: source endpoint -> scenario factory. Other flows register theirs here.
SCENARIOS: dict[str, Callable[[Any, str], Scenario]] = {
    "crm.orders_out": CRMOrderScenario,
    "crm.soap_billing_accounts": CRMBillingAccountScenario,
    "hotline.soap_balance": HotlineBalanceScenario,
    "billing.charges_in": BillingChargesScenario,
    "ncr.customers_feed": NCRExtractScenario,
    "channel.orders_out": ChannelOrderScenario,
    "channel.rest_orders": RESTChannelOrderScenario,
    "crm.customers_out": CustomerSyncScenario,
}


def scenario_for(project: Project, route_id: str) -> Scenario | None:
    """Return the scenario that drives ``route_id``, or None when no simulator serves its source."""
    factory = SCENARIOS.get(project.route(route_id).from_)
    return factory(project, route_id) if factory else None
