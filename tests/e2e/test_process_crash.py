"""Issue 15's e2e: order-to-activation processes survive SIGKILLs of the hub and a database restart.

500 canonical orders (好E家 bundles and single products) go straight onto ``hub.product_orders``, the
trigger of ``order_to_activation`` (the CRM route that feeds it in production is tested on its own; here
every order must be in flight at once, and a route hop would only delay them). The simulated RIM, OSS
and Billing run in this process on loopback, scripted per order: RIM refuses some reservations, OSS
never answers some activations (the await's deadline is 5 s in the project copy), and the CRM cancels
some orders on ``crm.order_cancellations`` while they wait for OSS. The hub runs in a subprocess and
is SIGKILLed and restarted while orders are in flight; on PostgreSQL the database is then stopped and
started under the running hub, right after its last restart (while it takes over the instances the
killed hub held: the anchors' "instances stuck after the database restarts during recovery"). At the
end every instance has ended in the state its scenario expects, RIM holds no reservation of an order
that did not complete, nothing was activated, reserved or billed twice, every never-answered await
timed out at each deadline, and the held-back OSS results, delivered after their orders ended, are
dead-lettered and change nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from esb.exceptions import TransportError
from esb.journal import Journal
from esb.process.engine.tables import process_instances
from esb.project import Project
from simulators.devenv import ensure_credentials
from simulators.process_systems import OSS_RESULTS
from tests.e2e.order_processes import (
    CANCEL_PROCESS,
    ENDED,
    Instances,
    OrderSystems,
    ProcessHub,
    free_ports,
    order_environ,
    plan_orders,
    process_project,
    put,
)
from tests.integration.pg_server import PostgresServer
from tests.integration.rabbit_server import RabbitServer
from tests.waiting import wait_for_count

PASSWORDS = ("RIM_PASSWORD", "OSS_PASSWORD", "BILLING_PASSWORD")
RESULTS_ROUTE = f"process:{OSS_RESULTS}"
#: What a poll of the database raises while PostgreSQL restarts (counted as no progress).
DATABASE_DOWN = (sa.exc.OperationalError,)


class Run:
    """One scenario: the project copy, the systems, the hub and the orders."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, count: int, extra: dict[str, str]) -> None:
        root = process_project(tmp / "project")
        ports = free_ports()
        for name in PASSWORDS:
            monkeypatch.delenv(name, raising=False)  # so the undo removes what ensure_credentials sets
        project = Project.load(root, environ=order_environ(tmp / "var", ports, **extra))
        for name, value in ensure_credentials(project).items():
            monkeypatch.setenv(name, value)
        self.environ = order_environ(tmp / "var", ports, **extra)  # now with the credentials
        self.project = Project.load(root, environ=self.environ)
        self.project.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.orders = plan_orders(count, run="crash")
        self.ids = [o.order_id for o in self.orders]
        self.systems = OrderSystems(self.project, self.orders)
        self.hub = ProcessHub(root, self.environ, tmp / "hub.log")
        self.instances = Instances(self.project.settings.journal.url)
        self.cancels = {o.order_id: o for o in self.orders if o.cancel}

    def start(self) -> None:
        """Start the systems and the hub, then put every order on the trigger endpoint."""
        self.systems.start()
        self.hub.start()
        self.hub.wait_started()
        assert put(self.project, "hub.product_orders", (o.message() for o in self.orders)) == len(self.orders)

    def cancel_waiting(self) -> None:
        """Send the CRM's cancel for each order to cancel once its instance waits for OSS."""
        if not self.cancels:
            return
        states = self.instances.by_order()
        started = {states[o][0]: o for o in self.cancels if o in states}
        ready = [started[i] for i in self.instances.waiting_for_oss(started)]
        if ready:
            put(
                self.project, "crm.order_cancellations", (self.cancels.pop(o).cancel_message() for o in ready)
            )

    def progress(self, share: float) -> None:
        """Wait until ``share`` of the orders have ended (sending cancels as their orders wait for OSS);
        give up only when none ended for a while (tests/waiting.py)."""

        def ended() -> int:
            self.cancel_waiting()
            return self.instances.ended(self.ids)

        target = math.ceil(share * len(self.ids))
        wait_for_count(ended, target, f"{share:.0%} of the orders to end", tolerate=DATABASE_DOWN)

    def kill_and_restart(self) -> None:
        """SIGKILL the hub while orders are in flight and start it again."""
        assert self.instances.ended(self.ids) < len(self.ids), "every order ended before the kill: add orders"
        starts = self.hub.starts()
        self.hub.kill()
        self.hub.start()
        self.hub.wait_started(previous=starts)

    def finish(self) -> None:
        """Wait until every instance of both processes has ended (none stuck or waiting)."""
        self.progress(1.0)
        assert not self.cancels, f"cancels never sent (their orders never waited): {sorted(self.cancels)}"

        def ended_minus_all() -> int:  # counts up to 0 as the last instances end
            return -len(self.unfinished())

        wait_for_count(ended_minus_all, 0, "every cancellation to end", tolerate=DATABASE_DOWN)

    def late_replies(self) -> None:
        """Deliver the activation results OSS held back, now that their orders ended: each is
        dead-lettered (journaled on ``process:oss.activation_results``), none applied."""
        held = list(self.systems.filter.held.values())
        assert held, "no OSS result was held back: the silent orders sent none"
        put(self.project, OSS_RESULTS, held)
        with Journal(self.project.settings.journal.url) as journal:
            wait_for_count(
                lambda: sum(journal.outcome(RESULTS_ROUTE, m.id) == "dead_lettered" for m in held),
                len(held),
                "the late OSS results to be dead-lettered",
                tolerate=(TransportError,),
            )

    def unfinished(self) -> list[tuple[str, str, str]]:
        """(process, status, error) of every instance not ended."""
        i = process_instances.c
        query = sa.select(i.process, i.status, i.error).where(i.status.not_in(ENDED))
        with self.instances.engine.connect() as conn:
            return [(r.process, r.status, r.error or "") for r in conn.execute(query)]

    def check(self) -> None:
        """Every order in its expected end state, the systems clean, every deadline fired."""
        states = self.instances.by_order()
        outcomes = {o.order_id: states[o.order_id][1] for o in self.orders}
        assert outcomes == {o.order_id: o.expected for o in self.orders}
        assert self.unfinished() == []
        cancels = self.instances.by_order(CANCEL_PROCESS)
        assert {o: cancels[o][1:] for o in cancels} == {
            o.order_id: ("completed", "done") for o in self.orders if o.cancel
        }
        assert self.systems.problems(self.orders) == []
        for order in self.orders:
            if order.silent and not order.cancel:
                fired = self.instances.timeouts(states[order.order_id][0])
                assert fired == {f"components[{order.order_id}-1].activation_result": 3}, order.order_id
        assert self.systems.filter.dropped > 0

    def close(self) -> None:
        """Stop the hub and the systems."""
        try:
            assert self.hub.stop() == 0, self.hub.log.read_text()[-3000:]
        finally:
            self.systems.stop()
            self.instances.close()


def crash(run: Run, kills: int, restart_database: Callable[[], None] | None) -> None:
    """Start, SIGKILL the hub ``kills`` times at spread moments, restart the database right after the
    last restart of the hub (during its recovery), finish, check."""
    try:
        run.start()
        for n in range(kills):
            run.progress(0.1 + 0.25 * n)
            run.kill_and_restart()
        if restart_database is not None:
            # at once, while the restarted hub recovers what the killed one held (its leases expire)
            assert run.instances.ended(run.ids) < len(run.ids), "every order ended before the restart"
            restart_database()
        run.finish()
        run.late_replies()
        run.check()
    finally:
        run.close()


@pytest.mark.integration
@pytest.mark.slow
def test_500_orders_survive_three_sigkills_and_a_postgres_restart_on_rabbitmq(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rabbit_server: RabbitServer,
    postgres_server: PostgresServer,
) -> None:
    """500 orders on RabbitMQ + PostgreSQL, hub SIGKILLed 3 times, PostgreSQL restarted: all end as
    planned, no leak, nothing done twice, every deadline fired."""
    extra = {
        "ESB_BROKER__URL": rabbit_server.create_vhost("proc"),
        "ESB_JOURNAL__URL": postgres_server.create_database("proc_crash"),
    }

    def restart_postgres() -> None:
        port = postgres_server.port
        postgres_server.stop()
        time.sleep(3)  # an outage the hub's runners and readers see (not an assertion)
        postgres_server.start(port)

    crash(Run(tmp_path, monkeypatch, 500, extra), kills=3, restart_database=restart_postgres)


@pytest.mark.slow
def test_100_orders_survive_a_sigkill_on_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 orders on SQLite queues and journal, hub SIGKILLed once: all end as planned, nothing leaks."""
    crash(Run(tmp_path, monkeypatch, 100, {}), kills=1, restart_database=None)
