"""The CRM-order route on the embedded default against kombu pass-through on the same transport.

    .venv/bin/python bench/route_bench.py [--messages N] [--paced N]

Both sides use the embedded SQLite kombu transport in a fresh folder and the same SiebelMessage bodies:
- raw pass-through: consume from one queue, publish (persistent) to another on a second connection,
  ack; nothing else. The floor any route on this transport sits on.
- the hub: the real crm-order-to-iom route (Siebel mapping, schema validation, filter, choice, IOM
  mapping, journal at every state change, idempotent-receiver look-ups), one worker.
The hub's rate is printed twice: steady (from the first message's end to the last one's, as the journal
timed them; the pass-through is timed from the start of its consuming loop) and from start (start-up
included: connections, the first compilation of mappings and schemas). Then a paced run measures
per-message latency (ingress to delivered) when the route is not saturated.

Beside the rates, CPU time per message, which a busy machine inflates far less than wall time: the
pass-through's consuming thread over its loop, the hub's threads other than the bench's own (the route
worker and its helpers; start-up compilation runs on the bench's thread and is left out). ``CPU ratio``
is the pass-through's CPU per message over the hub's: the throughput ratio both would reach if each had
a core to itself.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kombu import Connection, Queue

import adapters.queue.sqlite_transport  # noqa: F401 - registers the sqlite transport
from esb.logging import configure_logging
from esb.project import Project
from esb.runtime.hub import Hub
from esb.startup import defer_collection
from simulators.crm import CRMSimulator, make_order
from simulators.siebel import siebel_order_xml

ROOT = Path(__file__).resolve().parents[1]
ROUTE = "crm-order-to-iom"


def bodies(count: int) -> list[bytes]:
    """Return ``count`` valid Siebel orders (same generator as the demo)."""
    import random

    rng = random.Random(7)
    return [siebel_order_xml(make_order(i, rng), encoding="GBK" if i % 2 else "UTF-8") for i in range(count)]


def raw_pass_through(payloads: list[bytes]) -> tuple[float, float]:
    """Return (msg/s, CPU µs per message) of consume -> publish -> ack with kombu on the SQLite transport."""
    url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-raw-')}/queues.db"
    src, dst = Queue("bench.in", routing_key="bench.in"), Queue("bench.out", routing_key="bench.out")
    with Connection(url) as conn, conn.Producer() as producer:
        for body in payloads:
            producer.publish(body, routing_key="bench.in", declare=[src], delivery_mode=2)
    done = 0
    with Connection(url) as consume, Connection(url) as publish, publish.Producer() as producer:
        producer.maybe_declare(dst)

        def on_message(body: bytes, message: object) -> None:
            nonlocal done
            producer.publish(body, routing_key="bench.out", delivery_mode=2)
            message.ack()  # type: ignore[attr-defined]
            done += 1

        with consume.Consumer([src], callbacks=[on_message], accept=None, prefetch_count=100):
            start, cpu = time.perf_counter(), time.thread_time()
            while done < len(payloads):
                consume.drain_events(timeout=5)
            cpu = time.thread_time() - cpu
            return len(payloads) / (time.perf_counter() - start), cpu * 1e6 / len(payloads)


def hub_project() -> Project:
    """The repository's project on a fresh data folder, loaded as ``esb run`` loads it: what the load
    built is frozen out of the cyclic collector's full passes (esb/startup.py). Without it the bench's
    hub paid ~30-40 µs a message of full collections over ~130,000 start-up objects that ``esb run``
    never pays (bench/README.md, "Eighth pass")."""
    defer_collection()  # as the ``esb`` entry point does; Project.load ends it with gc.freeze()
    data = tempfile.mkdtemp(prefix="bench-hub-")
    return Project.load(ROOT, environ={"ESB_DATA_DIR": data, "ESB_RUNTIME__POLL_TIMEOUT": "0.05s"})


def publish(project: Project, payloads: list[bytes], prefix: str, pace: float = 0.0) -> list[str]:
    """Publish ``payloads`` on the CRM queue; return the message ids."""
    from esb.message import Message

    ids = []
    with CRMSimulator(project) as crm:
        for i, body in enumerate(payloads):
            message = Message(body=body, id=f"{prefix}-{i}")
            crm.send(message)
            ids.append(message.id)
            if pace:
                time.sleep(pace)
    return ids


def wait_done(hub: Hub, ids: list[str]) -> None:
    """Wait until every id has an outcome."""
    pending = list(ids)
    while pending:
        pending = [m for m in pending if hub.journal.outcome(ROUTE, m) is None]
        if pending:
            time.sleep(0.05)


def ended_at(hub: Hub, message_id: str) -> float:
    """When the journal recorded the route's last event for ``message_id`` (epoch seconds)."""
    return max(e.at for e in hub.journal.history(message_id) if e.route == ROUTE).timestamp()


def hub_throughput(payloads: list[bytes]) -> tuple[float, float, float]:
    """Return (steady msg/s, msg/s from start, CPU µs per message of the hub's threads) of the hub on a
    backlog of ``payloads``."""
    project = hub_project()
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    ids = publish(project, payloads, "tp")
    hub = Hub(project, route_ids=[ROUTE])
    start, process_cpu, own_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    hub.start()
    wait_done(hub, ids[-1:])
    process_cpu, own_cpu = time.process_time() - process_cpu, time.thread_time() - own_cpu
    wait_done(hub, ids)
    from_start = len(ids) / (time.perf_counter() - start)
    steady = (len(ids) - 1) / (ended_at(hub, ids[-1]) - ended_at(hub, ids[0]))  # one worker: in order
    hub.stop()
    return steady, from_start, (process_cpu - own_cpu) * 1e6 / len(ids)


def hub_latency(payloads: list[bytes], rate: float) -> list[float]:
    """Return per-message latencies (ms, ingress to delivered) at ``rate`` messages/s."""
    project = hub_project()
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    hub = Hub(project, route_ids=[ROUTE])
    hub.start()
    ids = publish(project, payloads, "lat", pace=1.0 / rate)
    wait_done(hub, ids)
    latencies = []
    for mid in ids:
        history = hub.journal.history(mid)
        received = next(e.at for e in history if e.state == "received")
        delivered = next(e.at for e in history if e.state == "delivered" and e.endpoint is None)
        latencies.append((delivered - received).total_seconds() * 1000)
    hub.stop()
    return latencies


def main() -> None:
    """Run both measurements and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=200)
    args = parser.parse_args()
    configure_logging("critical", "console")
    payloads = bodies(args.messages)
    raw, raw_cpu = raw_pass_through(payloads)
    hub, from_start, hub_cpu = hub_throughput(payloads)
    latencies = hub_latency(payloads[: args.paced], rate=min(hub * 0.5, 100))
    q = statistics.quantiles(latencies, n=100)
    print(f"messages: {args.messages} (paced latency run: {args.paced})")
    print(f"{'measure':<56} {'msg/s':>10} {'vs raw':>8}")
    print(f"{'kombu pass-through, SQLite transport (baseline)':<56} {raw:>10.0f} {1.0:>8.2f}")
    print(f"{'hub, crm-order-to-iom, 1 worker, journal on (steady)':<56} {hub:>10.0f} {hub / raw:>8.2f}")
    print(f"{'hub, same run counted from start':<56} {from_start:>10.0f} {from_start / raw:>8.2f}")
    print(f"latency ingress->delivered, ms: p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}", end="")
    print(f"  max {max(latencies):.1f}")
    print(f"CPU µs per message: pass-through {raw_cpu:.0f}, hub {hub_cpu:.0f}", end="")
    print(f"; CPU ratio {raw_cpu / hub_cpu:.2f}")


if __name__ == "__main__":
    main()
