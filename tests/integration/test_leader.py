"""One leader across processes (PostgreSQL advisory lock, file lock); another takes over when it dies."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.pg_server import PostgresServer, postgres_server  # noqa: F401 - fixture

WORKER = str(Path(__file__).with_name("leader_process.py"))


def _said_leader(proc: subprocess.Popen[str], timeout: float) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready) and proc.stdout.readline().strip() == "leader"


def _failover(journal_url: str, data_dir: Path) -> None:
    procs = []
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, WORKER, "batch:test", journal_url, str(data_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        procs.append(proc)
    everyone = list(procs)
    try:
        for _ in range(2):  # kill the leader twice: each time exactly one of the others takes over
            time.sleep(1.0)
            leaders = [p for p in procs if p.poll() is None and _said_leader(p, 0.5)]
            assert len(leaders) == 1
            leaders[0].send_signal(signal.SIGKILL)
            leaders[0].wait(10)
            procs.remove(leaders[0])
        assert _said_leader(procs[0], 10)
    finally:
        for proc in everyone:
            proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", id="postgres-advisory-lock"), pytest.param("file", id="file-lock")]
)
def test_one_leader_and_failover(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Of three processes one leads; SIGKILL it and exactly one other takes over, twice."""
    if backend == "postgres":
        url = request.getfixturevalue("postgres_server").create_database("leader")
    else:
        url = f"sqlite:///{tmp_path}/journal.db"
    _failover(url, tmp_path)
