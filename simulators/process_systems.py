"""The systems the processes call, simulated: RIM, OSS, Billing's subscriber service, the work-order system.

:class:`ProcessSystems` starts each one on the port and with the credentials its endpoints in
``config/systems.yaml`` name (``rim.reserve_resources``, ``oss.activate_service`` with its results on
``oss.activation_results``, ``billing.create_subscriber``), so the hub's SOAP client endpoints reach them
as they are. `esb run --simulate` (``make run``) starts them; a project without those endpoints starts
none. Their state is there for a demo's final checks: ``rim.inventory.live_reservations(order_id)``,
``oss.activated_twice()``, ``billing.active_subscribers(order_id)``. The work-order system
(simulators/workorder.py) serves the fault_to_resolution process: ``workorders.system`` holds its
technicians, work orders and per-ticket scenarios.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from adapters.soap.config import SOAPEndpoint
from simulators.devenv import password
from simulators.oss import OSSSimulator, QueuePublisher
from simulators.rim import RIMSimulator
from simulators.soap_scenarios import SharedBilling
from simulators.workorder import WorkOrderService

if TYPE_CHECKING:
    from esb.project import Project
    from simulators.billing import BillingSimulator

RIM_ENDPOINT = "rim.reserve_resources"
OSS_ENDPOINT = "oss.activate_service"
OSS_RESULTS = "oss.activation_results"
BILLING_ENDPOINT = "billing.create_subscriber"
WORKORDER_ENDPOINTS = ("workorder.pick_technician", "workorder.orders_in", "workorder.events")
#: A technician answers a work order two seconds after it came, books the slot two seconds later and
#: completes the work two more seconds after that (a work order's hours are the process's own).
WORKORDER_DELAY = 2.0
#: OSS sends its results a second after it accepted the request. RIM refusals and OSS silences are not
#: drawn at random here: the order scenarios (simulators/process_orders.py) decide them per order when
#: they plan it and tell the simulators by order id (``rim.refuse_orders``, ``oss.silent_orders``), so
#: each order's expected end state is known before it is sent.
OSS_RESULT_DELAY = 1.0


def soap_service_config(project: Project, endpoint: str) -> tuple[str, str, int]:
    """Return (username, password, port) a simulated service must use to answer ``endpoint``."""
    config = project.endpoint(endpoint)
    if not isinstance(config, SOAPEndpoint) or config.auth is None or not config.address:
        raise ValueError(f"{endpoint}: expected a SOAP client endpoint with an address and auth")
    if not config.auth.password_env:
        raise ValueError(f"{endpoint}: the simulated service reads its password from password_env, none set")
    return config.auth.username, password(config.auth.password_env), urlsplit(config.address).port or 0


class ProcessSystems:
    """Starts and stops the simulated RIM, OSS and Billing subscriber service for one project."""

    def __init__(self, project: Project, *, hour_seconds: float = 3600.0) -> None:
        self.project = project
        #: the work-order system's hour in seconds (its due times); the demo shortens it
        self.hour_seconds = hour_seconds
        self.rim: RIMSimulator | None = None
        self.oss: OSSSimulator | None = None
        self.billing: BillingSimulator | None = None
        self.workorders: WorkOrderService | None = None
        self._publisher: QueuePublisher | None = None

    def start(self) -> list[str]:
        """Start every system whose endpoint the project declares; return a line per started one."""
        started = []
        endpoints = self.project.endpoints
        if RIM_ENDPOINT in endpoints:
            user, secret, port = soap_service_config(self.project, RIM_ENDPOINT)
            self.rim = RIMSimulator(user, secret)
            started.append(f"RIM      {self.rim.serve(port=port)}")
        if OSS_ENDPOINT in endpoints and OSS_RESULTS in endpoints:
            user, secret, port = soap_service_config(self.project, OSS_ENDPOINT)
            self._publisher = QueuePublisher(self.project, OSS_RESULTS)
            self.oss = OSSSimulator(user, secret, publish=self._publisher, result_delay=OSS_RESULT_DELAY)
            started.append(f"OSS      {self.oss.serve(port=port)} (results on {OSS_RESULTS})")
        if BILLING_ENDPOINT in endpoints:
            self.billing = SharedBilling.acquire(self.project, BILLING_ENDPOINT)
            started.append(f"Billing  subscriber service on port {self.billing.server.effective_port}")
        if all(name in endpoints for name in WORKORDER_ENDPOINTS):
            pick = self.project.endpoint(WORKORDER_ENDPOINTS[0])
            port = urlsplit(str(getattr(pick, "base_url", "") or "")).port or 0
            self.workorders = WorkOrderService(
                self.project,
                answer_delay=WORKORDER_DELAY,
                work_delay=WORKORDER_DELAY,
                hour_seconds=self.hour_seconds,
            )
            started.append(
                f"WorkOrd  {self.workorders.serve(port=port)} (events on {WORKORDER_ENDPOINTS[2]})"
            )
        return started

    def stop(self) -> None:
        """Stop what :meth:`start` started (may be called twice)."""
        rim, self.rim = self.rim, None
        if rim is not None:
            rim.stop()
        oss, self.oss = self.oss, None
        if oss is not None:
            oss.stop()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()
        if self.billing is not None:
            self.billing = None
            SharedBilling.release()
        workorders, self.workorders = self.workorders, None
        if workorders is not None:
            workorders.stop()
