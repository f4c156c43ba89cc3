"""The CRM-order route on RabbitMQ + PostgreSQL (1 and 2 `esb run` processes) against raw kombu.

    .venv/bin/python bench/rabbit_bench.py [--messages 3000]

Starts a throwaway RabbitMQ node and PostgreSQL server on loopback, then in the same run measures:
- raw pass-through (the baseline): kombu consumes from one quorum queue (prefetch 100), publishes each
  body persistently with a publisher confirm to another quorum queue on a second connection, then acks;
- the hub: `esb --env production run` with the crm-order-to-iom route (Siebel mapping, validation,
  filter, choice, IOM mapping, journal on PostgreSQL), 1 process and then 2 processes, on a backlog of
  the same number of valid orders, timed from start to the last outcome in the journal.
Also prints each hub process's peak RSS (VmHWM) with the backlog queued (memory is bounded by prefetch).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from kombu import Connection, Queue

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esb.journal.schema import events
from esb.message import Message
from esb.simulators.crm import CRMSimulator, make_order
from esb.simulators.siebel import siebel_order_xml
from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.integration.pg_server import PostgresServer, _run_as, find_bin_dir
from tests.integration.rabbit_server import RabbitServer

QUORUM = {"x-queue-type": "quorum"}


def bodies(count: int) -> list[bytes]:
    """``count`` valid Siebel orders."""
    rng = random.Random(7)
    out = []
    for i in range(count):
        order = make_order(i, rng)
        order.status = "Submitted"
        out.append(siebel_order_xml(order))
    return out


def raw_pass_through(url: str, payloads: list[bytes]) -> float:
    """msg/s of consume -> confirmed persistent publish (second connection) -> ack, on quorum queues."""
    src = Queue("raw.in", routing_key="raw.in", queue_arguments=QUORUM)
    dst = Queue("raw.out", routing_key="raw.out", queue_arguments=QUORUM)
    with Connection(url, transport_options={"confirm_publish": True}) as conn, conn.Producer() as producer:
        for body in payloads:
            producer.publish(body, routing_key="raw.in", declare=[src, dst], delivery_mode=2)
    done = 0
    with Connection(url) as consume, Connection(url, transport_options={"confirm_publish": True}) as publish:
        producer = publish.Producer()

        def on_message(body: bytes, message: object) -> None:
            nonlocal done
            producer.publish(body, routing_key="raw.out", delivery_mode=2, mandatory=True)
            message.ack()  # type: ignore[attr-defined]
            done += 1

        with consume.Consumer([src], callbacks=[on_message], accept=None, prefetch_count=100):
            start = time.perf_counter()
            while done < len(payloads):
                consume.drain_events(timeout=10)
            return len(payloads) / (time.perf_counter() - start)


def finished(url: str) -> int:
    """Messages with a route-level outcome in the journal."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = (
                sa.select(sa.func.count())
                .select_from(events)
                .where(events.c.state == "delivered", events.c.endpoint.is_(None))
            )
            return int(conn.execute(query).scalar_one())
    except sa.exc.DBAPIError:
        return 0
    finally:
        engine.dispose()


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hub_run(
    rabbit: RabbitServer, pg: PostgresServer, payloads: list[bytes], processes: int
) -> tuple[float, list[float]]:
    """msg/s of ``processes`` hub processes on a backlog of ``payloads``; their peak RSS."""
    work = Path(tempfile.mkdtemp(prefix="esb-bench-"))
    environ = production_environ(work / "var", rabbit.create_vhost("bench"), pg.create_database("bench"))
    project = production_project(environ)
    with CRMSimulator(project) as crm:
        for i, body in enumerate(payloads):
            crm.send(Message(body=body, id=f"b-{i}"))
    hubs = [ProductionHub(environ, work / f"hub{i}.log") for i in range(processes)]
    start = time.perf_counter()
    for hub in hubs:
        hub.start()
    while finished(environ["ESB_JOURNAL__URL"]) < len(payloads):
        time.sleep(0.1)
    rate = len(payloads) / (time.perf_counter() - start)
    rss = [peak_rss_mb(h.proc.pid) for h in hubs if h.proc is not None]
    for hub in hubs:
        hub.stop()
    shutil.rmtree(work, ignore_errors=True)
    return rate, rss


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries not found (make test-servers)")
    pg = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="esb-pg-")), _run_as())
    rabbit = RabbitServer(Path(tempfile.mkdtemp(prefix="esb-rabbit-")))
    try:
        pg.init()
        pg.start()
        rabbit.start()
        rabbit.setup_user()
        payloads = bodies(args.messages)
        raw = raw_pass_through(rabbit.create_vhost("raw"), payloads)
        one, rss1 = hub_run(rabbit, pg, payloads, 1)
        two, rss2 = hub_run(rabbit, pg, payloads, 2)
    finally:
        rabbit.cleanup()
        pg.stop()
        shutil.rmtree(pg.base, ignore_errors=True)
    print(f"messages: {args.messages} (backlog queued before the consumers start)")
    print(f"{'measure':<58} {'msg/s':>8} {'vs raw':>7}  peak RSS MB")
    print(f"{'raw kombu pass-through, confirms, quorum queues (baseline)':<58} {raw:>8.0f} {1.0:>7.2f}")
    for label, rate, rss in (("1 process", one, rss1), ("2 processes", two, rss2)):
        name = f"hub, crm-order-to-iom, {label}, journal on PostgreSQL"
        print(f"{name:<58} {rate:>8.0f} {rate / raw:>7.2f}  {[round(r) for r in rss]}")


if __name__ == "__main__":
    main()
