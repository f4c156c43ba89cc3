"""Shared pieces of the process-library evaluation: databases, fake endpoints, the call log, the report.

Every experiment runs on SQLite (a file in a temp dir, the hub's embedded default) or, with ``--pg``, on
a throw-away PostgreSQL on 127.0.0.1 started like ``tests/integration/pg_server.py`` does. The fake
endpoints (RIM, OSS, Billing) run in-process and write every call to ``eval_calls`` in the same
database, so a second process or a restarted one can be checked for duplicate or concurrent calls.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
CALLS = sa.Table(
    "eval_calls",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance", sa.String(100), nullable=False),
    sa.Column("step", sa.String(100), nullable=False),
    sa.Column("endpoint", sa.String(100), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("ended", sa.Float),
    sa.Column("outcome", sa.String(40)),
)


def parse_args(doc: str | None, extra: dict[str, Any] | None = None) -> argparse.Namespace:
    """Parse ``--pg`` (PostgreSQL instead of SQLite) and the experiment's own integer options."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--pg", action="store_true", help="run on a throw-away PostgreSQL on 127.0.0.1")
    for name, default in (extra or {}).items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args()


def load_definition(name: str = "order_process.yaml") -> dict[str, Any]:
    """Return a process definition from this folder, as the YAML an integration engineer writes."""
    data = yaml.safe_load((HERE / name).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "steps" not in data:
        raise ValueError(f"{name}: expected a mapping with 'steps', got {type(data).__name__}")
    return data


@dataclass
class Database:
    """One evaluation database: its SQLAlchemy URL and, on PostgreSQL, the server (to restart it)."""

    url: str
    server: Any = None
    folder: Path | None = None

    def engine(self) -> sa.Engine:
        """Return an engine on the database (the call log lives there too)."""
        return sa.create_engine(self.url, pool_pre_ping=True)


@contextlib.contextmanager
def open_database(pg: bool) -> Iterator[Database]:
    """Yield a fresh SQLite file in a temp dir, or a fresh database on a throw-away PostgreSQL."""
    folder = Path(tempfile.mkdtemp(prefix="esb-proceval-"))
    server = None
    try:
        if pg:
            from tests.integration import pg_server

            bin_dir = pg_server.find_bin_dir()
            if bin_dir is None:
                raise SystemExit("PostgreSQL binaries not found: run scripts/install-test-servers.sh")
            run_as = "postgres" if os.geteuid() == 0 else None
            server = pg_server.PostgresServer(bin_dir, folder, run_as)
            server.init()
            server.start()
            url = server.create_database("proceval")
        else:
            url = f"sqlite:///{folder / 'eval.db'}"
        engine = sa.create_engine(url)
        CALLS.metadata.create_all(engine)
        engine.dispose()
        yield Database(url, server, folder)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Endpoints:
    """The fake RIM, OSS and Billing: each call is written to ``eval_calls`` (start and end).

    ``faults`` maps an endpoint to ``fail`` (always raises), ``fail_once`` (raises on the first call of
    each instance), or ``slow:<seconds>``. Read from ``ESB_EVAL_FAULTS`` (JSON) in worker processes.
    """

    def __init__(self, url: str, faults: dict[str, str] | None = None, call_s: float = 0.0) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        env = os.environ.get("ESB_EVAL_FAULTS")
        self.faults = faults if faults is not None else (json.loads(env) if env else {})
        self.call_s = call_s

    def call(self, endpoint: str, instance: str, step: str) -> str:
        """Call ``endpoint`` for ``instance``/``step`` (the idempotency key); raise per the faults."""
        with self.engine.begin() as conn:
            row = conn.execute(
                CALLS.insert().values(
                    instance=instance, step=step, endpoint=endpoint, pid=os.getpid(), started=time.time()
                )
            ).inserted_primary_key
        fault = self.faults.get(endpoint, "")
        delay = self.call_s + (float(fault.split(":", 1)[1]) if fault.startswith("slow:") else 0.0)
        if delay:
            time.sleep(delay)
        outcome = "ok"
        if fault == "fail" or (fault == "fail_once" and self.count(instance, endpoint) == 1):
            outcome = "error"
        with self.engine.begin() as conn:
            conn.execute(
                CALLS.update().where(CALLS.c.id == row[0]).values(ended=time.time(), outcome=outcome)
            )
        if outcome == "error":
            raise RuntimeError(f"{endpoint} refused {instance}/{step} (injected fault)")
        return f"{endpoint}:{instance}"

    def count(self, instance: str | None = None, endpoint: str | None = None) -> int:
        """Return how many calls were made (for ``instance`` and ``endpoint`` when given)."""
        query = sa.select(sa.func.count()).select_from(CALLS)
        if instance is not None:
            query = query.where(CALLS.c.instance == instance)
        if endpoint is not None:
            query = query.where(CALLS.c.endpoint == endpoint)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def calls(self) -> list[sa.Row[Any]]:
        """Return every call, oldest first."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(CALLS).order_by(CALLS.c.id)))

    def overlaps(self) -> list[tuple[str, str]]:
        """Return (instance, step) pairs called twice with overlapping intervals (concurrent runs).

        A call left unfinished by a process that is gone (SIGKILL) is not counted as still running.
        """
        found: list[tuple[str, str]] = []
        by_key: dict[tuple[str, str], list[sa.Row[Any]]] = {}
        for row in self.calls():
            by_key.setdefault((row.instance, row.step), []).append(row)
        for key, rows in by_key.items():
            for a, b in itertools.pairwise(rows):
                if (a.ended is None and _alive(a.pid)) or (a.ended is not None and b.started < a.ended):
                    found.append(key)
                    break
        return found

    def duplicates(self) -> list[tuple[str, str, int]]:
        """Return (instance, step, n) for every step called more than once."""
        query = (
            sa.select(CALLS.c.instance, CALLS.c.step, sa.func.count())
            .group_by(CALLS.c.instance, CALLS.c.step)
            .having(sa.func.count() > 1)
        )
        with self.engine.connect() as conn:
            return [(r[0], r[1], int(r[2])) for r in conn.execute(query)]


def _alive(pid: int) -> bool:
    """Return True if process ``pid`` still exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Report:
    """PASS/FAIL lines per requirement, and figures, printed as they come and summed up at the end."""

    title: str
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        print(f"== {self.title}  (load: {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)", flush=True)

    def check(self, requirement: str, ok: bool, detail: str) -> bool:
        """Record and print one requirement's verdict with what was measured."""
        self.results.append((requirement, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'}  {requirement}: {detail}", flush=True)
        return ok

    def figure(self, name: str, value: str) -> None:
        """Print one measured figure."""
        print(f"      {name}: {value}", flush=True)

    def summary(self) -> int:
        """Print the tally; return 0 (the experiment ran; its verdicts are in the output)."""
        failed = [r for r in self.results if not r[1]]
        print(f"== {self.title}: {len(self.results) - len(failed)} pass, {len(failed)} fail", flush=True)
        return 0


def rss_mb() -> float:
    """Return this process's current resident set size in MB (from /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed; return its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
