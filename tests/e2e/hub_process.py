"""Running the hub as a real process for end-to-end tests, on a throwaway data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from esb.journal import Journal
from esb.journal.schema import events, messages
from esb.project import Project
from simulators.devenv import choose_free_ports
from simulators.iom import IOMSimulator
from tests.waiting import STALL, wait_for_count

ROOT = Path(__file__).resolve().parents[2]


def hub_environ(data_dir: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a hub using ``data_dir`` for its queues and journal, on free ports only
    (never the defaults, which hubs and demos of tests on other pytest-xdist workers would compete for):
    the console and monitoring on any (0), the project's listeners and simulated systems (ESB_SOAP_PORT,
    ESB_BILLING_PORT...) on ports free now; ``extra`` overrides any of it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESB_")}
    env.update(
        {
            "ESB_DATA_DIR": str(data_dir),
            "ESB_LOGGING__LEVEL": "info",
            "ESB_BROKER__TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3",
            "ESB_RUNTIME__POLL_TIMEOUT": "0.1s",
        }
    )
    choose_free_ports(env)
    env.update(extra)
    return env


class HubProcess:
    """`esb run` in a subprocess that can be SIGKILLed and restarted."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        routes: tuple[str, ...] = ("crm-order-to-iom",),
        *,
        launcher: tuple[str, ...] = ("-m", "esb.cli"),
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.routes = routes
        #: what runs the hub after the interpreter: ``esb`` itself, or a test's wrapper of it
        self.launcher = launcher
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the hub."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    *self.launcher,
                    "--project",
                    str(ROOT),
                    "run",
                    *[arg for route in self.routes for arg in ("--route", route)],
                ],
                env=hub_environ(self.data_dir),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def starts(self) -> int:
        """How many times the hub's log says it started (the log is kept across restarts)."""
        return self.log.read_bytes().count(b'"hub started"') if self.log.exists() else 0

    def wait_started(self, timeout: float = 300, *, previous: int = 0) -> None:
        """Wait until the hub's log says it started more than ``previous`` times (routes consuming)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.starts() > previous:
                return
            time.sleep(0.1)
        raise AssertionError(f"the hub did not start within {timeout} s: see {self.log}")

    def kill(self) -> None:
        """SIGKILL the hub (no clean shutdown)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM the hub and return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def load_project(data_dir: Path) -> Project:
    """The repository's project, on ``data_dir``."""
    return Project.load(ROOT, environ=hub_environ(data_dir))


def finished(journal_url: str, route: str, ids: list[str]) -> int:
    """How many of ``ids`` have ended on ``route`` (one query: route-level final events)."""
    engine = sa.create_engine(journal_url)
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count(sa.distinct(events.c.message_seq))).join(
                messages, messages.c.seq == events.c.message_seq
            ).where(
                events.c.route == route,
                messages.c.id.in_(ids),
                events.c.state.in_(["delivered", "filtered", "dead_lettered"]),
                sa.or_(events.c.endpoint.is_(None), events.c.state != "delivered"),  # per-endpoint: not final
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def wait_for_outcomes(
    journal: Journal, route: str, ids: list[str], at_least: int, stall: float = STALL
) -> int:
    """Wait until at least ``at_least`` of ``ids`` have an outcome on ``route``; return how many have.
    Gives up (AssertionError) only when no more ended for ``stall`` seconds (tests/waiting.py)."""
    return wait_for_count(
        lambda: finished(journal.url, route, ids), at_least, f"{at_least} outcomes on {route}", stall=stall,
        interval=0.05,
    )  # fmt: skip


def drain_iom(project: Project, orders: int, duplicates: int = 0, *, settle: float = 0.5) -> IOMSimulator:
    """Run the simulated IOM (an idempotent receiver) until it has ``orders`` distinct orders and
    ``duplicates`` duplicates (giving up only when none comes for a while: tests/waiting.py), ``settle``
    seconds more for anything extra to show, then stop it; return it for its counts."""
    iom = IOMSimulator(project)
    iom.start()
    try:
        assert iom.ready.wait(STALL), "the simulated IOM never connected"
        wait_for_count(  # each order once, then each duplicate: a count that grows until both are in
            lambda: min(iom.count(), orders) + min(iom.duplicates, duplicates),
            orders + duplicates, "IOM's orders", interval=0.1,
        )  # fmt: skip
        time.sleep(settle)
    finally:
        iom.stop()
        iom.join(5)
    return iom
