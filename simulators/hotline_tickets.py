"""The 10000 hotline's ticket client, simulated: files complaints and asks where a ticket stands (SOAP).

A zeep client of the hub's ``/soap/hotline`` (SOAP 1.2, WS-Security digest), as the order status client
(simulators/status_query.py) it extends: ``complain(...)`` calls the one-way ``SubmitComplaint`` (route
hotline-complaint-to-hub: the complaint becomes a ticket TT-10000-<complaintNo> for the assurance
process), ``ticket_status(ticket_id=... | access_number=...)`` calls ``QueryTicketStatus`` (route
hotline-ticket-status-query) and returns the answer as plain data; a fault raises
``simulators.status_query.QueryRefused``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from simulators.status_query import StatusQueryClient, client_for

if TYPE_CHECKING:
    from esb.project import Project

COMPLAINTS_ENDPOINT = "hotline.soap_complaints"


class HotlineTicketClient(StatusQueryClient):
    """The hotline's complaint and ticket status calls on one connection."""

    def complain(
        self,
        complaint_no: str,
        *,
        access_number: str,
        city: str,
        product: str,
        category: str,
        urgency: str,
        content: str,
        fault_type: str | None = None,
        agent_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """File a complaint (one-way: returns once the hub has it)."""
        self.connect()
        self._client.service.SubmitComplaint(
            complaintNo=complaint_no,
            accNbr=access_number,
            city=city,
            product=product,
            faultType=fault_type,
            category=category,
            urgency=urgency,
            content=content,
            agentId=agent_id,
            time=at or datetime.now().astimezone(),
        )

    def ticket_status(
        self, *, ticket_id: str | None = None, access_number: str | None = None
    ) -> dict[str, Any]:
        """Ask where a ticket stands; the answer as plain data (``found``, ``ticket`` list)."""
        return self.call("QueryTicketStatus", ticketId=ticket_id, accessNumber=access_number)


def hotline_ticket_client(project: Project, *, timeout: float = 10.0) -> HotlineTicketClient:
    """The hotline's ticket client of the hub's ``hotline.soap_complaints`` listener."""
    return client_for(project, COMPLAINTS_ENDPOINT, timeout=timeout, kind=HotlineTicketClient)
