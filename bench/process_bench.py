"""The process engine (issue 15): the cost of one step against one route hop, and memory with many waiting.

1. Step cost. ``--n`` instances of a 4-step process (``set_state``, ``call`` to an in-memory Requester,
   ``send`` to an in-memory sink, ``set_state``) are started, then advanced by one :class:`Runner`'s
   ``run_due()``. µs per step = the ``run_due()`` time / (n x 4): it includes each instance's claim,
   lease release and end (what a step really costs in a run), not its start (shown apart). The baseline,
   in the same run and on the same database: one **route hop as the journal writes it**
   (``received`` + ``event(delivered)`` + ``mark_delivered``, the three transactions the evaluation
   (bench/process_eval/dbos_cost.py) used as "a route hop"; that baseline is inline there, not
   importable, so its smallest form is here). Rounds interleaved, best of ``--rounds`` kept, in wall
   time and in this process's CPU time (on SQLite that is all of the work; on PostgreSQL the server's
   CPU is not in it). Target: one step <= 1.5x a route hop. Then one more round counted, not timed: the
   transactions and statements an instance takes in ``run_due()`` (SQLAlchemy events).
2. Memory. ``--waiting`` instances (10,000 by default) each wait on an ``await`` with a 30-day deadline.
   The runner process's RSS (``/proc/self/status`` VmRSS) and Python's traced heap (tracemalloc, with
   ``--trace``: slower) before the first start and after all wait; then the time of one ``run_due()``
   round with all of them waiting and none due (it must not scan them in Python).

The database is a SQLite file with the journal's settings (``esb.journal.engine``: WAL,
``synchronous=NORMAL``); ``--pg`` runs both on a throw-away PostgreSQL server started as
tests/integration/pg_server.py does (Debian's binaries; fsync off).

    .venv/bin/python bench/process_bench.py [--n 300] [--rounds 5] [--waiting 10000] [--pg] [--trace]
        [--no-hold]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.integration.pg_server for --pg

from sqlalchemy import event

from esb.journal import Journal
from esb.message import Message
from esb.process.definition import Process
from esb.process.engine import ProcessStore, Runner

BODY = b'{"order":"1-ABC"}' * 20  # 340 bytes, as bench/journal_bench.py and the evaluation
STEPS = 4
STEP_FLOW: list[dict[str, Any]] = [
    {"name": "start", "set_state": "inProgress"},
    {"name": "reserve", "call": {"endpoint": "rim.reserve", "into": "reservation"}},
    {"name": "activate", "send": {"endpoint": "oss.activate"}},
    {"name": "done", "set_state": "completed"},
]
WAIT_FLOW: list[dict[str, Any]] = [
    {"name": "start", "set_state": "inProgress"},
    {"name": "activate", "send": {"endpoint": "oss.activate"}},
    {
        "name": "result",
        "await": {
            "from": "oss.results",
            "reply_to": "activate",
            "correlate": {"key": "order_id", "match": "body.orderId"},
            "deadline": "30d",
            "into": "activation",
        },
    },
    {"name": "done", "set_state": "completed"},
]


class Endpoint:
    """An in-memory endpoint: answers ``request`` at once, ``write`` does nothing."""

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def request(self, message: Message, timeout: float) -> Message:
        """Answer a small reply."""
        return Message(body={"ok": True, "resource": "R-1"})

    def write(self, message: Message) -> None:
        """Drop the message."""


class Resources:
    """One in-memory endpoint for every name; no transforms."""

    def __init__(self) -> None:
        self.endpoint = Endpoint()

    def sink(self, endpoint: str) -> Any:
        """The in-memory endpoint."""
        return self.endpoint

    def transform(self, name: str) -> Any:
        """No transform is used here."""
        raise KeyError(name)


def process(name: str, steps: list[dict[str, Any]]) -> Process:
    """A process ``name`` keyed by ``data.id`` with these steps."""
    return Process.model_validate(
        {
            "process": name,
            "version": 1,
            "trigger": {"from": "hub.orders"},
            "business_keys": {"order_id": "data.id"},
            "steps": steps,
        }
    )


def rss_kib() -> int:
    """The process's resident set (VmRSS) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def load() -> str:
    """The machine's load averages and cores, for the record."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def route_hops(journal: Journal, n: int, ids: Iterator[int]) -> tuple[float, float]:
    """µs per route hop as the journal writes it (``received`` + ``event(delivered)`` +
    ``mark_delivered``), over ``n`` hops with ids ``hop-<next(ids)>``: (wall, this process's CPU)."""
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        m = Message(body=BODY, id=f"hop-{next(ids)}", business_keys={"order_id": "1"})
        journal.received("orders", m)
        journal.event("orders", m, "delivered", endpoint="billing")
        journal.mark_delivered("orders", m, "billing")
    return (time.perf_counter() - began) / n * 1e6, (time.process_time() - cpu) / n * 1e6


class Counted:
    """Counts the transactions (commits) and statements of an engine while its block runs."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.commits = 0
        self.statements = 0

    def __enter__(self) -> Counted:
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "before_cursor_execute", self._statement)

    def _commit(self, *_args: Any) -> None:
        self.commits += 1

    def _statement(self, *_args: Any) -> None:
        self.statements += 1


def step_cost(url: str, n: int, rounds: int, hold: bool = True) -> None:
    """Print µs per process step and per journal route hop on ``url``, and the ratio.

    ``hold`` False: the runner's round does not keep one connection (every transaction takes its own
    from the pool, as the journal's hop does).
    """
    ids = count()
    flow = process("bench_steps", STEP_FLOW)
    with ProcessStore(url) as store, Journal(url) as journal:
        if not hold:
            store._shared = True  # what keeps in-memory SQLite from holding a connection per round
        runner = Runner(store, Resources(), owner="bench")

        def hops() -> tuple[float, float]:
            return route_hops(journal, n, ids)

        def started() -> None:
            for _ in range(n):
                i = next(ids)
                runner.start(flow, Message(body={"id": f"o-{i}"}, id=f"trigger-{i}"))

        def run_all() -> None:
            claimed = runner.run_due()
            if claimed != n:
                raise RuntimeError(f"run_due claimed {claimed} instances, expected {n}")

        def instances() -> tuple[tuple[float, float], tuple[float, float]]:
            began, cpu = time.perf_counter(), time.process_time()
            started()
            begun, cpu_begun = time.perf_counter(), time.process_time()
            run_all()
            ended, cpu_ended = time.perf_counter(), time.process_time()
            start = ((begun - began) / n * 1e6, (cpu_begun - cpu) / n * 1e6)
            return start, ((ended - begun) / (n * STEPS) * 1e6, (cpu_ended - cpu_begun) / (n * STEPS) * 1e6)

        hops()  # warm both paths (definition pinned, statements compiled)
        instances()
        best = {name: [float("inf"), float("inf")] for name in ("hop", "start", "step")}
        for _ in range(rounds):
            found = {"hop": hops()}
            found["start"], found["step"] = instances()
            for name, (wall, cpu) in found.items():
                best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
        started()
        with Counted(store.engine) as counted:
            run_all()
    hop, start, step = best["hop"], best["start"], best["step"]
    print("  best of the rounds, wall / this process's CPU:")
    print(f"  route hop (journal received + event + mark_delivered): {hop[0]:6.0f} / {hop[1]:4.0f} µs")
    print(f"  process start (one instance, trigger without transform): {start[0]:4.0f} / {start[1]:4.0f} µs")
    print(
        f"  process step (run_due / steps, claim + release + end included): {step[0]:.0f} / {step[1]:.0f} µs"
    )
    for what, i in (("wall", 0), ("CPU", 1)):
        ratio = step[i] / hop[i]
        verdict = "met" if ratio <= 1.5 else f"MISSED by {ratio / 1.5:.2f}x"
        print(f"  ratio step / hop, {what}: {ratio:.2f}x (target <= 1.5x: {verdict})")
    print(f"  a whole 4-step instance (start + 4 steps), wall: {start[0] + STEPS * step[0]:.0f} µs")
    print(
        f"  an instance's run_due(): {counted.commits / n:.2f} transactions, "
        f"{counted.statements / n:.2f} statements (the last claim, finding none, included)"
    )


def waiting(url: str, k: int, trace: bool) -> None:
    """Print RSS before and after ``k`` instances wait on an await, and one idle ``run_due()``'s time."""
    flow = process("bench_waiting", WAIT_FLOW)
    with ProcessStore(url) as store:
        runner = Runner(store, Resources(), owner="bench")
        runner.start(flow, Message(body={"id": "warm"}, id="trigger-warm"))  # warm: pinned, compiled
        runner.run_due()
        gc.collect()
        if trace:
            tracemalloc.start()
        before = rss_kib()
        heap_before = tracemalloc.get_traced_memory()[0] if trace else 0
        began = time.perf_counter()
        chunk = 1000
        for low in range(0, k, chunk):
            for i in range(low, min(low + chunk, k)):
                runner.start(flow, Message(body={"id": f"w-{i}"}, id=f"trigger-w-{i}"))
            runner.run_due()  # each advances to its await and waits (wake_at = the deadline)
        setup = time.perf_counter() - began
        gc.collect()
        after = rss_kib()
        heap_after = tracemalloc.get_traced_memory()[0] if trace else 0
        if trace:
            tracemalloc.stop()
        idle = []
        for _ in range(20):
            began = time.perf_counter()
            claimed = runner.run_due()
            idle.append((time.perf_counter() - began) * 1e6)
            if claimed:
                raise RuntimeError(f"run_due claimed {claimed} instances with none due")
    total = k + 1
    each = setup / k * 1e6
    print(f"  {total} instances waiting (started and advanced in {setup:.1f} s, {each:.0f} µs each)")
    print(f"  RSS before / after: {before / 1024:.1f} / {after / 1024:.1f} MiB")
    grown_kib = after - before
    print(f"  RSS growth: {grown_kib / 1024:.1f} MiB = {grown_kib * 1024 / k:.0f} bytes per instance")
    if trace:
        grown = heap_after - heap_before
        print(f"  traced Python heap growth: {grown / 1024:.0f} KiB = {grown / k:.1f} bytes per instance")
    idle.sort()
    print(f"  one run_due() round, none due: best {idle[0]:.0f} µs, median {idle[len(idle) // 2]:.0f} µs")


@contextmanager
def postgres() -> Iterator[Iterator[str]]:
    """A throw-away PostgreSQL server (as tests/integration/pg_server.py starts it); yield fresh databases."""
    from tests.integration import pg_server

    bin_dir = pg_server.find_bin_dir()
    if bin_dir is None:
        raise SystemExit("--pg: no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH")
    run_as = "postgres" if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="esb-pbench-pg-") as base:
        server = pg_server.PostgresServer(bin_dir, Path(base), run_as)
        server.init()
        server.start()
        try:
            yield (server.create_database("pbench") for _ in count())
        finally:
            server.stop()


def run(label: str, urls: Iterator[str], args: argparse.Namespace) -> None:
    """Both measurements on fresh databases from ``urls``."""
    held = "" if args.hold else ", no connection held per round"
    print(f"{label}: step cost, n={args.n}, best of {args.rounds}{held} ({load()})")
    step_cost(next(urls), args.n, args.rounds, args.hold)
    print(f"{label}: waiting instances, K={args.waiting} ({load()})")
    waiting(next(urls), args.waiting, args.trace)


def main() -> None:
    """Parse the options and run on SQLite, or on PostgreSQL with ``--pg``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="instances per round of the step cost")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--waiting", type=int, default=10_000, help="instances waiting on an await")
    parser.add_argument("--pg", action="store_true", help="on a throw-away PostgreSQL server")
    parser.add_argument("--trace", action="store_true", help="also tracemalloc's heap growth (slower)")
    parser.add_argument(
        "--no-hold",
        dest="hold",
        action="store_false",
        help="the runner's round takes a pooled connection per transaction (ProcessStore.hold off)",
    )
    args = parser.parse_args()
    if args.pg:
        with postgres() as urls:
            run("PostgreSQL", urls, args)
        return
    with tempfile.TemporaryDirectory(prefix="esb-pbench-") as folder:
        urls = (f"sqlite:///{Path(folder) / f'journal{i}.db'}" for i in count())
        run("SQLite", urls, args)


if __name__ == "__main__":
    main()
