"""Completed orders per second end to end (issue 15): order_to_activation in a real hub, real SOAP peers.

    .venv/bin/python bench/process_e2e_bench.py [--orders 300] [--only embedded,rabbitmq]

For each transport (``embedded``: SQLite queues and journal, the default; ``rabbitmq``: RabbitMQ queues
and the journal with the process store on PostgreSQL, both throw-away servers as bench/servers.py starts
them) a copy of the project with ``order_to_activation`` and ``order_cancellation`` in its processes/
runs in ``esb run`` (a subprocess; 4 process runners, poll 0.1 s: tests/e2e/order_processes.py), the
simulated RIM, OSS and Billing serve its SOAP endpoints in this process at zero latency (OSS's result
published at once on ``oss.activation_results``), and ``--orders`` canonical orders (30% 好E家 bundles of
two components, 70% single products: 1.3 components an order, every one completes) are put on
``hub.product_orders`` with the hub already running. Measured: from the first order put to every
instance ended (polled every 0.2 s), so orders/s = orders / that time; also components/s, process
steps/s (rows of ``process_steps``) and the CPU per order of the hub process and of this one (the
simulators, the polling) from /proc.

Baseline in the same run, on the same database, after the hub stopped: a route hop as the journal writes
it (``received`` + ``event(delivered)`` + ``mark_delivered``), process_bench.py's ``route_hops``, printed
as hops/s beside the orders/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from itertools import count
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from process_bench import load, route_hops  # bench/ is not a package: its folder is on sys.path
from rabbit_bench import process_cpu

from esb.journal import Journal
from esb.process.engine.tables import process_steps
from esb.project import Project
from simulators.devenv import ensure_credentials
from tests.e2e.order_processes import (
    Instances,
    OrderSystems,
    ProcessHub,
    free_ports,
    order_environ,
    plan_orders,
    process_project,
    put,
)

HOPS = 1000


def steps(url: str) -> int:
    """How many step rows the process store holds."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(process_steps)).scalar_one())
    finally:
        engine.dispose()


def measure(label: str, folder: Path, orders: int, extra: dict[str, str]) -> None:
    """Run ``orders`` orders through a hub on ``folder``'s project copy and print the figures."""
    root = process_project(folder / "project")
    ports = free_ports()
    project = Project.load(root, environ=order_environ(folder / "var", ports, **extra))
    ensure_credentials(project)  # this process's environment: the hub inherits it
    environ = order_environ(folder / "var", ports, **extra)
    project = Project.load(root, environ=environ)
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    planned = plan_orders(orders, run="bench", faults=False)
    ids = [o.order_id for o in planned]
    components = sum(len(o.body["productOrderItem"][0].get("productOrderItem") or [1]) for o in planned)
    systems = OrderSystems(project, planned)
    hub = ProcessHub(root, environ, folder / "hub.log")
    instances = Instances(project.settings.journal.url)
    systems.start()
    try:
        hub.start()
        hub.wait_started()
        assert hub.proc is not None
        cpu_before, sims_before = process_cpu(hub.proc.pid), process_cpu(os.getpid())
        print(f"{label}: {orders} orders, {components} components ({load()})")
        began = time.perf_counter()
        put(project, "hub.product_orders", (o.message() for o in planned))
        queued = time.perf_counter() - began
        while instances.ended(ids) < orders:
            time.sleep(0.2)
        took = time.perf_counter() - began
        cpu = process_cpu(hub.proc.pid) - cpu_before
        sims = process_cpu(os.getpid()) - sims_before
        assert hub.stop() == 0
        states = instances.by_order()
        completed = sum(1 for o in ids if states[o][1] == "completed")
        problems = systems.problems(planned)
    finally:
        hub.stop()
        systems.stop()
        instances.close()
    rows = steps(project.settings.journal.url)
    print(f"  orders put in {queued:.1f} s; every instance ended {took:.1f} s after the first put")
    print(f"  completed {completed} of {orders}; problems: {problems or 'none'}")
    print(f"  end to end: {orders / took:.1f} orders/s, {components / took:.1f} components/s, "
          f"{rows / took:.0f} steps/s ({rows} step rows)")  # fmt: skip
    print(f"  hub CPU: {cpu / orders * 1e3:.0f} ms per order, {cpu / rows * 1e3:.2f} ms per step row; "
          f"this process (simulators, polling): {sims / orders * 1e3:.0f} ms per order")  # fmt: skip
    with Journal(project.settings.journal.url) as journal:
        hop = min(route_hops(journal, HOPS, count()) for _ in range(3))
    print(f"  baseline, same database: route hop (journal) {hop:.0f} µs = {1e6 / hop:.0f} hops/s")
    print(f"  one completed order = {1e6 / hop / (orders / took):.0f} route hops' time")


@contextmanager
def rabbitmq() -> Iterator[dict[str, str]]:
    """Throw-away RabbitMQ and PostgreSQL (bench/servers.py); yield the hub's broker and journal URLs."""
    from servers import throwaway_servers

    with throwaway_servers() as (rabbit, pg):
        yield {"ESB_BROKER__URL": rabbit.create_vhost("pe2e"), "ESB_JOURNAL__URL": pg.create_database("pe2e")}


def main() -> None:
    """Parse the options and measure on each transport asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--only", default="embedded,rabbitmq", help="embedded and/or rabbitmq")
    args = parser.parse_args()
    wanted = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(wanted) - {"embedded", "rabbitmq"}
    if unknown:
        parser.error(f"--only: expected embedded and/or rabbitmq, got {', '.join(sorted(unknown))}")
    for transport in wanted:
        with ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="esb-pe2e-")))
            extra = stack.enter_context(rabbitmq()) if transport == "rabbitmq" else {}
            label = "RabbitMQ + PostgreSQL" if extra else "embedded (SQLite)"
            measure(label, folder, args.orders, extra)


if __name__ == "__main__":
    main()
