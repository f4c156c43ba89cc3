"""Scenarios of the order routes ending at IOM: a queue publisher, and the IOM they share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulators.crm import CRMSimulator, PlannedMessage
from simulators.iom import IOMSimulator

if TYPE_CHECKING:
    from esb.project import Project


class OrdersToIOMScenario:
    """Orders published on a source queue and received by the simulated IOM.

    IOM is shared by every order route (one queue); each scenario counts only the ids that carry its
    ``id_mark`` (``-crm-``, ``-channel-``) for its run. Subclasses say how to plan the messages.
    """

    id_mark = "-"

    def __init__(self, project: Project, route_id: str) -> None:
        self.project = project
        self.route_id = route_id
        route = project.route(route_id)
        self.source = route.from_
        self.iom = IOMSimulator.shared(project, route.destinations()[0])
        self.prefix = self.id_mark

    def start(self) -> None:
        """Start the (shared) simulated IOM."""
        self.iom.start_once()
        self.iom.ready.wait(10)

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan ``count`` messages (subclasses)."""
        raise NotImplementedError

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish on the source queue through its real adapter."""
        with CRMSimulator(self.project, self.source) as publisher:  # a generic queue publisher
            for item in planned:
                publisher.send(item.message)

    def received(self) -> int:
        """This scenario's orders that IOM received."""
        return self.iom.count(prefix=self.prefix)

    def problems(self) -> list[str]:
        """Malformed requests IOM saw among this scenario's messages."""
        mine = [mid for mid in self.iom.malformed if mid.startswith(self.prefix)]
        return [f"IOM got a malformed order request: {mid}" for mid in mine]

    def stop(self) -> None:
        """Stop the simulated IOM."""
        self.iom.stop()
        if self.iom.is_alive():  # never started when the hub failed to start
            self.iom.join(5)
