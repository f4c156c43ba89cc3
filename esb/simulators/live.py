"""`esb run --simulate` (what `make run` starts): the simulated CRM keeps sending, IOM keeps receiving.

Each flow is shown on the console as it happens: the order sent by the CRM, and the order request IOM
received. Bad messages are mixed in, as in real life, and end in the dead-letter queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import click

from esb.message import Message
from esb.simulators.crm import CRMSimulator, order_scenario
from esb.simulators.iom import IOMSimulator


class LiveSimulation:
    """Runs the simulated CRM (a sender thread) and IOM (a receiver thread) beside the hub."""

    def __init__(
        self,
        project: Any,
        *,
        interval: float = 2.0,
        source: str = "crm.orders_out",
        target: str = "iom.orders_in",
    ) -> None:
        self.project = project
        self.interval = interval
        self.source = source
        self.iom = IOMSimulator(project, target, on_order=self._show_order)
        self.stop_event = threading.Event()
        self.sender = threading.Thread(target=self._send_forever, name="sim-crm", daemon=True)

    def _show_order(self, message: Message, order: dict[str, Any]) -> None:
        header = order.get("header", {})
        lines = order.get("orderLines", [])
        click.echo(
            f"IOM  <- order request {header.get('orderNo', '?')} with {len(lines)} line(s), "
            f"priority {message.headers.get('priority', '-')}  [{message.id}]"
        )

    def _send_forever(self) -> None:
        run = uuid.uuid4().hex[:8]
        batch = 0
        with CRMSimulator(self.project, self.source) as crm:
            while not self.stop_event.is_set():
                for planned in order_scenario(25, seed=batch, run=f"{run}-{batch}"):
                    if self.stop_event.wait(self.interval):
                        return
                    crm.send(planned.message)
                    click.echo(
                        f"CRM  -> {planned.kind:<22} expected {planned.expected:<14} [{planned.message.id}]"
                    )
                batch += 1

    def __enter__(self) -> LiveSimulation:
        self.project.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.iom.start()
        time.sleep(0.5)
        self.sender.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.iom.stop()
        self.sender.join(5)
        self.iom.join(5)
