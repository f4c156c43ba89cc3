"""Where each microsecond of the CRM-order route goes: the hub's CPU per message, by stage.

    .venv/bin/python bench/route_profile.py [--messages 3000] [--warmup 300] [--rabbit] [--json]
        [--prefetch N] [--batch-size N]

Runs the real ``crm-order-to-iom`` route of routes.yaml in this process (a ``Hub`` with that route only)
on a backlog of valid Siebel orders: on the embedded default (SQLite transport and journal) or, with
``--rabbit``, on a throwaway RabbitMQ node and PostgreSQL server with the production settings (batches
of 200, prefetch 300). The functions that do each stage of the work are wrapped with timers that
count their *exclusive* time (a nested timed call is counted in its own stage, not in its caller's),
as thread CPU time (``time.thread_time``) and as wall time:

- receive: the source's ``read`` (broker I/O, the delivery made into a Message);
- decode: XML parsing of bodies (``esb.xmlsafe.parse_xml``: hardened lxml);
- mapping NAME: each transform's ``apply`` (the Siebel mapping in the steps, the IOM one on ``to``);
- validation: the canonical JSON Schema validator;
- expressions: JMESPath (filter, choice, business keys); raw keys: the XPath read before the steps;
- journal SQL: the journal's methods (SQL statements, commits); journal rows: building the rows;
  journal JSON: the JSON columns' serialiser; serialise body: ``Message.body_bytes`` (canonical JSON);
- publish: the outlet's writes to sinks; confirm wait: waiting for the broker's publisher confirms;
- ack: settling deliveries; worker loop: the route worker's own code not in a stage above.

The first ``--warmup`` messages (compilation, caches, connections), up to the end of the batch that
takes the count past them, are left out. CPU in µs per message;
the stages' sum is the hub worker's CPU per message; the whole process's CPU (other threads, the
bench's own polling, the timers' overhead of about 1 µs per timed call) is printed below it.
``--json`` prints the same figures as JSON, so two runs (before and after a change) can be compared by
a script.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# bench/ is not a package: its folder is on sys.path
from rabbit_bench import setting_overrides
from route_bench import ROUTE, bodies, hub_project, publish

import esb.xmlsafe
from adapters.queue.source import QueueSource
from esb.expressions import Expression
from esb.journal import batched as journal_batched
from esb.journal import engine as journal_engine
from esb.journal import journal as journal_module
from esb.logging import configure_logging
from esb.message import Message
from esb.model.validation import CanonicalValidator
from esb.project import Project
from esb.runtime.hub import Hub
from esb.runtime.outlet import Outlet
from esb.runtime.rawkeys import RawKeys
from esb.runtime.worker import RouteWorker
from esb.transforms.base import Transform
from esb.typing import Delivery

#: The order stages are printed in.
ORDER = (
    "receive", "raw keys (XPath)", "decode (XML parse)", "mapping", "validation", "expressions",
    "journal SQL", "journal rows", "journal JSON", "serialise body", "publish", "confirm wait", "ack",
    "worker loop",
)  # fmt: skip
JOURNAL_SQL = ("received", "received_many", "settle_many", "event", "mark_delivered", "business_keys")
JOURNAL_ROWS = ("message_row", "event_row", "index_keys", "error_columns")


class Stages:
    """Exclusive thread-CPU and wall time per stage, with a call stack per thread."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.reset()

    def reset(self) -> None:
        """Forget what was counted so far; note when (wall and process CPU time)."""
        self.reset_at = (time.perf_counter(), time.process_time())
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def _stack(self) -> list[list[Any]]:
        stack: list[list[Any]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def parent(self) -> str | None:
        """The stage of the innermost timed call running on this thread."""
        stack = self._stack()
        return stack[-1][0] if stack else None

    def wrap(self, stage: str | Callable[..., str], function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` timed under ``stage`` (a name, or a function of the call's arguments giving it)."""

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = stage(*args, **kwargs) if callable(stage) else stage
            stack = self._stack()
            frame = [name, 0.0, 0.0]  # stage, CPU and wall of timed calls nested in this one
            stack.append(frame)
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                stack.pop()
                self.cpu[name] += cpu - frame[1]
                self.wall[name] += wall - frame[2]
                self.calls[name] += 1
                if stack:
                    stack[-1][1] += cpu
                    stack[-1][2] += wall

        return timed


@contextmanager
def patched(stages: Stages, warmup: int) -> Iterator[threading.Event]:
    """Wrap the functions of every stage for the length of the block; yield the event set when the
    worker, at the first batch after ``warmup`` acks, reset the counts (the measured run begins)."""
    measuring = threading.Event()
    undo: list[tuple[Any, str, Any]] = []

    def replace(owner: Any, name: str, stage: str | Callable[..., str]) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        undo.append((owner, name, original))
        setattr(owner, name, stages.wrap(stage, original))

    replace(QueueSource, "read", "receive")
    replace(RawKeys, "__call__", "raw keys (XPath)")
    parse = esb.xmlsafe.parse_xml
    timed_parse = stages.wrap("decode (XML parse)", parse)
    for module in list(sys.modules.values()):  # every module that imported parse_xml by name
        if getattr(module, "parse_xml", None) is parse:
            undo.append((module, "parse_xml", parse))
            module.parse_xml = timed_parse  # type: ignore[union-attr]
    for cls in _with_own(Transform, "apply"):
        replace(cls, "apply", lambda transform, *_a, **_k: f"mapping {transform.name}")
    replace(CanonicalValidator, "validate", "validation")
    replace(Expression, "evaluate", "expressions")
    for name in JOURNAL_SQL:  # on the class of the journal's MRO that defines it (esb/journal/batched.py)
        replace(next(c for c in journal_module.Journal.__mro__ if name in c.__dict__), name, "journal SQL")
    for name in JOURNAL_ROWS:  # esb/journal/rows.py's builders, in every module that imported them by name
        for module in (journal_module, journal_batched):
            if hasattr(module, name):
                replace(module, name, "journal rows")
    replace(journal_engine, "dumps_json", "journal JSON")
    replace(Message, "body_bytes", "serialise body")
    replace(Outlet, "write_many", "publish")
    replace(Outlet, "write", "publish")
    replace(Delivery, "ack", "ack")
    handle = RouteWorker.__dict__["_handle_ready"]
    timed_handle = stages.wrap("worker loop", handle)

    def handle_ready(*args: Any, **kwargs: Any) -> Any:
        # between two batches, on the worker's thread: no message is counted in part, and the warm-up's
        # end is decided where the work is done (a poller could see it only after the backlog ran out)
        if not measuring.is_set() and stages.calls.get("ack", 0) >= warmup:
            stages.reset()
            measuring.set()
        return timed_handle(*args, **kwargs)

    undo.append((RouteWorker, "_handle_ready", handle))
    RouteWorker._handle_ready = handle_ready  # type: ignore[method-assign]
    try:
        import amqp  # the broker's confirms are drained by the publishing connection

        replace(amqp.Connection, "drain_events", lambda *_a, **_k: _drain_stage(stages))
    except ImportError:  # pragma: no cover - kombu always brings py-amqp
        pass
    try:
        yield measuring
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def _drain_stage(stages: Stages) -> str:
    """Draining the connection while publishing is waiting for confirms; otherwise it is receiving."""
    return "confirm wait" if stages.parent() == "publish" else "receive"


def _with_own(base: type, method: str) -> list[type]:
    """``base`` and every subclass (loaded so far) that defines ``method`` itself."""
    found, todo = [], [base]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if method in cls.__dict__:
            found.append(cls)
    return found


def _count(hub: Hub, ids: list[str]) -> int:
    return sum(hub.journal.outcome(ROUTE, m) is not None for m in ids)


def measure(project: Project, payloads: list[bytes], warmup: int) -> dict[str, Any]:
    """Run the route on a backlog of ``payloads``; return the per-message figures of all but the first
    ``warmup`` messages."""
    import esb.transforms.loader  # noqa: F401 - the transform classes, so that their apply is wrapped

    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    ids = publish(project, payloads, "prof")
    stages = Stages()
    with patched(stages, warmup) as measuring:
        hub = Hub(project, route_ids=[ROUTE])
        hub.start()
        try:
            # one worker, in queue order: the last message ends last
            while hub.journal.outcome(ROUTE, ids[-1]) is None:
                time.sleep(0.05)
            ended = time.perf_counter(), time.process_time()
            if not measuring.is_set():
                raise SystemExit(f"all messages ended before the first batch after {warmup}: more --messages")
            started, process_cpu = stages.reset_at
            seconds, process_cpu = ended[0] - started, ended[1] - process_cpu
            cpu, wall, calls = dict(stages.cpu), dict(stages.wall), dict(stages.calls)
            while _count(hub, ids) < len(ids):  # (a check: every message ended)
                time.sleep(0.05)
        finally:
            hub.stop()
    counted = calls.get("ack", 0)  # every message is acked once: the messages handled since the reset
    rows = []
    for stage in sorted(cpu, key=_rank):
        rows.append(
            {
                "stage": stage,
                "cpu_us": cpu[stage] * 1e6 / counted,
                "wall_us": wall[stage] * 1e6 / counted,
                "calls": calls[stage] / counted,
            }
        )
    total = sum(r["cpu_us"] for r in rows)
    return {
        "messages": counted,
        "msg_per_s": counted / seconds,
        "cpu_us_total": total,
        "process_cpu_us": process_cpu * 1e6 / counted,
        # the share of a core the process keeps busy: its CPU per message x the rate
        "core_busy": process_cpu / seconds,
        "stages": rows,
    }


def _rank(stage: str) -> tuple[int, str]:
    prefix = "mapping" if stage.startswith("mapping ") else stage
    return (ORDER.index(prefix) if prefix in ORDER else len(ORDER), stage)


def rabbit_project(stack: Any, overrides: dict[str, str]) -> Project:
    """The repository's project with production settings on throwaway servers entered on ``stack``;
    ``overrides``: settings as environment variables (``ESB_BROKER__PREFETCH``...)."""
    from servers import throwaway_servers

    from tests.integration.cluster import production_environ, production_project

    # psycopg warns about a closure as the JSON dumper: the timed wrapper of the journal's serialiser
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    rabbit, pg = stack.enter_context(throwaway_servers())
    data = Path(tempfile.mkdtemp(prefix="esb-profile-"))
    vhost, database = rabbit.create_vhost("profile"), pg.create_database("profile")
    environ = production_environ(data / "var", vhost, database, **overrides)
    return production_project(environ)


def print_table(result: dict[str, Any], transport: str) -> None:
    """Print the figures for people."""
    print(f"{result['messages']} messages on {transport}: {result['msg_per_s']:.0f} msg/s, profiled")
    print(f"{'stage':<44} {'CPU µs/msg':>10} {'share':>6} {'wall µs/msg':>11} {'calls/msg':>9}")
    for row in result["stages"]:
        share = row["cpu_us"] / result["cpu_us_total"] if result["cpu_us_total"] else 0.0
        print(
            f"{row['stage']:<44} {row['cpu_us']:>10.1f} {share:>6.1%} {row['wall_us']:>11.1f}"
            f" {row['calls']:>9.2f}"
        )
    print(f"{'hub worker CPU per message (sum)':<44} {result['cpu_us_total']:>10.1f}")
    print(f"{'whole process CPU per message (all threads)':<44} {result['process_cpu_us']:>10.1f}")
    print(f"{'share of a core the process kept busy':<44} {result['core_busy']:>10.2f}")


def main() -> None:
    """Measure and print."""
    from contextlib import ExitStack

    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000, help="messages after the warm-up")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rabbit", action="store_true", help="RabbitMQ + PostgreSQL, production settings")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--prefetch", type=int, help="with --rabbit: broker.prefetch (default: production's)")
    parser.add_argument(
        "--batch-size", type=int, help="with --rabbit: runtime.batch_size (default: production's)"
    )
    args = parser.parse_args()
    overrides = setting_overrides(args.prefetch, args.batch_size)
    configure_logging("critical", "console")
    payloads = bodies(args.warmup + args.messages)
    with ExitStack() as stack:
        project = rabbit_project(stack, overrides) if args.rabbit else hub_project()
        result = measure(project, payloads, args.warmup)
    settings = project.settings
    transport = (
        f"RabbitMQ + PostgreSQL (production settings, prefetch {settings.broker.prefetch},"
        f" batch {settings.runtime.batch_size})"
        if args.rabbit
        else "the embedded default"
    )
    result["transport"] = transport
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result, transport)


if __name__ == "__main__":
    main()
