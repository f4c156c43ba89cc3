"""A runner process killed with SIGKILL mid-instance: after a restart the instance resumes, its timer
fires, and only the call in flight at the kill is made again, with the same idempotency key.

The worker is this file run as a script (``python test_process_engine_restart.py DB LOG HANG``): it runs
due instances in a loop; its endpoints append ``endpoint key`` lines to LOG, and the endpoint named HANG
blocks forever after logging (the call in flight when the test kills it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from esb.message import Message
from esb.process.definition import Process
from esb.process.engine import ProcessStore, Runner
from esb.process.engine.tables import process_instances, process_steps
from tests.integration.pg_server import PostgresServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0
FLOW: dict[str, Any] = {
    "process": "p",
    "version": 1,
    "trigger": {"from": "hub.orders"},
    "business_keys": {"order_id": "data.id"},
    "steps": [
        {"name": "start", "set_state": "inProgress"},
        {"name": "reserve", "call": {"endpoint": "rim.reserve", "timeout": "1s"}},
        {"name": "activate", "call": {"endpoint": "oss.activate", "timeout": "1s"}},
        {"name": "pause", "wait": {"for": "3s"}},
        {"name": "bill", "call": {"endpoint": "billing.create", "timeout": "1s"}},
        {"name": "done", "set_state": "completed"},
    ],
}


class LoggingEndpoint:
    """Appends ``endpoint key`` to the log file for each call; the hanging one then blocks."""

    def __init__(self, name: str, log: Path, hang: bool) -> None:
        self.name, self.log, self.hang = name, log, hang

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def request(self, message: Message, timeout: float) -> Message:
        """Log the call (flushed to disk before anything else), then answer or hang."""
        with self.log.open("a", encoding="utf-8") as out:
            out.write(f"{self.name} {message.headers['idempotency-key']}\n")
        while self.hang:
            time.sleep(1)
        return Message(body={})


class WorkerResources:
    """The worker's endpoints."""

    def __init__(self, log: Path, hang: str) -> None:
        self.log, self.hang = log, hang

    def sink(self, endpoint: str) -> LoggingEndpoint:
        """A logging endpoint (hanging when it is the one named on the command line)."""
        return LoggingEndpoint(endpoint, self.log, endpoint == self.hang)

    def transform(self, name: str) -> Any:
        """No transforms in this flow."""
        raise KeyError(name)


def worker(url: str, log: Path, hang: str) -> None:
    """Run due instances until killed."""
    with ProcessStore(url) as store:
        runner = Runner(store, WorkerResources(log, hang), owner=f"worker-{os.getpid()}", lease=LEASE)
        while True:
            runner.run_due()
            time.sleep(0.05)


def spawn(url: str, log: Path, hang: str = "-") -> subprocess.Popen[bytes]:
    """Start a worker process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, __file__, url, str(log), hang], env=env)


def wait_for(check: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll ``check`` until true (a guard against hanging, not a timing assertion)."""
    end = time.monotonic() + limit
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and reap it."""
    process.send_signal(signal.SIGKILL)
    process.wait(30)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or a fresh database on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    created = server.create_database("restart")
    yield created
    server.drop_database(created)


def test_a_killed_worker_resumes_redoing_only_the_call_in_flight(url: str, tmp_path: Path) -> None:
    """Killed mid-call and again on a timer, the instance completes; only the in-flight call is repeated."""
    log = tmp_path / "calls.log"
    log.touch()
    with ProcessStore(url) as store:
        iid = Runner(store, WorkerResources(log, "-")).start(
            Process.model_validate(FLOW), Message(body={"id": "o-1"}, id="t-1")
        )

        def lines() -> list[str]:
            return log.read_text(encoding="utf-8").splitlines()

        def step_state(path: str) -> set[str]:
            s = process_steps.c
            with store.engine.connect() as conn:
                query = sa.select(s.state).where(s.instance_id == iid, s.path == path)
                return {row.state for row in conn.execute(query)}

        def status() -> str:
            with store.engine.connect() as conn:
                query = sa.select(process_instances.c.status).where(process_instances.c.id == iid)
                return str(conn.execute(query).scalar_one())

        first = spawn(url, log, hang="oss.activate")
        try:
            wait_for(lambda: f"oss.activate {iid}:activate" in lines(), "the activate call")
        finally:
            kill(first)  # mid-call: activate was sent, its result never committed
        second = spawn(url, log)
        try:
            wait_for(lambda: "waiting" in step_state("pause"), "the timer to be set")
        finally:
            kill(second)  # while the durable timer waits
        third = spawn(url, log)
        try:
            wait_for(lambda: status() == "completed", "the instance to complete")
        finally:
            kill(third)
        assert step_state("pause") == {"done"}
    assert lines() == [
        f"rim.reserve {iid}:reserve",
        f"oss.activate {iid}:activate",
        f"oss.activate {iid}:activate",
        f"billing.create {iid}:bill",
    ]


if __name__ == "__main__":
    worker(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
