"""Peak RSS of one `esb run` process draining RabbitMQ backlogs of different depths (issue 4: memory flat).

    .venv/bin/python bench/rabbit_memory.py [--depths 3000,30000]

Starts a throwaway RabbitMQ node and PostgreSQL server on loopback (the test fixtures' classes). For each
depth, in the same run and in a fresh vhost and database: queues that many valid Siebel orders on
``crm.orders.out`` (published in confirmed batches before the hub starts; the queue depth is read back
with ``rabbitmqctl list_queues``), starts ONE `esb --env production run` process with the
crm-order-to-iom route (journal on PostgreSQL), samples its VmRSS every 0.2 s until every message has
its route-level ``delivered`` event in the journal, then reads its VmHWM (peak RSS) from
``/proc/<pid>/status`` before stopping it. Prints one row per depth: RSS when the first message was
delivered, at half the backlog, at the end, and the peak, with the drain rate.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rabbit_bench import bodies  # bench/ is not a package: its folder is on sys.path
from servers import throwaway_servers

from esb.journal.schema import events
from esb.message import Message
from simulators.crm import CRMSimulator
from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.integration.pg_server import PostgresServer
from tests.integration.rabbit_server import RabbitServer

#: Messages published per confirmed batch while filling the backlog.
FILL_CHUNK = 500


@dataclass
class Drain:
    """What one depth gave."""

    depth: int
    queued: int
    seconds: float
    rss_first: float
    rss_half: float
    rss_end: float
    peak: float


def status_mb(pid: int, field: str) -> float:
    """``field`` (VmRSS, VmHWM) of a process's /proc status, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def queue_depth(rabbit: RabbitServer, vhost: str, queue: str, expected: int) -> int:
    """Messages in ``queue`` of ``vhost`` as the broker counts them (waiting up to 30 s for ``expected``:
    a quorum queue's count in ``list_queues`` comes from statistics emitted every few seconds)."""
    count, deadline = -1, time.monotonic() + 30
    while count != expected and time.monotonic() < deadline:
        done = rabbit.ctl("list_queues", "-p", vhost, "name", "messages")
        for line in done.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue and parts[1].isdigit():
                count = int(parts[1])
        if count != expected:
            time.sleep(1)
    return count


def delivered(engine: sa.Engine) -> int:
    """Messages with their route-level ``delivered`` event in the journal (0 before it exists)."""
    query = (
        sa.select(sa.func.count())
        .select_from(events)
        .where(events.c.state == "delivered", events.c.endpoint.is_(None))
    )
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    except sa.exc.DBAPIError:
        return 0


def fill(project: object, payloads: list[bytes], depth: int) -> None:
    """Queue ``depth`` orders (payloads reused round-robin, each with an id of its own)."""
    with CRMSimulator(project) as crm:
        sink = crm._sink  # the real queue sink: confirmed batches keep the fill short
        for start in range(0, depth, FILL_CHUNK):
            chunk = range(start, min(start + FILL_CHUNK, depth))
            sink.write_many([Message(body=payloads[i % len(payloads)], id=f"m-{i}") for i in chunk])


def drain(rabbit: RabbitServer, pg: PostgresServer, payloads: list[bytes], depth: int) -> Drain:
    """Fill a backlog of ``depth``, let one hub process drain it, return its RSS figures."""
    work = Path(tempfile.mkdtemp(prefix="esb-mem-"))
    broker_url = rabbit.create_vhost("mem")
    environ = production_environ(work / "var", broker_url, pg.create_database("mem"))
    fill(production_project(environ), payloads, depth)
    queued = queue_depth(rabbit, broker_url.rsplit("/", 1)[1], "crm.orders.out", depth)
    engine = sa.create_engine(environ["ESB_JOURNAL__URL"])
    hub = ProductionHub(environ, work / "hub.log")
    rss_first = rss_half = 0.0
    start = time.perf_counter()
    hub.start()
    assert hub.proc is not None
    pid = hub.proc.pid
    try:
        while (done := delivered(engine)) < depth:
            if hub.proc.poll() is not None:
                sys.exit(f"the hub exited with {hub.proc.returncode}: see {work / 'hub.log'}")
            rss = status_mb(pid, "VmRSS")
            if done > 0 and not rss_first:
                rss_first = rss
            if done >= depth // 2 and not rss_half:
                rss_half = rss
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        rss_end, peak = status_mb(pid, "VmRSS"), status_mb(pid, "VmHWM")
    finally:
        hub.stop()
        engine.dispose()
    shutil.rmtree(work, ignore_errors=True)
    return Drain(depth, queued, seconds, rss_first, rss_half, rss_end, peak)


def main() -> None:
    """Drain each depth and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", default="3000,30000", help="comma-separated backlog depths")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    results = []
    with throwaway_servers() as (rabbit, pg):
        payloads = bodies(min(max(depths), 3000))
        for depth in depths:
            results.append(drain(rabbit, pg, payloads, depth))
    print("one hub process (crm-order-to-iom, journal on PostgreSQL), backlog queued before it starts")
    print(f"{'backlog':>8} {'on broker':>9} {'drain s':>8} {'msg/s':>6}   RSS MB: {'1st':>5} {'half':>5} "
          f"{'end':>5}   {'peak (VmHWM)':>12}")  # fmt: skip
    for r in results:
        print(f"{r.depth:>8} {r.queued:>9} {r.seconds:>8.1f} {r.depth / r.seconds:>6.0f}           "
              f"{r.rss_first:>5.0f} {r.rss_half:>5.0f} {r.rss_end:>5.0f}   {r.peak:>12.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
