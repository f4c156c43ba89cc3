"""The CRM-order route on RabbitMQ + PostgreSQL (1 and 2 `esb run` processes) against two raw baselines.

    .venv/bin/python bench/rabbit_bench.py [--messages 3000] [--prefetch N] [--batch-size N]

Starts a throwaway RabbitMQ node and PostgreSQL server on loopback, then in the same run measures:
- per-message-confirm pass-through: kombu consumes from one quorum queue (the hub's prefetch), publishes each
  body persistently with a publisher confirm to another quorum queue on a second connection, then acks;
  one confirm round trip per message, where the hub waits once per batch: a handicapped baseline;
- batched-confirm pass-through (the fair baseline): ``bench/baselines/amqp_batched_confirm.py``, py-amqp
  only, quorum queues, persistent, the hub's prefetch and batch size, bodies of the orders' mean size;
  it waits for the broker's confirms once per batch, as the hub does, and prints its own steady rate;
- the hub: `esb --env production run` with the crm-order-to-iom route (Siebel mapping, validation,
  filter, choice, IOM mapping, journal on PostgreSQL), 1 process and then 2 processes, on a backlog of
  the same number of valid orders.

Rates are steady-state, measured the same way on both sides: from the first message finished to the
last (raw: first and last ack; hub: the first and last route-level ``delivered`` event in the journal,
whose timestamps the hub writes). The hub's process start-up (imports, WSDLs, schema compilation,
connections: about 1.5 s) comes before its first message, so it is printed apart, with the rate from
process start (``from start``). For each run the CPU spent per message is printed from /proc: the hub
processes (``hub/raw``: the hub's, or the raw consumer's own), the RabbitMQ node (beam.smp), the
PostgreSQL server (its processes and exited backends) and the whole machine (2 cores = 2,000 ms of CPU
per second), which shows what bounds two processes on a small machine. Also prints each hub process's peak RSS
(VmHWM) with the backlog queued (memory is bounded by prefetch).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kombu import Connection, Queue

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servers import throwaway_servers  # bench/ is not a package: its folder is on sys.path

from esb.journal.schema import events
from esb.message import Message
from simulators.crm import CRMSimulator, make_order
from simulators.siebel import siebel_order_xml
from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.integration.pg_server import PostgresServer
from tests.integration.rabbit_server import RabbitServer

QUORUM = {"x-queue-type": "quorum"}
#: The independent batched-confirm pass-through (copied unchanged from ../shared/baselines).
BATCHED_BASELINE = Path(__file__).resolve().parent / "baselines" / "amqp_batched_confirm.py"
#: Clock ticks per second for /proc CPU times.
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> float:
    """CPU seconds all cores have been busy so far (everything but idle and iowait)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...); [] if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def pid_running_from(folder: Path) -> int | None:
    """The process whose command line names ``folder`` (a throwaway server's base: its beam.smp for
    RabbitMQ, its postmaster for PostgreSQL), so a stray server left by another run is not counted."""
    needle = str(folder).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline and (b"beam.smp" in cmdline or b"postgres" in cmdline):
                return int(entry.name)
    return None


def postgres_cpu(postmaster: int | None) -> float:
    """CPU seconds of one PostgreSQL server: the postmaster, its live backends, and the backends that
    have exited (reaped by the postmaster, so counted in its children's times)."""
    if postmaster is None:
        return 0.0
    fields = _stat(postmaster)
    total = process_cpu(postmaster) + ((int(fields[13]) + int(fields[14])) / TICKS if fields else 0.0)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (child := _stat(int(entry.name))) and child[1] == str(postmaster):
            total += process_cpu(int(entry.name))
    return total


@dataclass
class Run:
    """What one measured run gave."""

    rate: float
    hub_ms: float = 0.0  # hub processes' CPU per message, ms
    broker_ms: float = 0.0
    postgres_ms: float = 0.0
    machine_ms: float = 0.0
    from_start: float = 0.0  # hub: rate from process start, start-up included
    rss: list[float] = field(default_factory=list)


class CPUMeter:
    """CPU used by given processes, the broker, PostgreSQL and the whole machine between start() and
    stop(); the servers are found by their base folders."""

    def __init__(self, rabbit: RabbitServer, pg: PostgresServer) -> None:
        self.broker = pid_running_from(rabbit.base)
        self.postmaster = pid_running_from(pg.base)
        self._start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _reading(self) -> tuple[float, float, float]:
        broker = process_cpu(self.broker) if self.broker else 0.0
        return (broker, postgres_cpu(self.postmaster), machine_cpu())

    def start(self) -> None:
        """Take the first reading."""
        self._start = self._reading()

    def stop(self, run: Run, messages: int, processes_cpu: float = 0.0) -> Run:
        """Fill ``run``'s per-message CPU figures (ms) from the second reading."""
        broker, postgres, machine = (
            end - begin for end, begin in zip(self._reading(), self._start, strict=True)
        )
        run.hub_ms, run.broker_ms = processes_cpu * 1000 / messages, broker * 1000 / messages
        run.postgres_ms, run.machine_ms = postgres * 1000 / messages, machine * 1000 / messages
        return run


def bodies(count: int) -> list[bytes]:
    """``count`` valid Siebel orders."""
    rng = random.Random(7)
    out = []
    for i in range(count):
        order = make_order(i, rng)
        order.status = "Submitted"
        out.append(siebel_order_xml(order))
    return out


def raw_pass_through(url: str, payloads: list[bytes], prefetch: int, meter: CPUMeter) -> Run:
    """msg/s of consume -> confirmed persistent publish (second connection) -> ack, on quorum queues."""
    src = Queue("raw.in", routing_key="raw.in", queue_arguments=QUORUM)
    dst = Queue("raw.out", routing_key="raw.out", queue_arguments=QUORUM)
    with Connection(url, transport_options={"confirm_publish": True}) as conn, conn.Producer() as producer:
        for body in payloads:
            producer.publish(body, routing_key="raw.in", declare=[src, dst], delivery_mode=2)
    done = 0
    first = 0.0
    with Connection(url) as consume, Connection(url, transport_options={"confirm_publish": True}) as publish:
        producer = publish.Producer()

        def on_message(body: bytes, message: object) -> None:
            nonlocal done, first
            producer.publish(body, routing_key="raw.out", delivery_mode=2, mandatory=True)
            message.ack()  # type: ignore[attr-defined]
            done += 1
            if done == 1:
                first = time.perf_counter()

        with consume.Consumer([src], callbacks=[on_message], accept=None, prefetch_count=prefetch):
            meter.start()
            own = time.process_time()
            while done < len(payloads):
                consume.drain_events(timeout=10)
            run = Run(rate=(len(payloads) - 1) / (time.perf_counter() - first))
            return meter.stop(run, len(payloads), time.process_time() - own)


def batched_confirm_pass_through(url: str, count: int, prefetch: int, batch: int, size: int) -> Run:
    """msg/s of the independent batched-confirm baseline (its own steady rate, first batch left out) on
    the vhost of ``url``; its process's CPU per message (fill of the input queue included) in hub_ms."""
    found = re.fullmatch(r"pyamqp://([^:]+):([^@]+)@([^/]+)/(.+)", url)
    if found is None:
        raise ValueError(f"unexpected broker URL {url!r}")
    user, password, hostport, vhost = found.groups()
    args = [hostport, user, password, vhost, *(str(v) for v in (count, prefetch, batch, size))]
    before = os.times()
    command = [sys.executable, str(BATCHED_BASELINE), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    after = os.times()
    rate = re.search(r"batched_passthrough_per_s=(\d+)", done.stdout)
    if done.returncode != 0 or rate is None:
        sys.exit(f"batched-confirm baseline failed: {done.stderr or done.stdout}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Run(rate=float(rate.group(1)), hub_ms=cpu * 1000 / count)


def _delivered() -> sa.Select[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(events)
        .where(events.c.state == "delivered", events.c.endpoint.is_(None))
    )


#: One engine per journal URL for the progress polls (a new connection per poll would fork a backend).
_ENGINES: dict[str, sa.engine.Engine] = {}


def finished(url: str) -> int:
    """Messages with a route-level outcome in the journal."""
    engine = _ENGINES.setdefault(url, sa.create_engine(url, pool_size=1))
    try:
        with engine.connect() as conn:
            return int(conn.execute(_delivered()).scalar_one())
    except sa.exc.DBAPIError:
        return 0


def forget_engines() -> None:
    """Close the progress polls' connections (before the database goes away)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


def delivery_span(url: str) -> float:
    """Seconds between the first and the last route-level ``delivered`` event in the journal."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            span = sa.select(sa.func.min(events.c.at), sa.func.max(events.c.at))
            span = span.where(events.c.state == "delivered", events.c.endpoint.is_(None))
            first, last = conn.execute(span).one()
            return float((last - first).total_seconds())
    finally:
        engine.dispose()


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hub_run(
    rabbit: RabbitServer, pg: PostgresServer, payloads: list[bytes], processes: int, overrides: dict[str, str]
) -> Run:
    """Steady msg/s of ``processes`` hub processes on a backlog of ``payloads``, CPU and peak RSS;
    ``overrides``: settings as environment variables (``ESB_BROKER__PREFETCH``...)."""
    work = Path(tempfile.mkdtemp(prefix="esb-bench-"))
    vhost, database = rabbit.create_vhost("bench"), pg.create_database("bench")
    environ = production_environ(work / "var", vhost, database, **overrides)
    project = production_project(environ)
    with CRMSimulator(project) as crm:
        for i, body in enumerate(payloads):
            crm.send(Message(body=body, id=f"b-{i}"))
    hubs = [ProductionHub(environ, work / f"hub{i}.log") for i in range(processes)]
    journal = environ["ESB_JOURNAL__URL"]
    meter = CPUMeter(rabbit, pg)
    start = time.perf_counter()
    for hub in hubs:
        hub.start()
    pids = [h.proc.pid for h in hubs if h.proc is not None]
    while (begin := finished(journal)) == 0:
        time.sleep(0.02)
    meter.start()  # CPU is counted from the first message finished (start-up left out), like the rate
    hub_cpu = sum(process_cpu(pid) for pid in pids)
    while finished(journal) < len(payloads):
        time.sleep(0.25)
    counted = len(payloads) - begin
    from_start = len(payloads) / (time.perf_counter() - start)
    run = meter.stop(Run(rate=(len(payloads) - 1) / delivery_span(journal)), counted,
                     sum(process_cpu(pid) for pid in pids) - hub_cpu)  # fmt: skip
    run.from_start, run.rss = from_start, [peak_rss_mb(pid) for pid in pids]
    forget_engines()
    for hub in hubs:
        hub.stop()
    shutil.rmtree(work, ignore_errors=True)
    return run


def setting_overrides(prefetch: int | None, batch_size: int | None) -> dict[str, str]:
    """The environment variables that override the production ``broker.prefetch`` and
    ``runtime.batch_size`` (none for the options not given)."""
    overrides = {}
    if prefetch is not None:
        overrides["ESB_BROKER__PREFETCH"] = str(prefetch)
    if batch_size is not None:
        overrides["ESB_RUNTIME__BATCH_SIZE"] = str(batch_size)
    return overrides


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--prefetch", type=int, help="broker.prefetch (default: the production setting)")
    parser.add_argument("--batch-size", type=int, help="runtime.batch_size (default: the production setting)")
    args = parser.parse_args()
    overrides = setting_overrides(args.prefetch, args.batch_size)
    with throwaway_servers() as (rabbit, pg):
        payloads = bodies(args.messages)
        placeholders = production_environ(
            Path("var"), "pyamqp://x@127.0.0.1/x", "postgresql+psycopg://x@127.0.0.1/x", **overrides
        )
        settings = production_project(placeholders).settings
        prefetch, batch = settings.broker.prefetch, settings.runtime.batch_size
        size = round(sum(map(len, payloads)) / len(payloads))
        raw = raw_pass_through(rabbit.create_vhost("raw"), payloads, prefetch, CPUMeter(rabbit, pg))
        fair = batched_confirm_pass_through(rabbit.create_vhost("fair"), len(payloads), prefetch, batch, size)
        one = hub_run(rabbit, pg, payloads, 1, overrides)
        two = hub_run(rabbit, pg, payloads, 2, overrides)
    print(f"messages: {args.messages} (backlog queued before the consumers start); CPU in ms per message")
    print(f"prefetch {prefetch}, batch {batch}, mean body {size} bytes")
    print(
        f"{'measure':<40} {'msg/s':>6} {'vs per-msg':>10} {'vs batched':>10} {'from start':>10}"
        f" {'hub/raw':>7} {'core':>5} {'broker':>6} {'pg':>5} {'machine':>7}  peak RSS MB"
    )
    rows = (
        ("per-message-confirm kombu pass-through", raw),
        ("batched-confirm py-amqp pass-through", fair),
        ("hub, 1 process", one),
        ("hub, 2 processes", two),
    )
    for label, run in rows:
        # the share of a core each hub process (or the raw consumer) keeps busy: CPU per message x rate
        processes = 2 if run is two else 1
        core = f"{run.hub_ms * run.rate / 1000 / processes:.2f}" if run is not fair else "-"
        start = f"{run.from_start:>10.0f}" if run.from_start else f"{'':>10}"
        servers = (
            f" {run.broker_ms:>6.2f} {run.postgres_ms:>5.2f} {run.machine_ms:>7.2f}"
            if run is not fair
            else f" {'-':>6} {'-':>5} {'-':>7}"  # the baseline runs in its own process, fill included
        )
        print(
            f"{label:<40} {run.rate:>6.0f} {run.rate / raw.rate:>10.2f} {run.rate / fair.rate:>10.2f} {start}"
            f" {run.hub_ms:>7.2f} {core:>5}{servers}  {[round(r) for r in run.rss]}"
        )
    print(f"2 processes / 1 process: {two.rate / one.rate:.2f}")
    print("batched-confirm hub/raw: its whole process (input-queue fill and start-up included)")
    print("core: the share of a core each hub process keeps busy (its CPU per message x the rate)")


if __name__ == "__main__":
    main()
